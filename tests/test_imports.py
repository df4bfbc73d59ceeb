"""The import graph of the whole repository: no circle anywhere, and sweeps/ layered one way.

Every ``import`` statement is read from the source (AST), wherever it stands: module level, inside a
function (lazy imports), under ``if TYPE_CHECKING:``. A circle through a lazy import still ties two
modules together for a reader and comes back as a real one the day the import moves up, so it counts.
An earlier restructuring removed every circle and later features brought one back unnoticed; this
test keeps the class of defect from returning.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sweeps
from sweeps import identity

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pare_core", "sweeps", "analysis", "bench", "tests")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, dict[str, int]]:
    """module -> {imported first-party module: line}, for every ``.py`` file under ``root/<package>``.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else of ``pkg``."""
    files = {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        edges: dict[str, int] = {}
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package that holds this module
                    anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                # `import a.b.c` also names a.b.c's own module; keep the longest first-party prefix
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    """``a -> b (a.py:12)`` for every import inside the circle, so the message says what to cut."""
    inside = set(component)
    return "; ".join(
        f"{a} -> {b} (line {line})" for a in component for b, line in sorted(graph[a].items()) if b in inside
    )


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(REPO)


def test_no_import_circle_anywhere(graph):
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(describe(c, graph) for c in found)


def test_the_checker_finds_circles_through_lazy_and_type_checking_imports(tmp_path):
    """The checker itself can fail: a circle closed by a function-level import, and one closed under
    ``TYPE_CHECKING`` through a relative import, are both found; a one-way package is not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import pkg.b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import X\n")
    (pkg / "d.py").write_text("from pkg.c import Y\n")
    (pkg / "e.py").write_text("from pkg import a, c\n")
    assert circles(import_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"]]


def layer_of(module: str) -> str | None:
    leaf = module.removeprefix("sweeps.")
    return next((layer for layer, names in sweeps.LAYERS.items() if leaf in names), None)


def test_every_sweeps_module_has_one_layer():
    listed = [m for names in sweeps.LAYERS.values() for m in names]
    on_disk = sorted(p.stem for p in (REPO / "sweeps").glob("*.py") if p.stem != "__init__")
    assert sorted(listed) == on_disk, "sweeps/__init__.py LAYERS must list every module of sweeps/ exactly once"


def test_sweeps_imports_flow_one_way(graph):
    """A module imports its own layer or earlier ones (spec -> plan -> launch -> records -> entry)."""
    order = list(sweeps.LAYERS)
    backwards = [
        f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)}) at line {line}"
        for m, edges in graph.items()
        if m.startswith("sweeps.")
        for t, line in edges.items()
        if t.startswith("sweeps.") and order.index(layer_of(t)) > order.index(layer_of(m))
    ]
    assert not backwards, "\n".join(backwards)


def third_party(root: Path, module: str, top: str) -> list[int]:
    """Lines of ``module``'s file that import the third-party package ``top``."""
    path = root / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = root / module.replace(".", "/") / "__init__.py"
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        lines += [node.lineno for n in names if n == top or n.startswith(top + ".")]
    return lines


def test_packages_keep_their_places(graph):
    """pare_core imports neither sweeps nor analysis nor Ray; sweeps imports no analysis; analysis reads
    only sweeps' Ray-free layers and never imports Ray (DESIGN.md: the three layers)."""
    wrong = []
    for m, edges in graph.items():
        pkg = m.split(".")[0]
        for t in edges:
            target_pkg = t.split(".")[0]
            if pkg == "pare_core" and target_pkg in ("sweeps", "analysis"):
                wrong.append(f"{m} imports {t}")
            if pkg == "sweeps" and target_pkg == "analysis":
                wrong.append(f"{m} imports {t}")
            if pkg == "analysis" and target_pkg == "sweeps" and layer_of(t) not in sweeps.RAY_FREE:
                wrong.append(f"{m} imports {t} ({layer_of(t)} layer: not Ray-free)")
        ray_free = pkg in ("pare_core", "analysis") or (pkg == "sweeps" and layer_of(m) in sweeps.RAY_FREE)
        if ray_free:
            wrong += [f"{m} imports ray at line {line}" for line in third_party(REPO, m, "ray")]
    assert not wrong, "\n".join(wrong)


def test_a_launch_driver_never_imports_torch():
    """A launch's driver plans the sweep and hands Tune a reference to the trainable; the fits run in the
    trial processes. Importing every module a driver imports (sweeps.driver imports the launch and
    records layers lazily) and recording the launch's provenance leave torch out on a machine without a
    GPU, which saves each dry run ~1.5 CPU-s, and each launch where tensorboardX is not installed
    (sweeps/trainable.py, sweeps.identity)."""
    if any(Path(node).exists() for node in identity.GPU_DRIVER_NODES):
        pytest.skip("a GPU driver is present: provenance asks torch for the device's name")
    driver_side = ["sweeps.cli", "sweeps.preflight", "sweeps.driver"]
    driver_side += [f"sweeps.{m}" for layer in ("launch", "records") for m in sweeps.LAYERS[layer]]
    probe = (
        f"import sys; import {', '.join(driver_side)}; "
        "sweeps.identity.provenance('sweeps/configs/ablate_gate.yaml', 'python sweeps/ablate_gate.py'); print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "False", "the driver side imports torch: find who with `python -X importtime`"
