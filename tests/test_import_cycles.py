"""No import circles inside ``manet``: every module's ``import`` statements form a DAG.

The graph is read from the source with :mod:`ast` (nothing is imported), including imports
inside functions and ``if TYPE_CHECKING`` blocks, because a lazy import only hides a circle
until the function runs. Edges:

* ``import a.b`` and ``from a.b import c`` point at module ``a.b`` (its ``__init__`` when it
  is a package); ``from a.b import c`` points at ``a.b.c`` instead when ``c`` is a submodule.
* Relative imports are resolved against the importing module's package.
* The implicit import of parent packages (``import a.b.c`` first runs ``a/__init__``) is not an
  edge: ``manet/__init__`` re-exports the public API, so every module would otherwise sit on a
  circle through it, and Python handles that order fine. An explicit import of a package is an
  edge to its ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "manet"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Module name -> source file for every ``.py`` file under ``root/package``."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve_relative(module: str, level: int, target: str | None, modules: dict[str, Path]) -> str:
    """``from ..x import y`` inside ``module`` -> absolute ``pkg.x``."""
    base = module.split(".") if _is_package(module, modules) else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imported_modules(module: str, modules: dict[str, Path]) -> Iterator[str]:
    """Modules of the package that ``module``'s source imports, anywhere in the file."""
    tree = ast.parse(modules[module].read_text(), filename=str(modules[module]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            source = node.module if node.level == 0 else _resolve_relative(module, node.level, node.module, modules)
            if source is None or source not in modules:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield submodule if submodule in modules else source


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_files(root, package)
    return {name: {target for target in imported_modules(name, modules) if target != name} for name in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle ``[a, b, ..., a]`` of the graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return path[path.index(following):] + [following]
            elif not state.get(following):
                state[following] = 1
                path.append(following)
                stack.append(iter(sorted(graph.get(following, ()))))
    return None


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each group of modules that import each other (strongly connected
    components with more than one module), sorted."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, stack = {start}, [start]
        while stack:
            for following in graph.get(stack.pop(), ()):
                if following not in seen:
                    seen.add(following)
                    stack.append(following)
        reach[start] = seen
    found, placed = [], set()
    for name in sorted(graph):
        group = {other for other in reach[name] if name in reach[other]}
        if len(group) > 1 and name not in placed:
            placed |= group
            cycle = find_cycle({member: graph[member] & group for member in group})
            found.append(cycle or sorted(group))
    return found


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(ROOT, PACKAGE)
    assert "manet.inference.session" in graph and "manet.model.encoder" in graph, "the walk found the package"
    found = circles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_walk_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "from pkg.sub.b import thing\n",
        "pkg/a.py": "def f():\n    from .sub import b\n",
        "pkg/sub/b.py": "from .. import c\nthing = 1\n",
        "pkg/c.py": "import pkg.a\n",
    })
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"}, "a relative import of a submodule points at the submodule"
    assert graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.sub"] == {"pkg.sub.b"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    assert circles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert circles({"x": {"y"}, "y": set()}) == [] and find_cycle({"x": {"y"}, "y": set()}) is None


@pytest.mark.parametrize("importer", ["from pkg.sub import name\n", "import pkg.sub\n"])
def test_importing_a_package_goes_through_its_init(tmp_path: Path, importer: str) -> None:
    _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "from pkg.sub.impl import name\n",
        "pkg/sub/impl.py": "from pkg.user import other\nname = 1\n",
        "pkg/user.py": importer + "other = 2\n",
    })
    cycle = find_cycle(import_graph(tmp_path, "pkg"))
    assert cycle is not None and "pkg.sub" in cycle and "pkg.user" in cycle
