"""The import rules the layout promises (README, pyproject.toml), read from the source with `ast`:
the methods stand alone, data knows nothing of models or training, the report reads records
only, and no module-level import cycle exists. A rule that breaks names the file and the
import."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("optima", "baselines", "harness")
# Wrong-way arrows that exist today, to be removed by the redesign (issue 17); the test fails
# when one disappears too, so that this list only shrinks.
KNOWN_WRONG_WAY = {
    ("harness.data.nlvr2", "harness.tasks.nlvr2_eval"),
    ("harness.data.vqa", "harness.tasks.vqa_eval"),
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules `path` imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


MODULES = {_module(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _edges(top_level_only: bool) -> set[tuple[str, str]]:
    """(importer, imported) between the project's own modules."""
    return {
        (name, target)
        for name, path in MODULES.items()
        for target in _imports(path, top_level_only)
        if target in MODULES and target != name
    }


ALL_EDGES = _edges(top_level_only=False)


@pytest.mark.parametrize("package", ["optima", "baselines"])
def test_the_methods_never_import_the_harness(package):
    bad = sorted(
        (a, b) for a, b in ALL_EDGES if a.split(".")[0] == package and b.startswith("harness")
    )
    assert not bad, f"{package}/ imports the harness: {bad}"
    assert not any(a.startswith("optima") and b.startswith("baselines") for a, b in ALL_EDGES)


def test_data_never_imports_models_training_or_tasks():
    bad = {
        (a, b)
        for a, b in ALL_EDGES
        if a.startswith("harness.data")
        and b.startswith(("harness.models", "harness.distill", "harness.tasks", "harness.study"))
    }
    assert bad - KNOWN_WRONG_WAY == set(), f"new wrong-way imports: {sorted(bad - KNOWN_WRONG_WAY)}"
    assert bad >= KNOWN_WRONG_WAY, (
        f"fixed, so remove from KNOWN_WRONG_WAY: {sorted(KNOWN_WRONG_WAY - bad)}"
    )


def test_the_report_reads_records_only():
    running = ("harness.study", "harness.runs", "harness.distill", "harness.models", "harness.data")
    report = sorted(m for m in MODULES if m.startswith("harness.report"))
    assert {"harness.report", "harness.report.task", "harness.report_compare"} <= set(report)
    for name in report:  # the package's every module, and report_compare
        bad = sorted(b for a, b in ALL_EDGES if a == name and b.startswith(running))
        assert not bad, f"{name} imports the pipeline: {bad}"


def test_no_module_level_import_cycle():
    graph: dict[str, set[str]] = {}
    for a, b in _edges(top_level_only=True):
        graph.setdefault(a, set()).add(b)
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            raise AssertionError(
                "import cycle: " + " -> ".join([*stack[stack.index(node) :], node])
            )
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*stack, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
