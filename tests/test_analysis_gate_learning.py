"""The gate-learning figure and its index.md sentences, on hand-made curves whose answers are known.

Three arms, 5 epochs: finetune (no gate: NaN statistics), PaRe with topk (the gate learns: its score
range grows to 0.51 at epoch 5) and PaRe with random (flat: range 0.022 at epoch 5). The random arm
also has a failed trial with a wide range, which must not count.
"""

from __future__ import annotations

import math

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from test_analysis_plots import assert_figure
from test_analysis_stats import make_trials

from analysis import plots, stats
from analysis import report as report_module
from analysis.load import Results

EPOCHS = 5
SEEDS = 3


def gate_values(selection: str | None, seed: int, epoch: int) -> dict[str, float]:
    """The statistics a trial reports at ``epoch``; ``selection=None``: finetune, no gate (NaN)."""
    if selection is None:
        return dict.fromkeys(plots.GATE_LEARNING, math.nan)
    tau = math.nan if epoch == 1 else 0.6 + 0.08 * epoch  # no previous ranking at epoch 1
    if selection == "topk":
        return {"gate_score_std": 0.03 * epoch, "gate_score_range": 0.1 * epoch + 0.01 * seed, "gate_rank_tau": tau}
    if seed == SEEDS:  # the failed trial: a wide range that would hide the flat gate if it were averaged
        return {"gate_score_std": 0.3, "gate_score_range": 0.9, "gate_rank_tau": tau}
    return {"gate_score_std": 0.004, "gate_score_range": 0.02 + 0.002 * seed, "gate_rank_tau": tau - 0.8 + 0.1 * seed}


@pytest.fixture(scope="module")
def sweep() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    arms = [("finetune", None), ("pare", "topk"), ("pare", "random")]
    rows = [
        {
            "method": method,
            "gate.selection": selection,
            "seed": seed,
            "val_error": 0.3,
            "test_error": 0.3,
            "status": "error" if seed == SEEDS else "done",
        }
        for method, selection in arms
        for seed in range(SEEDS + (selection == "random"))
    ]
    trials, keys = make_trials(rows)
    curves = pd.DataFrame(
        [
            {
                "trial_id": t["trial_id"],
                "epoch": epoch,
                "val_error": 0.3,
                **gate_values(
                    t["config/gate.selection"] if t["config/method"] == "pare" else None, t["config/seed"], epoch
                ),
            }
            for _, t in trials.iterrows()
            for epoch in range(1, EPOCHS + 1)
        ]
    )
    return trials, curves, keys


def label(trials: pd.DataFrame, selection: str) -> str:
    return trials.loc[trials["config/gate.selection"] == selection, "arm"].iloc[0]


def test_curve_stats_average_seeds_per_epoch_without_failed_trials_or_missing_values(sweep):
    trials, curves, _ = sweep
    ranges = stats.curve_stats(curves, trials, "gate_score_range")
    assert set(ranges["arm"]) == {label(trials, "topk"), label(trials, "random")}  # finetune reported none
    last = ranges[ranges["epoch"] == EPOCHS].set_index("arm")
    topk = [0.5, 0.51, 0.52]
    expected = stats.summarize(topk)
    assert last.loc[label(trials, "topk"), ["n", "mean", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [3, 0.51, expected["ci_low"], expected["ci_high"]]
    )
    assert last.loc[label(trials, "random"), "mean"] == pytest.approx(0.022)  # the failed trial's 0.9 left out
    tau = stats.curve_stats(curves, trials, "gate_rank_tau")
    assert sorted(set(tau["epoch"])) == [2, 3, 4, 5]  # epoch 1 has no previous ranking: no row, no point


def test_flat_gate_gets_a_sentence_and_a_moving_one_does_not(sweep):
    trials, curves, _ = sweep
    assert report_module.flat_gate_notes(curves, trials) == [
        f"For `{label(trials, 'random')}` the gate's scores are nearly flat: the mean gate_score_range at its "
        "last epoch (5) is 0.022 over 3 seeds, below 0.05."
    ]
    flagged = " ".join(report_module.flat_gate_notes(curves, trials, threshold=0.6))
    assert label(trials, "topk") in flagged and "0.51 over 3 seeds, below 0.6" in flagged
    assert report_module.flat_gate_notes(curves.drop(columns="gate_score_range"), trials) == []


def test_gate_learning_figure_draws_the_arms_with_a_gate_only(sweep, tmp_path):
    trials, curves, _ = sweep
    paths = plots.gate_learning(curves, trials, tmp_path)
    assert [p.name for p in paths] == ["gate_learning.png", "gate_learning.pdf"]
    arms = list(dict.fromkeys(trials.loc[trials["status"] != "error", "arm"]))  # colours as in learning_curves
    for arm in (label(trials, "topk"), label(trials, "random")):
        image = assert_figure(paths, plots.colour(arms.index(arm)))
    finetune = np.array(matplotlib.colors.to_rgb(plots.colour(arms.index("method=finetune"))))
    assert (np.abs(image - finetune).max(axis=-1) < 0.02).sum() == 0  # no gate, nothing drawn in its colour


def results(trials: pd.DataFrame, curves: pd.DataFrame, keys: list[str], path, search: str = "grid") -> Results:
    return Results(path, trials, curves, keys, "val_error", "min", search)


def test_index_lists_the_figure_and_says_which_gate_stayed_flat(sweep, tmp_path):
    trials, curves, keys = sweep
    trials = trials.assign(epochs=EPOCHS, retries=0, error_message="")  # index.md lists the failed trial
    swept = results(trials, curves, keys, tmp_path)
    report = report_module.Report(tmp_path)
    report_module._gate_learning(swept, report)
    index = report_module.write_index(swept, report).read_text()
    assert "### Gate learning" in index and "![Gate learning](gate_learning.png)" in index
    assert "[PDF](gate_learning.pdf)" in index and (tmp_path / "gate_learning.pdf").stat().st_size > 1000
    assert f"For `{label(trials, 'random')}` the gate's scores are nearly flat" in index
    assert f"For `{label(trials, 'topk')}`" not in index and "For `method=finetune`" not in index


def test_no_gate_statistics_no_figure_and_no_note(sweep, tmp_path):
    trials, curves, keys = sweep
    for without in (
        curves.drop(columns=list(plots.GATE_LEARNING)),  # results from before they were reported
        curves.assign(**dict.fromkeys(plots.GATE_LEARNING, math.nan)),
    ):  # no PaRe trial
        report = report_module.Report(tmp_path)
        report_module._gate_learning(results(trials, without, keys, tmp_path), report)
        assert report.figures == [] and report.skipped == []
    assert not (tmp_path / "gate_learning.png").exists()


def test_tuning_sweep_says_why_there_is_no_gate_learning_figure(sweep, tmp_path):
    trials, curves, keys = sweep
    report = report_module.Report(tmp_path)
    report_module._gate_learning(results(trials, curves, keys, tmp_path, search="search"), report)
    assert report.figures == [] and "gate learning figure" in dict(report.skipped)
