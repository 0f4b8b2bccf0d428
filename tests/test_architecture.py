"""The shape of the code, held by tests: studio's packages import one another in one direction only (no circle of
packages, counting imports made inside functions too), and no file of studio/ grows past 500 lines.

The layers, top to bottom (docs/architecture.md draws them): ui, cli -> serve -> workspace -> queue -> evaluate ->
train; distill -> generate; train and generate -> adapters -> runs -> data -> pocket -> models -> paths, runtime.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

STUDIO = Path(__file__).resolve().parent.parent / "studio"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(STUDIO.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> list[tuple[str, int]]:
    """Every studio module `path` imports (top level and inside functions), with the line."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, `level - 1` packages up
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from studio import runs` imports the package studio.runs
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names] if target == "studio" else []
            found.append((target, node.lineno))
    return [(name, line) for name, line in found if name.startswith("studio.")]


def package_of(module: str) -> str:
    """The part of studio a module belongs to: `studio.train.methods.lora.config` -> `train`."""
    return module.split(".")[1]


def package_edges(root: Path = STUDIO) -> dict[tuple[str, str], list[str]]:
    """(importer package, imported package) -> where: 'studio/x/y.py:12 studio.z'."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        source = _module_name(path)
        if source == "studio":
            continue
        for target, line in _imported_modules(path):
            a, b = package_of(source), package_of(target)
            if a != b:
                edges[(a, b)].append(f"{path.relative_to(root.parent)}:{line} {target}")
    return edges


def circles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan), each a circle of imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_two_packages_of_studio_import_each_other_even_through_others():
    edges = package_edges()
    found = circles(edges)
    report = []
    for group in found:
        for (a, b), where in sorted(edges.items()):
            if a in group and b in group:
                report.append(f"{a} -> {b}: " + "; ".join(where[:3]))
    assert not found, "import circles between studio's packages:\n" + "\n".join(report)


def test_the_circle_finder_sees_a_circle_through_a_third_package(tmp_path):
    """The check above can fail: three packages that import round in a ring are one circle."""
    root = tmp_path / "studio"
    for name, imports in {"a": "studio.b.x", "b": "studio.c.x", "c": "studio.a.x"}.items():
        (root / name).mkdir(parents=True)
        (root / name / "x.py").write_text(f"def f():\n    import {imports}\n")
    global STUDIO
    saved, STUDIO = STUDIO, root
    try:
        assert circles(package_edges(root)) == [["a", "b", "c"]]
    finally:
        STUDIO = saved


def test_every_file_of_studio_stays_under_500_lines():
    long = {
        str(path.relative_to(STUDIO.parent)): n
        for path in STUDIO.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) >= MAX_LINES
    }
    assert not long, f"files of {MAX_LINES} lines or more (split them by what they do): {long}"
