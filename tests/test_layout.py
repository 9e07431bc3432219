"""The package's layers: each subpackage imports only from those above it, and no module imports itself back.

Order (DEVELOPERS.md): config → install → knex → state → upgrade → cli; errors.py is below none and above all.
Function-local imports count too: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "knexwrap"
LAYERS = ("errors", "config", "install", "knex", "state", "upgrade", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every knexwrap module PATH imports (absolute dotted names), a `from pkg import module` counted as the module."""
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("knexwrap")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
            elif (node.module or "").startswith("knexwrap"):
                base = str(node.module).split(".")
            else:
                continue
            for alias in node.names:
                candidate = PACKAGE.parent.joinpath(*base, alias.name)
                is_module = candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists()
                found.add(".".join([*base, alias.name]) if is_module else ".".join(base))
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) < len(LAYERS)))
def test_imports_point_up_the_layers(module: str) -> None:
    upward = sorted(i for i in MODULES[module] if _layer(i) > _layer(module))
    assert upward == [], f"{module} imports from a later layer: {upward}"


def test_no_import_cycles() -> None:
    graph = {m: {i for i in deps if i in MODULES and i != m} for m, deps in MODULES.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_layers_hold_the_modules() -> None:
    """Only the package's entry points sit at the top: everything else lives in a layer."""
    top = sorted(m for m in MODULES if _layer(m) == len(LAYERS))
    assert top == ["knexwrap", "knexwrap.__main__"]
