"""Analysis on what the platform really writes: ``sweeps/ablate_gate.py --smoke-test`` (real fits, real Ray;
the run the ``smoke_sweep`` fixture shares with test_sweeps_smoke).

The folder is copied elsewhere after the sweep ends, as a researcher would sync it to a laptop. Every
number the analysis shows is checked against the trial's own ``result.json``, and the gate figure is
built from a real checkpoint through ``pare_core.inspect.gate_map``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from test_analysis_sweep import assert_index_complete, figure_files

from analysis import load, stats
from analysis import report as report_module
from sweeps.identity import CODE_KEY, TRIAL_KEY, config_only

pytestmark = pytest.mark.slow  # real sweeps or long fits: in CI, not in the fast tier

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(smoke_sweep, tmp_path_factory) -> Path:
    (experiment,) = [p for p in smoke_sweep("ablate_gate").iterdir() if (p / "sweep.json").exists()]
    return Path(shutil.copytree(experiment, tmp_path_factory.mktemp("laptop") / experiment.name))


def reported(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]


def test_trials_and_metrics_are_the_reported_ones(smoke):
    sweep = json.loads((smoke / "sweep.json").read_text())
    results = load.load(smoke)
    trials = results.trials
    assert len(trials) == len(sweep["trials"]) and (trials["status"] == "done").all()
    assert results.arm_keys == [k for k in sweep["swept"] if len({repr(t[k]) for t in sweep["trials"]}) > 1]
    assert results.metric == sweep["metric"] and results.search == "grid"
    for _, t in trials.iterrows():
        rows = reported(smoke / t["trial_dir"])
        params = json.loads((smoke / t["trial_dir"] / "params.json").read_text())
        config = config_only(params)
        assert {k: t["config/" + k] for k in config} == config
        assert (t[TRIAL_KEY], t[CODE_KEY]) == (params[TRIAL_KEY], params[CODE_KEY])  # identity: columns, not config
        assert t["test_error"] == rows[-1]["test_error"] and t["val_error"] == rows[-1]["val_error"]
        assert t["epochs"] == config["train.epochs"] == len(results.curves[results.curves["trial_id"] == t["trial_id"]])
        assert t["best_val_error"] == min(r["val_error"] for r in rows)


def test_arm_means_and_paired_test(smoke):
    results = load.load(smoke)
    table = stats.arm_stats(results.trials, results.arm_keys).set_index("arm")
    for arm, group in results.trials.groupby("arm"):
        values = [reported(smoke / d)[-1]["test_error"] for d in group["trial_dir"]]
        assert table.loc[arm, "test_error_mean"] == pytest.approx(statistics.mean(values))
        assert table.loc[arm, "test_error_std"] == pytest.approx(statistics.stdev(values))
    comparison = stats.compare_to_control(results.trials, results.arm_keys)
    assert len(comparison) == len(table) - 1 and (comparison["n_pairs"] == 2).all()


def test_every_table_and_figure_including_the_gate_map(smoke, tmp_path):
    report = report_module.build(smoke, tmp_path)
    n_gate_arms = (
        load.load(smoke)
        .trials["config/gate.selection"]
        .isin(report_module.GATE_SELECTIONS)
        .groupby(load.load(smoke).trials["arm"])
        .any()
        .sum()
    )
    expected = {"curves", "cost", "ablation_val_error", "ablation_test_error", "gate_learning"} | {
        f"gate_{i}" for i in range(n_gate_arms)
    }
    assert figure_files(tmp_path) == expected, dict(report.skipped)
    assert "gate figure" not in dict(report.skipped)
    assert report.layout == []  # no overlapping labels, no legend on an axes (analysis.plots.layout_problems)
    assert_index_complete(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.print_table", str(smoke), "--format", "latex"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "\\toprule" in proc.stdout and "2/2 done" in proc.stdout
