"""YAML 1.2 as Backstage reads it: the core schema of the ``yaml`` package, on top of PyYAML's safe loader."""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import ConfigError
from .limits import BoundedComposer
from .shared import _js_string

# PyYAML quotes the text it stopped at ('found undefined alias %r'): on a password's line that is the
# password. What it quotes of its own grammar (',' or '}', '<stream end>') says nothing of a value.
_QUOTED = re.compile(r"""\s*('[^']*'|"[^"]*")""")
_GRAMMAR = re.compile(r"""'(?:<[a-z ]+>|[ ,:?{}\[\]-])'""")


def _unquoted(problem: str) -> str:
    return _QUOTED.sub(lambda m: m[0] if _GRAMMAR.fullmatch(m[1]) else "", problem)


class _Yaml12Loader(BoundedComposer, yaml.SafeLoader):
    """PyYAML reads YAML 1.1; Backstage's ``yaml`` package reads YAML 1.2 with the core schema."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _js_key(self.construct_object(key_node, deep=deep), key_node)
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}: keys must be unique", key_node.start_mark
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _js_key(key: Any, node: yaml.Node) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return ""
    if isinstance(key, (bool, int, float)):
        return _js_string(key)
    raise yaml.constructor.ConstructorError(None, None, "a key must be a plain value", node.start_mark)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
):
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _parse_yaml(text: str, name: str) -> Any:
    try:
        return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass: builds no objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        # Only the problem, never the snippet nor a quoted value: the offending line may hold a password.
        problem = exc.problem or exc.context or "invalid YAML"
        label = "" if problem.startswith("duplicate key") else "YAML syntax error: "
        shown = problem if label == "" else _unquoted(problem)
        raise ConfigError(f"{name}: {where}{label}{shown}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{name}: YAML syntax error: {type(exc).__name__}") from None
    except RecursionError:  # the depth limit stops nesting first; this is the last line of defence
        raise ConfigError(f"{name}: YAML error: nested too deeply") from None
