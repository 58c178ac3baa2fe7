"""The import graph goes one way: no cycles in contrastive_core or contrastive_plugins, no shortcuts.

Every ``import`` and ``from ... import`` statement anywhere in a file counts: at module level, inside a
function, under ``if TYPE_CHECKING:``. A lazy import hides a cycle from Python until the day the
modules are imported in another order; here it is a cycle like any other.

An import of ``a.b.c`` also runs ``a/b/__init__.py`` first, so it counts as importing ``a.b`` too
(for every package on the way that the importing module is not itself inside). The subpackages'
``__init__`` modules re-export their modules' names, so a module of ``components`` importing from
``engine`` while a module of ``engine`` imports from ``components`` is a cycle, even when no two modules
import each other: whichever package is imported first finds the other half-initialised. The top-level
package is not counted that way: it is always initialised first, and no module inside it imports it
(the third test).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Import package -> its folder.
PACKAGES = {"contrastive_core": ROOT / "contrastive_core", "contrastive_plugins": ROOT / "plugins"}
#: Plugin packages that follow the same rules (import only the public API of contrastive_core).
PLUGIN_FOLDERS = {
    "contrastive_plugins": ROOT / "plugins",
    "contrastive_example_plugin": ROOT / "tests" / "example_plugin" / "contrastive_example_plugin",
}


def modules(package: str, folder: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every module under ``folder``."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        if any(part in ("build", "__pycache__") for part in parts):
            continue
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join((package, *parts))] = (path, is_package)
    return found


def imported_names(name: str, path: Path, is_package: bool, known: Iterable[str]) -> set[str]:
    """The names every import statement of the module imports, resolved: a module where the imported
    thing is one (``from pkg import mod`` -> ``pkg.mod``), else the package or module it comes from."""
    known = set(known)
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def import_graph(package: str, folder: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports, directly or through a package's ``__init__``."""
    found = modules(package, folder)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in found.items():
        targets: set[str] = set()
        for imported in imported_names(name, path, is_package, found):
            # `import a.b.c.name` where name is no module: the longest prefix that is one.
            while imported and imported not in found:
                imported = imported.rpartition(".")[0]
            if not imported:
                continue
            targets.add(imported)
            # Importing a.b.c first runs a.b's __init__ (not the top-level package's; see the docstring).
            parts = imported.split(".")
            for depth in range(2, len(parts)):
                ancestor = ".".join(parts[:depth])
                if not (name == ancestor or name.startswith(ancestor + ".")):
                    targets.add(ancestor)
        targets.discard(name)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles among the modules: for every module that is in one, a shortest cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found: list[list[str]] = []
    for component in components:
        for start in sorted(component):
            cycle = _shortest_cycle(graph, component, start)
            rotated = _rotated(cycle)
            if rotated not in found:
                found.append(rotated)
    return sorted(found)


def _shortest_cycle(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """Breadth-first from ``start`` back to ``start`` inside its strongly connected component."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"{start} is in a cycle but none was found")


def _rotated(cycle: list[str]) -> list[str]:
    """The cycle started at its smallest module, so that one cycle is listed once."""
    ring = cycle[:-1]
    first = ring.index(min(ring))
    ring = ring[first:] + ring[:first]
    return [*ring, ring[0]]


def describe(found: list[list[str]]) -> str:
    return "import cycles:\n" + "\n".join("  " + " -> ".join(cycle) for cycle in found)


def test_contrastive_core_has_no_import_cycles():
    found = cycles(import_graph("contrastive_core", PACKAGES["contrastive_core"]))
    assert not found, describe(found)


def test_contrastive_plugins_has_no_import_cycles():
    found = cycles(import_graph("contrastive_plugins", PACKAGES["contrastive_plugins"]))
    assert not found, describe(found)


def test_imports_respect_the_package_boundaries():
    """Inside contrastive_core no module imports the package root (its ``__init__`` imports them);
    plugins import contrastive_core itself or a subpackage, never a module deeper than
    ``contrastive_core.<subpackage>``."""
    problems = []
    core = modules("contrastive_core", PACKAGES["contrastive_core"])
    subpackages = {name for name, (_, is_package) in core.items() if is_package and name.count(".") == 1}
    for name, (path, is_package) in core.items():
        if name == "contrastive_core":
            continue
        for imported in imported_names(name, path, is_package, core):
            if imported == "contrastive_core":
                problems.append(f"{path.relative_to(ROOT)} imports the package root contrastive_core")
    for package, folder in PLUGIN_FOLDERS.items():
        for name, (path, is_package) in modules(package, folder).items():
            for imported in imported_names(name, path, is_package, core):
                if not imported.startswith("contrastive_core."):
                    continue
                public = imported in subpackages or imported == "contrastive_core.errors"
                if not public:
                    problems.append(f"{path.relative_to(ROOT)} imports {imported}, not a public module")
    assert not problems, "\n".join(problems)
