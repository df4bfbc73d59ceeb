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
from pathlib import Path

import matplotlib.image
import pytest
from test_analysis_sweep import assert_index_complete, figure_files

from analysis import load, plots, stats
from analysis import report as report_module
from analysis.print_table import main as print_table_main
from sweeps.identity import ARM_KEY, CODE_KEY, TRIAL_KEY, config_only

pytestmark = pytest.mark.slow  # real sweeps or long fits: in CI, not in the fast tier


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
        assert t["degenerate"] == (rows[-1]["test_error"] >= rows[-1]["baseline/majority"])  # its own baseline


def test_arm_means_and_paired_test(smoke):
    results = load.load(smoke)
    table = stats.arm_stats(results.trials, results.arm_keys).set_index("arm")
    for arm, group in results.trials.groupby("arm"):
        values = [reported(smoke / d)[-1]["test_error"] for d in group["trial_dir"]]
        assert table.loc[arm, "test_error_mean"] == pytest.approx(statistics.mean(values))
        assert table.loc[arm, "test_error_std"] == pytest.approx(statistics.stdev(values))
    comparison = stats.compare_to_control(results.trials, results.arm_keys)
    assert len(comparison) == len(table) - 1 and (comparison["n_pairs"] == 2).all()


@pytest.mark.parametrize("width", ["full", "column"])
def test_every_table_and_figure_including_the_gate_map(smoke, width, tmp_path, capsys):
    report = report_module.build(smoke, tmp_path, width=width)
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
    assert_fits(report, tmp_path, width)
    assert_index_complete(tmp_path)
    if width == "column":  # the tables do not depend on the figures' width
        return
    capsys.readouterr()
    assert print_table_main([str(smoke), "--format", "latex"]) == 0  # typed as a command: test_analysis_sweep
    latex = capsys.readouterr().out
    assert "\\toprule" in latex and "2/2 done" in latex


def assert_fits(report: report_module.Report, out: Path, width: str) -> None:
    """matplotlib's renderer finds no overlapping labels, no legend on an axes or a label and no text cut
    off (analysis.plots.layout_problems, run on every figure as it is saved), and every PNG is as wide
    as the paper's column or text width it was drawn for."""
    assert report.layout == []
    inches = plots.WIDTHS[width]
    for png in out.glob("*.png"):
        assert matplotlib.image.imread(png).shape[1] == pytest.approx(inches * plots.RC["savefig.dpi"], abs=2), png


def relabelled(smoke: Path, n_arms: int, out: Path) -> Path:
    """The smoke sweep's real trial records (params.json, result.json) relabelled into ``n_arms`` arms with
    long names: arm j holds a copy of every seed of real arm j mod 2, with its own ``train.lr`` (the arms
    differ in a key) and its errors raised by 0.002 j (the Δ vs control differ). Running 12 arms of real
    trials would take minutes for what a figure's layout needs: real records, many long names.
    Checkpoints are left behind, so the gate maps are not drawn again (the real report draws them)."""
    out.mkdir()
    shutil.copy(smoke / "sweep.json", out)
    real = load.load(smoke).trials
    arms = list(dict.fromkeys(real["arm"]))
    for j in range(n_arms):
        name = f"topk_preaudit_logits_blend_index_{j}" if j % 2 else f"threshold 0.5, warm 0.4167, arm {j}"
        for _, trial in real[real["arm"] == arms[j % len(arms)]].iterrows():
            folder = out / f"arm{j:02d}_seed{trial['config/seed']}"
            folder.mkdir()
            params = json.loads((smoke / trial["trial_dir"] / "params.json").read_text())
            params.update({ARM_KEY: name, "train.lr": params["train.lr"] * (j + 1)})
            (folder / "params.json").write_text(json.dumps(params))
            rows = [
                {
                    **row,
                    "trial_id": folder.name,
                    **{m: row[m] + 0.002 * j for m in ("val_error", "test_error") if m in row},
                }
                for row in reported(smoke / trial["trial_dir"])
            ]
            (folder / "result.json").write_text("\n".join(map(json.dumps, rows)) + "\n")
    return out


@pytest.mark.parametrize("n_arms", [5, 12])
def test_figures_of_many_long_named_arms_fit_a_column_and_the_full_width(smoke, n_arms, tmp_path):
    """With the real 2-arm report above: 2, 5 and 12 arms, each at a paper's column and full width."""
    sweep = relabelled(smoke, n_arms, tmp_path / "sweep")
    assert load.load(sweep).trials["arm"].nunique() == n_arms
    for width in plots.WIDTHS:
        report = report_module.build(sweep, tmp_path / width, width=width)
        assert {"ablation_val_error", "ablation_test_error", "curves", "cost"} <= figure_files(tmp_path / width)
        assert_fits(report, tmp_path / width, width)
