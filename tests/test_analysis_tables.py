"""Tables from hand-made frames: best arm bold, failures shown, the three formats agree."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from test_analysis_stats import gate_sweep, make_trials, method_task_sweep

from analysis import report, stats, tables
from analysis.load import label_arms
from pare_core.tasks.baselines import TRIVIAL_KEY, degenerate


@pytest.fixture
def sweep():
    return gate_sweep(
        {
            "none": [0.30, 0.32, 0.34, 0.31, 0.33],
            "random": [0.28, None, 0.27, None, 0.29],
            "topk": [0.21, 0.25, 0.22, 0.24, 0.23],
            "threshold": [None] * 5,
        }
    )


def rows_by_arm(text: str) -> dict[str, str]:
    """Each row by its first cell: the arm's name (the header row by "arm")."""
    return {
        line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ") and "---" not in line
    }


def test_markdown_shows_every_arm_bolds_the_best_and_counts_failures(sweep):
    trials, keys = sweep
    text = tables.render(tables.arm_table(trials, keys), "md")
    rows = {label.removeprefix("selection="): row for label, row in rows_by_arm(text).items()}
    assert set(rows) == {"arm", "none", "random", "threshold", "topk"}  # header + all 4 arms, none dropped
    assert "**0.230 ± 0.016**" in rows["topk"]  # lowest test_error mean, bold
    assert "**" not in rows["none"] + rows["random"] + rows["threshold"]
    assert "3/5 done, 2/5 failed" in rows["random"]
    assert "0/5 done, 5/5 failed" in rows["threshold"] and "—" in rows["threshold"]
    assert "5/5 done" in rows["topk"] and "failed" not in rows["topk"]
    assert "control" in rows["none"]  # gate.selection=none is the default control
    p = scipy_p([0.21, 0.25, 0.22, 0.24, 0.23], [0.30, 0.32, 0.34, 0.31, 0.33])
    assert f"{p:.3f}" in rows["topk"] or (p < 0.001 and "<0.001" in rows["topk"])


def test_multi_task_table_bolds_and_compares_within_each_task():
    trials, keys = method_task_sweep()
    table = tables.arm_table(trials, keys)
    lines = [line for line in tables.render(table, "md").splitlines() if line.startswith("| ") and "---" not in line]
    rows = {tuple(cell.strip() for cell in line.split("|")[2:5]): line for line in lines[1:]}  # after the arm
    assert "**" in rows[("none", "pare", "digits")] and "**" in rows[("none", "finetune", "dna")]  # one best per task
    assert sum("**" in line for line in rows.values()) == 2
    assert "control" in rows[("none", "finetune", "digits")] and "control" in rows[("none", "finetune", "dna")]
    assert "+0.050" in rows[("none", "pare", "dna")]  # vs dna's finetune, not digits'
    assert "each arm vs the one of its task" in " ".join(table.notes)


def scipy_p(x: list[float], y: list[float]) -> float:
    import scipy.stats

    return float(scipy.stats.ttest_rel(x, y).pvalue)


def test_latex_is_booktabs_with_escaped_names_and_bold_best(sweep):
    trials, keys = sweep
    text = tables.render(tables.arm_table(trials, keys), "latex")
    lines = text.splitlines()
    assert [ln for ln in lines if not ln.startswith("%")][:2] == ["\\begin{tabular}{lllrrrrrrrr}", "\\toprule"]
    assert lines[-2:] == ["\\bottomrule", "\\end{tabular}"]
    body = lines[lines.index("\\midrule") + 1 : lines.index("\\bottomrule")]
    header = lines[lines.index("\\toprule") + 1]
    assert "test\\_error (mean $\\pm$ std)" in header
    assert header.endswith("seeds for 80\\% power \\\\")  # escaped for LaTeX
    assert len(body) == 4 and all(row.count(" & ") == header.count(" & ") for row in body)
    topk = next(row for row in body if row.startswith("selection=topk"))
    assert "\\textbf{0.230 $\\pm$ 0.016}" in topk
    assert "2/5 failed" in next(row for row in body if row.startswith("selection=random"))


