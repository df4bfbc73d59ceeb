"""bench/gpu.sh's quick CPU rehearsal: the prepared GPU script runs end to end and writes its table and JSON
(issue 21). It tests the script, not a figure: no timing is asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_script_quick_rehearsal_writes_table_and_json(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", "bench/gpu.sh", "--quick", str(tmp_path)], cwd=ROOT, env=env, check=True, timeout=600)
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["quick"] is True
    assert {step["rc"] for step in report["steps"].values()} == {0}, report["steps"]
    assert all(ms > 0 for ms in report["ms_per_step"]["eager"].values()), report["ms_per_step"]
    # no captured arm on the CPU (compiling takes minutes; tests/test_capture.py checks the captured step)
    assert not any(name.endswith("_captured") for name in report["steps"]), report["steps"]
    assert set(report["ms_per_step"]["captured"].values()) == {None}
    assert set(report["capture_break_even"].values()) == {None}
    assert set(report["fused_vs_separate"]) == {"1", "2"}
    assert report["paper_pare"]["flops_per_step"] > 0 and report["paper_pare"]["mfu"] > 0
    table = (tmp_path / "gpu.md").read_text()
    assert "not a figure" in table and "PaRe ms/step" in table
