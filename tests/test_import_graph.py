"""The package's import graph is a DAG, and every module imports on its own.

An import cycle works or breaks depending on which module a program imports first, and a
type-only cycle becomes a real one the day an annotation is needed at runtime. The graph is
read from the source, so every import counts: at module level, under ``TYPE_CHECKING`` and
inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import routee_viber_async

PACKAGE = "routee_viber_async"
ROOT = Path(routee_viber_async.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imported(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports explicitly (not the parent packages that
    Python imports on the way)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names}
            found.update(submodules)
            if not submodules <= MODULES.keys():  # a name defined in ``target`` itself
                found.add(target)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imported(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's strongly connected component with more than one module, as
    sorted lists (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_is_read_from_every_module() -> None:
    assert f"{PACKAGE}._converter" in GRAPH
    assert f"{PACKAGE}._template_parts" in GRAPH[f"{PACKAGE}._responses"]
    # type-only imports count
    assert f"{PACKAGE}._responses" in GRAPH[f"{PACKAGE}._requests"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = list(_cycles(GRAPH))
    assert cycles == []


def test_every_module_imports_on_its_own_in_a_fresh_interpreter() -> None:
    """Each module imported first, with none of the package loaded before it."""
    script = textwrap.dedent(
        """
        import importlib, sys
        failures = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m.split(".")[0] == "routee_viber_async"]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
        print("\\n".join(failures))
        """
    )
    names = [name for name in MODULES if not name.endswith("__main__")]
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