def test_csv_holds_the_raw_numbers(sweep):
    trials, keys = sweep
    frame = pd.read_csv(io.StringIO(tables.render(tables.arm_table(trials, keys), "csv"))).set_index("arm")
    expected = stats.arm_stats(trials, keys).set_index("arm")
    assert frame.loc["selection=random", "n_failed"] == 2
    assert frame["test_error_mean"].to_dict() == pytest.approx(expected["test_error_mean"].to_dict(), nan_ok=True)
    assert frame.loc["selection=topk", "vs_control_p_ttest"] == pytest.approx(
        scipy_p([0.21, 0.25, 0.22, 0.24, 0.23], [0.30, 0.32, 0.34, 0.31, 0.33])
    )


def test_main_table_methods_by_tasks():
    rows = []
    for method, task, values in (
        ("finetune", "digits", [0.30, 0.34]),
        ("pare", "digits", [0.20, 0.24]),
        ("finetune", "ecg", [0.50, 0.54]),
        ("pare", "ecg", [0.60, None]),
    ):
        for seed, value in enumerate(values):
            rows.append(
                {
                    "method": method,
                    "task.name": task,
                    "seed": seed,
                    "test_error": value if value else math.nan,
                    "status": "done" if value else "error",
                }
            )
    rows.append({"method": "orca", "task.name": "digits", "seed": 0, "test_error": 0.25})  # orca never ran on ecg
    trials, keys = make_trials(rows)
    table = tables.main_table(trials, keys, "task.name")
    text = tables.render(table, "md")
    assert table.header == ["method", "digits", "ecg"]
    body = {row[0]: row[1:] for row in table.rows}
    assert list(body) == ["finetune", "orca", "pare"]
    assert body["pare"][0] == "0.220 ± 0.028" and table.bold == {(2, 1), (0, 2)}  # best on digits, best on ecg
    assert body["finetune"][1] == "0.520 ± 0.028"
    assert body["pare"][1] == "0.600 (1/2 failed)"  # one seed survived: no std, the failure is shown
    assert body["orca"] == ["0.250", "—"]
    assert "**0.220 ± 0.028**" in text
    with pytest.raises(ValueError, match="column_key='backbone.name' is not swept"):
        tables.main_table(trials, keys, "backbone.name")


def test_trials_table_lists_completed_trials_best_first():
    rows = [
        {"train.lr": lr, "seed": 0, "val_error": v, "status": s, "epochs": e, "planned_epochs": 6}
        for lr, v, s, e in ((0.1, 0.5, "stopped", 1), (0.01, 0.2, "done", 6), (0.001, 0.3, "done", 6))
    ]
    trials, keys = make_trials(rows)
    table = tables.trials_table(trials, keys, "val_error")
    assert [row[1] for row in table.rows] == ["0.01", "0.001", "0.1"]
    assert [row[3] for row in table.rows] == ["6/6", "6/6", "1/6"]
    assert table.bold == {(0, 4)}


def budget_sweep(**extra) -> tuple[pd.DataFrame, list[str]]:
    """A method comparison where ORCA and MoNA spend supervised steps before the task (2 seeds each);
    ORCA's failed third seed stopped early with a partial budget, which must not be averaged."""
    steps = {"finetune": 1000, "mona": 1600, "orca": 1400, "pare": 1000}
    rows = [
        {
            "method": m,
            "seed": seed,
            "test_error": 0.3,
            "optimizer_steps": s,
            "wall_s": 600 + 60 * seed + s / 10,
            **extra,
        }
        for m, s in steps.items()
        for seed in range(2)
    ]
    rows.append(
        {
            "method": "orca",
            "seed": 2,
            "status": "error",
            "test_error": math.nan,
            "optimizer_steps": 20,
            "wall_s": 5.0,
            **extra,
        }
    )
    return make_trials(rows)


def test_method_comparison_shows_each_arms_mean_steps_and_wall_time():
    trials, keys = budget_sweep()
    table = tables.arm_table(trials, keys)
    steps, wall = table.header.index("optimizer steps (mean)"), table.header.index("wall time (mean, min)")
    assert steps < wall < table.header.index("Δ test_error vs control")  # before the comparison block
    body = {row[1]: row for row in table.rows}  # by method, after the arm's name
    assert [body[m][steps] for m in ("finetune", "mona", "orca", "pare")] == ["1,000", "1,600", "1,400", "1,000"]
    assert body["finetune"][wall] == "12.2"  # (700 + 760) / 2 s = 730 s = 12.17 min
    assert body["orca"][wall] == "12.8"  # (740 + 800) / 2 s = 770 s: the failed seed's 5 s is not averaged
    assert any("pre-training stages" in note for note in table.notes)
    latex = tables.render(table, "latex").splitlines()
    header = latex[latex.index("\\toprule") + 1]
    assert "optimizer steps (mean) & wall time (mean, min)" in header
    assert next(ln for ln in latex if ln.startswith("method=mona &")).count(" & ") == header.count(" & ")
    frame = pd.read_csv(io.StringIO(tables.render(table, "csv"))).set_index("config/method")
    assert frame.loc["orca", "optimizer_steps_mean"] == 1400 and frame.loc["orca", "wall_s_mean"] == 770


