"""No two files of src/etude import each other (issue 23): a test over the whole import graph.

Every ``import`` and ``from ... import`` counts wherever it stands: at the top, inside a function
(a deferred import hides a circle, it does not remove it) and under ``if TYPE_CHECKING:``.
``from package import name`` is an edge to the submodule ``package.name`` where that is a module,
else to the package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import etude

SRC = Path(etude.__file__).resolve().parent

# Circles tolerated for now, each with the issue that removes it (none since issue 23 part 3).
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The etude modules that the file ``path`` (module ``name``) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("etude"):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    found.discard(name)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    """Module -> the etude modules it imports (every import statement of its file)."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def two_file_circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Pairs of modules that import each other; a package and its own submodules excepted (a package's
    ``__init__`` re-exporting its submodules, which import siblings through the package, is one unit)."""
    circles = set()
    for a, targets in graph.items():
        for b in targets:
            if a in graph.get(b, ()) and not (a.startswith(b + ".") or b.startswith(a + ".")):
                circles.add(frozenset({a, b}))
    return circles


def test_the_graph_sees_deferred_and_type_checking_imports(tmp_path) -> None:
    """The walker counts an import inside a function and one under TYPE_CHECKING (else it could not fail)."""
    modules = {"etude.x": tmp_path / "x.py", "etude.y": tmp_path / "y.py", "etude.z": tmp_path / "z.py"}
    modules["etude.x"].write_text("def f():\n    from etude.y import thing\n")
    modules["etude.y"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from etude import x\n")
    modules["etude.z"].write_text("import etude.x\n")
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph == {"etude.x": {"etude.y"}, "etude.y": {"etude.x"}, "etude.z": {"etude.x"}}
    assert two_file_circles(graph) == {frozenset({"etude.x", "etude.y"})}


def test_no_two_files_import_each_other() -> None:
    circles = two_file_circles(import_graph())
    new = sorted(sorted(c) for c in circles - KNOWN_CIRCLES)
    assert not new, f"two-file import circles: {new}"
    gone = sorted(sorted(c) for c in KNOWN_CIRCLES - circles)
    assert not gone, f"remove these from KNOWN_CIRCLES, they are fixed: {gone}"


def test_the_runner_and_the_worker_pool_do_not_import_each_other() -> None:
    graph = import_graph()
    assert "etude.studies.runner" not in graph["etude.studies.parallel"]
    assert "etude.studies.parallel" in graph["etude.studies.runner"]
