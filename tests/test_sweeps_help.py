"""``--help`` answers at once: every sweep script parses its flags before torch and Ray are imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "sweeps").glob("*.py") if p.stem.startswith(("ablate_", "compare_", "tune_")))
# Run a script as `python sweeps/<script>.py --help` does, then say which heavy modules it imported.
PROBE = """
import runpy, sys
sys.argv = [{path!r}, "--help"]
try:
    runpy.run_path({path!r}, run_name="__main__")
except SystemExit as exit:
    print("exit", exit.code)
print("imported", sorted(m for m in ("torch", "ray") if m in sys.modules))
"""


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help_imports_neither_torch_nor_ray(script):
    path = f"sweeps/{script}.py"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(path=path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    # What makes --help fast (0.1 s here; 4.3 s when torch and Ray were imported first): neither is imported.
    assert proc.stdout.splitlines()[-2:] == ["exit 0", "imported []"], proc.stdout + proc.stderr
    assert f"usage: {path}" in proc.stdout and "--tracker {tensorboard,mlflow,wandb}" in proc.stdout


def test_python_m_sweeps_help_lists_the_specs():
    proc = subprocess.run(
        [sys.executable, "-m", "sweeps", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m sweeps [-h] SPEC [FLAGS ...]")
    assert "ablate_gate" in proc.stdout and "python -m sweeps SPEC --help lists them" in proc.stdout
    bare = subprocess.run([sys.executable, "-m", "sweeps"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "the following arguments are required: SPEC" in bare.stderr
