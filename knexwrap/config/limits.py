"""What one app-config file may cost to read: aliases as Backstage's ``yaml`` package counts them, and depth.

A 500-byte file of nested aliases (an alias bomb) expands to billions of values. Backstage reads app-config
with ``yaml.parse``, whose ``maxAliasCount`` (100 by default) stops it: an anchor's count starts at 1 and
each alias adds one; an alias that takes its anchor's count times weight past 100 is refused. An anchor's
weight, taken at its first alias, is the largest weight among what it holds: 1 for a plain value, count x
weight for an alias (yaml's getAliasCount). knexwrap counts the same way while PyYAML composes, before
anything is expanded, so it refuses the files Backstage refuses (fixtures/yaml/alias-cases.json: yaml's
own verdicts). Nesting is bounded too (Backstage's only bound is Node's stack): no real app-config comes
near MAX_DEPTH levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_ALIAS_COUNT = 100  # yaml's maxAliasCount default, as @backstage/config-loader uses it
MAX_DEPTH = 100  # mappings and lists inside each other, counted across $include files too

TOO_MANY_ALIASES = f"excessive alias count (more than {MAX_ALIAS_COUNT}, as Backstage's YAML parser counts them)"
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


@dataclass(eq=False)
class _Anchor:
    count: int = 1  # itself and the aliases to it so far (yaml starts at 1)
    weight: int = 0  # yaml's aliasCount: set at the first alias
    holds_value: bool = False  # a plain value somewhere inside (weight at least 1)
    aliases: list[_Anchor] = field(default_factory=list)  # the anchors of the aliases inside it
    open: bool = True  # still being composed: an alias to it now would be a cycle


class BoundedComposer(yaml.parser.Parser, yaml.composer.Composer):
    """PyYAML's composer with Backstage's alias count and knexwrap's depth limit (ComposerError past them)."""

    def compose_document(self) -> Any:
        self._anchor_data: dict[str, _Anchor] = {}
        self._open: list[_Anchor] = []
        self._depth = 0
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _error(TOO_DEEP, event)
        name = getattr(event, "anchor", None)
        anchor = _Anchor() if name else None
        if anchor is not None:
            self._anchor_data[str(name)] = anchor  # a later anchor of the same name wins, as in yaml
            self._open.append(anchor)
        if isinstance(event, yaml.ScalarEvent):
            for enclosing in self._open:
                enclosing.holds_value = True
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                anchor.open = False
                self._open.remove(anchor)

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        anchor = self._anchor_data.get(str(event.anchor))
        if anchor is None:
            return  # PyYAML reports the undefined alias
        if anchor.open:
            raise _error("an alias inside its own anchor", event)
        anchor.count += 1
        if anchor.weight == 0:
            anchor.weight = _weight(anchor)
        if anchor.count * anchor.weight > MAX_ALIAS_COUNT:
            raise _error(TOO_MANY_ALIASES, event)
        for enclosing in self._open:
            enclosing.aliases.append(anchor)


def _error(problem: str, event: yaml.Event) -> yaml.composer.ComposerError:
    mark = event.start_mark if isinstance(event.start_mark, yaml.error.Mark) else None
    return yaml.composer.ComposerError(None, None, problem, mark)


def _weight(anchor: _Anchor) -> int:
    inner = [other.count * other.weight for other in anchor.aliases]
    return max([1] * anchor.holds_value + inner, default=0)


def check_depth(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` (parsed JSON) nests at most MAX_DEPTH - depth levels; iterative, for any depth."""
    stack = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            if level >= MAX_DEPTH:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return True