def test_no_budget_columns_without_a_method_comparison_or_the_metrics():
    gate, gate_keys = make_trials(
        [
            {"gate.selection": s, "seed": seed, "test_error": 0.3, "optimizer_steps": 1000, "wall_s": 60.0}
            for s in ("topk", "random")
            for seed in range(2)
        ]
    )
    methods, method_keys = method_task_sweep()  # results from before the budget was reported
    for trials, keys in ((gate, gate_keys), (methods, method_keys)):
        table = tables.arm_table(trials, keys)
        assert not any("optimizer steps" in h or "wall time" in h for h in table.header)
        assert not any("pre-training" in note for note in table.notes)


def test_main_table_shows_each_methods_budget_per_task():
    rows = [
        {
            "method": m,
            "task.name": task,
            "seed": seed,
            "test_error": 0.3,
            "optimizer_steps": steps,
            "wall_s": 30.0 + seed,
        }
        for m, per_task in (("finetune", {"digits": 100, "dna": 200}), ("orca", {"digits": 160, "dna": 260}))
        for task, steps in per_task.items()
        for seed in range(2)
    ]
    trials, keys = make_trials(rows)
    table = tables.main_table(trials, keys, "task.name")
    assert table.header == [
        "method",
        "digits",
        "dna",
        "optimizer steps (mean) per task",
        "wall time (mean, s) per task",
    ]
    body = {row[0]: row[1:] for row in table.rows}
    assert body["finetune"][2:] == ["100 / 200", "30.5 / 30.5"] and body["orca"][2] == "160 / 260"
    assert any("digits / dna" in note and "pre-training" in note for note in table.notes)
    assert tables.main_table(*method_task_sweep(), "task.name").header[-1] != "wall time (mean, s) per task"


def test_named_arms_lead_keys_without_effect_show_a_dash_and_degenerate_trials_are_counted():
    """The default gate ablation's shape: ``none`` has no warm phase to show, and one seed of
    ``topk_preaudit`` stayed at its majority baseline."""
    arms = {"none": ("none", -1.0), "topk": ("topk", -1.0), "topk_preaudit": ("topk", 0.4167)}
    rows = [
        {"method": "pare", "gate.selection": s, "gate.warm_frac": w, "seed": seed, "test_error": 0.2 + 0.01 * seed}
        for s, w in arms.values()
        for seed in range(2)
    ]
    trials, _ = make_trials(rows)
    trials["arm_name"] = [name for name in arms for _ in range(2)]
    trials["degenerate"] = [False] * 5 + [True]
    trials, keys = label_arms(trials.drop(columns="arm"))
    table = tables.arm_table(trials, keys)
    rows = rows_by_arm(tables.render(table, "md"))
    assert [cell.strip() for cell in rows["none"].split("|")[1:4]] == ["none", "none", "—"]
    assert [cell.strip() for cell in rows["topk_preaudit"].split("|")[1:5]] == [
        "topk_preaudit",
        "topk",
        "0.4167",
        "2/2 done, 1/2 degenerate",
    ]
    assert "degenerate" not in rows["topk"] and any("majority baseline" in n for n in table.notes)
    (note,) = report.degenerate_notes(table.numbers)
    assert "not meaningful" in note and "1 of 6 completed trials" in note and "`topk_preaudit` (1/2)" in note
    assert report.degenerate_notes(tables.arm_table(trials.assign(degenerate=False), keys).numbers) == []


def test_a_trial_is_degenerate_when_its_test_error_does_not_beat_its_majority_baseline():
    at_majority = {"test_error": 0.481, TRIVIAL_KEY: 0.481}
    assert degenerate(at_majority) and degenerate({**at_majority, "test_error": 0.6})
    assert not degenerate({**at_majority, "test_error": 0.2})
    assert not degenerate({"val_error": 0.5, TRIVIAL_KEY: 0.481})  # not finished: no test error yet
    assert not degenerate({**at_majority, "test_error": math.nan})
