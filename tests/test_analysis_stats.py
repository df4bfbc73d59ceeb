"""Statistics on hand-made per-trial frames whose answers are known or computed directly with scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from analysis import stats
from analysis.load import label_arms


def make_trials(rows: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """A per-trial frame as load() builds it: ``config/`` columns, status, metrics, arm labels."""

    def is_result(key: str) -> bool:
        return "error" in key or key in ("epochs", "planned_epochs", "optimizer_steps", "wall_s")

    frame = pd.DataFrame(
        [
            {
                "trial_id": f"t{i:02d}",
                "status": r.pop("status", "done"),
                "time_s": 60.0,
                **{f"config/{k}": v for k, v in r.items() if not is_result(k)},
                **{k: v for k, v in r.items() if is_result(k)},
            }
            for i, r in enumerate(rows)
        ]
    )
    return label_arms(frame)


def gate_sweep(values: dict[str, list[float | None]]) -> tuple[pd.DataFrame, list[str]]:
    """One trial per (selection, seed); None = the trial failed (no final metrics)."""
    rows = []
    for selection, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            row = {"gate.selection": selection, "seed": seed, "method": "pare"}
            if value is None:
                row.update(status="error", val_error=0.9, test_error=math.nan)
            else:
                row.update(val_error=value - 0.01, test_error=value)
            rows.append(row)
    return make_trials(rows)


def test_summarize_matches_scipy_t_interval():
    values = [0.21, 0.25, 0.24, 0.30, 0.27]
    s = stats.summarize(values)
    mean, sem = np.mean(values), scipy.stats.sem(values)
    low, high = scipy.stats.t.interval(0.95, df=len(values) - 1, loc=mean, scale=sem)
    assert s["n"] == 5
    assert s["mean"] == pytest.approx(0.254)
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((low, high))
    one = stats.summarize([0.3, math.nan])  # NaN is not a value; one value has no spread
    assert one["n"] == 1 and one["mean"] == 0.3 and math.isnan(one["std"]) and math.isnan(one["ci_low"])


def test_arm_stats_count_failures_and_average_completed_trials_only():
    trials, keys = gate_sweep({"none": [0.30, 0.32, 0.34], "topk": [0.20, None, 0.26], "random": [None, None, None]})
    table = stats.arm_stats(trials, keys).set_index("arm")
    assert keys == ["gate.selection"]
    assert list(table.index) == ["selection=none", "selection=random", "selection=topk"]  # stable, sorted
    topk = table.loc["selection=topk"]
    assert (topk["n_trials"], topk["n_done"], topk["n_failed"]) == (3, 2, 1)
    assert topk["test_error_mean"] == pytest.approx(0.23)  # the failed trial's 0.9 val_error is not averaged
    assert topk["val_error_mean"] == pytest.approx(0.22)
    assert topk["test_error_std"] == pytest.approx(np.std([0.20, 0.26], ddof=1))
    empty = table.loc["selection=random"]
    assert empty["n_failed"] == 3 and empty["test_error_n"] == 0 and math.isnan(empty["test_error_mean"])
    assert table.loc["selection=none", "time_s"] == 180.0


def test_paired_test_pairs_by_seed_and_matches_scipy():
    control = [0.40, 0.35, 0.38, 0.42, 0.37, 0.39, 0.41]
    arm = [0.36, 0.34, 0.30, 0.40, 0.33, 0.37, None]  # seed 6 failed: only seeds 0-5 pair
    trials, keys = gate_sweep({"none": control, "topk": arm})
    trials = trials.sample(frac=1.0, random_state=3)  # row order must not matter
    result = stats.compare_to_control(trials, keys).set_index("arm").loc["selection=topk"]
    x, y = np.array(arm[:6]), np.array(control[:6])
    diff = x - y
    assert result["control"] == "selection=none"
    assert result["n_pairs"] == 6
    assert result["mean_diff"] == pytest.approx(diff.mean())
    assert result["d_z"] == pytest.approx(diff.mean() / diff.std(ddof=1))
    assert result["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(x, y).pvalue)
    assert result["t"] == pytest.approx(scipy.stats.ttest_rel(x, y).statistic)
    assert result["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(x, y).pvalue)  # n >= 6: on by default


def test_wilcoxon_only_with_enough_pairs_unless_asked():
    trials, keys = gate_sweep({"none": [0.40, 0.35, 0.38], "topk": [0.36, 0.34, 0.30]})
    default = stats.compare_to_control(trials, keys).iloc[0]
    forced = stats.compare_to_control(trials, keys, wilcoxon=True).iloc[0]
    assert math.isnan(default["p_wilcoxon"])
    assert forced["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon([0.36, 0.34, 0.30], [0.40, 0.35, 0.38]).pvalue)


def test_holm_adjustment_by_hand():
    # sorted p: 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> kept monotone at 0.06
    adjusted = stats.holm(np.array([0.01, 0.04, math.nan, 0.03]))
    assert adjusted[[0, 1, 3]] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[2])


def test_default_control_prefers_no_treatment_arms():
    trials, keys = gate_sweep({"random": [0.3, 0.3], "none": [0.3, 0.3], "topk": [0.3, 0.3]})
    assert stats.default_control(trials, keys) == {"gate.selection": "none"}
    methods, mkeys = make_trials(
        [{"method": m, "seed": s, "test_error": 0.1} for m in ("pare", "orca", "finetune") for s in (0, 1)]
    )
    assert stats.default_control(methods, mkeys) == {"method": "finetune"}
    other, okeys = make_trials([{"train.lr": lr, "seed": 0, "test_error": 0.1} for lr in (0.01, 0.001)])
    assert stats.default_control(other, okeys) == {"train.lr": 0.001}  # no preferred arm: the first one


def test_parse_control_matches_one_arm_or_explains():
    trials, keys = make_trials(
        [
            {"gate.selection": s, "gate.threshold": t, "seed": 0, "test_error": 0.1}
            for s, t in (("topk", 0.5), ("threshold", 0.3), ("threshold", 0.7))
        ]
    )
    assert stats.parse_control("gate.selection=threshold,gate.threshold=0.30", trials, keys) == {
        "gate.selection": "threshold",
        "gate.threshold": 0.3,
    }
    with pytest.raises(ValueError, match="matches 2 arms"):
        stats.parse_control("gate.selection=threshold", trials, keys)
    with pytest.raises(ValueError, match="train.lr is not a swept key; swept keys are gate.selection, gate.threshold"):
        stats.parse_control("train.lr=0.1", trials, keys)


def method_task_sweep() -> tuple[pd.DataFrame, list[str]]:
    """methods x aux x tasks, 4 seeds; pare is 0.02 better than finetune on digits, 0.05 worse on dna."""
    base = {"digits": [0.20, 0.25, 0.22, 0.24], "dna": [0.40, 0.31, 0.36, 0.33]}
    shift = {
        ("finetune", "none"): {"digits": 0.0, "dna": 0.0},
        ("finetune", "lsg"): {"digits": 0.01, "dna": 0.01},
        ("pare", "none"): {"digits": -0.02, "dna": 0.05},
    }
    return make_trials(
        [
            {"method": m, "aux": a, "task.name": t, "seed": s, "test_error": base[t][s] + d[t]}
            for (m, a), d in shift.items()
            for t in base
            for s in range(4)
        ]
    )


def test_multi_task_sweep_compares_each_arm_with_its_own_tasks_control():
    trials, keys = method_task_sweep()
    assert stats.default_control(trials, keys) == {"method": "finetune", "aux": "none"}  # not finetune+lsg
    result = stats.compare_to_control(trials, keys).set_index("arm")
    assert len(result) == 4  # 6 arms minus the 2 controls
    for task, diff in (("digits", -0.02), ("dna", 0.05)):
        row = result.loc[f"aux=none, method=pare, name={task}"]
        assert row["control"] == f"aux=none, method=finetune, name={task}"
        assert row["mean_diff"] == pytest.approx(diff) and row["n_pairs"] == 4


def test_control_naming_the_task_is_one_arm_for_all_tasks():
    trials, keys = method_task_sweep()
    assert stats.parse_control("method=finetune,aux=none", trials, keys) == {"method": "finetune", "aux": "none"}
    with pytest.raises(ValueError, match="matches 2 arms per task.name"):
        stats.parse_control("method=finetune", trials, keys)
    control = stats.parse_control("method=finetune,aux=none,task.name=digits", trials, keys)
    result = stats.compare_to_control(trials, keys, control)
    assert set(result["control"]) == {"aux=none, method=finetune, name=digits"} and len(result) == 5


def test_labels_leave_out_keys_without_effect_unless_arms_would_merge():
    trials, keys = make_trials(
        [
            {"gate.selection": s, "gate.threshold": t, "seed": 0, "test_error": 0.1}
            for s, t in (("topk", 0.5), ("threshold", 0.3), ("threshold", 0.7))
        ]
    )
    assert set(trials["arm"]) == {
        "selection=topk",
        "selection=threshold, threshold=0.3",
        "selection=threshold, threshold=0.7",
    }
    same, keys = make_trials(
        [
            {"gate.selection": s, "gate.threshold": t, "seed": 0, "test_error": 0.1}
            for s, t in (("topk", 0.3), ("topk", 0.7), ("threshold", 0.5))
        ]
    )
    assert set(same["arm"]) == {
        "selection=topk, threshold=0.3",
        "selection=topk, threshold=0.7",  # else merged
        "selection=threshold, threshold=0.5",
    }


def test_constant_difference_has_no_test():
    trials, keys = gate_sweep({"none": [0.30, 0.32, 0.34], "topk": [0.20, 0.22, 0.24]})
    result = stats.compare_to_control(trials, keys).iloc[0]
    assert result["mean_diff"] == pytest.approx(-0.10)
    assert math.isnan(result["p_ttest"]) and math.isnan(result["d_z"])
