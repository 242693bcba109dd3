"""The modules of `conveyor` import each other without cycles.

The graph is read from the source with `ast`, so it holds every import: at module level, under
`if TYPE_CHECKING:` and inside functions. A cycle hidden behind a late or type-only import is still a cycle: two
modules that need each other are one concept split in two, or share a concept that belongs in a third module.

`import a.b` and `from a import b` count as importing module `a.b` when it exists, else the deepest existing
package; importing a submodule does not count as importing its parent package's `__init__`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "conveyor"

Graph = dict[str, set[str]]


def _module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its `__init__.py`)."""
    files = {}
    for path in sorted((SOURCE / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _imported_names(tree: ast.Module, package: str) -> Iterator[str]:
    """The dotted names a module imports (`from a import b` gives `a.b`), relative imports resolved against its
    package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield from (base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of the package that a dotted name lies in (None: outside the package)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


@cache
def import_graph() -> Graph:
    """Each module of the package and the modules of the package it imports."""
    modules = _module_files()
    graph: Graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        names = _imported_names(ast.parse(path.read_text(), str(path)), package)
        targets = {_resolve(imported, modules) for imported in names}
        graph[name] = {target for target in targets if target is not None and target != name}
    return graph


def _reachable(graph: Graph, start: str) -> set[str]:
    """The modules a module imports, directly or through others."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def _strongly_connected(graph: Graph) -> list[list[str]]:
    """The strongly connected components of the graph: modules that each reach all the others (a few hundred
    modules, so reachability from each is quick enough and plainer than Tarjan's algorithm)."""
    reach = {module: _reachable(graph, module) for module in graph}
    components = {
        frozenset({module} | {other for other in reach[module] if module in reach[other]}) for module in graph
    }
    return sorted(sorted(component) for component in components)


def import_cycles() -> list[list[str]]:
    """Every group of modules that import each other, directly or through others (components of size > 1)."""
    return [component for component in _strongly_connected(import_graph()) if len(component) > 1]


def _describe(cycles: list[list[str]]) -> str:
    graph = import_graph()
    lines = []
    for cycle in cycles:
        lines.append("cycle: " + ", ".join(cycle))
        lines.extend(f"  {module} imports {', '.join(sorted(graph[module] & set(cycle)))}" for module in cycle)
    return "\n".join(lines)


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_modules_that_import_each_other_through_a_third_are_one_cycle() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert [c for c in _strongly_connected(graph) if len(c) > 1] == [["p.a", "p.b", "p.c"]]


def test_the_graph_holds_type_checking_and_function_level_imports() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from conveyor.api.context import ApiContext\n"
        "def f():\n    from .types import JobNode\n"
    )
    modules = {name: Path() for name in ("conveyor.api", "conveyor.api.context", "conveyor.api.types")}
    targets = {_resolve(name, modules) for name in _imported_names(tree, "conveyor.api")}
    assert targets == {None, "conveyor.api.context", "conveyor.api.types"}


def test_no_module_is_in_an_import_cycle() -> None:
    cycles = import_cycles()
    assert not cycles, _describe(cycles)
