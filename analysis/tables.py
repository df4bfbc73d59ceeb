"""Tables for papers and READMEs: Markdown, LaTeX (booktabs) and CSV from the same numbers.

Two shapes:
- the arm table (one row per arm): trial counts, mean ± std of ``val_error`` and ``test_error``,
  the 95% CI of ``test_error``, in a method comparison each arm's mean compute (optimizer steps,
  wall time), and the paired comparison with the control arm, with the seeds its effect would need
  for 80% power;
- the main table of a method comparison (rows = methods, columns = tasks, mean ± std).

Lower is better for every error metric, so the lowest mean per column is bold. Arms with failed,
stopped or unfinished trials say so in the cell ("2/5 failed"): a mean over the survivors alone
would flatter an arm that crashes, so nothing is dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis.load import CONFIG, arm_columns, trial_config
from analysis.stats import ALPHA, METRICS, POWER, arm_stats, compare_to_control, default_control, strata_keys
from pare_core.formatting import MISSING, markdown_table, mean_std
from pare_core.formatting import missing as _missing
from sweeps.identity import arm_cells

FORMATS = ("md", "latex", "csv")
DEGENERATE = "degenerate"  # how a trials cell counts completed trials that never beat the majority baseline
# What a trial spent, as reported at its last epoch: totals over the whole run, including supervised
# pre-training stages (ORCA's alignment, MoNA's warm-up and meta steps). Methods differ in those stages,
# so equal epochs are not equal compute, and a method comparison shows both.
BUDGET = ("optimizer_steps", "wall_s")
SEEDS_HEADER = f"seeds for {POWER:.0%} power"
MAX_SEEDS_SHOWN = 10_000
_BUDGET_HEADERS = {"optimizer_steps": "optimizer steps (mean)", "wall_s": "wall time (mean, {unit})"}
_LATEX_ESCAPE = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


@dataclass
class Table:
    """A rendered-agnostic table: header, string cells, which cells are bold, and notes for the reader."""

    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    numbers: pd.DataFrame = field(default_factory=pd.DataFrame)  # the unformatted values (CSV)
    labels: int = 1  # leading label columns (left-aligned in LaTeX; the rest are numbers)


def arm_table(
    trials: pd.DataFrame,
    arm_keys: list[str],
    control: dict[str, Any] | None = None,
    metrics: tuple[str, ...] = METRICS,
    digits: int = 3,
    wilcoxon: bool | None = None,
) -> Table:
    """One row per arm; the comparison columns test ``metrics[-1]`` (test_error) against ``control``
    (default: :func:`analysis.stats.default_control`)."""
    budget = budget_metrics(trials, arm_keys)
    stats = arm_stats(trials, arm_keys, (*metrics, *budget))
    tested = metrics[-1]
    control = default_control(trials, arm_keys) if control is None else control
    compared = compare_to_control(trials, arm_keys, control, tested, wilcoxon) if len(stats) > 1 else pd.DataFrame()
    by_arm = {row["arm"]: row for _, row in compared.iterrows()}
    control_labels = list(dict.fromkeys(compared["control"])) if len(compared) else []
    show_wilcoxon = len(compared) and compared["p_wilcoxon"].notna().any()
    header = ["arm"] + [_short(k) for k in arm_keys] + ["trials"] + [f"{m} (mean ± std)" for m in metrics]
    header += [f"{tested} 95% CI"]
    budget_header, budget_cells = _budget_columns(stats, budget)
    header += budget_header
    if len(compared):
        header += [f"Δ {tested} vs control", "d_z", "p (paired t)"] + (["p (Wilcoxon)"] if show_wilcoxon else [])
        header += ["p (Holm)", SEEDS_HEADER]
    keys = key_cells(trials, arm_keys)
    rows, bold = [], set()
    for i, (_, s) in enumerate(stats.iterrows()):
        cells = [s["arm"], *keys[s["arm"]], trial_counts(s)]
        cells += [mean_std(s[f"{m}_mean"], s[f"{m}_std"], digits) for m in metrics]
        cells += [ci(s[f"{tested}_ci_low"], s[f"{tested}_ci_high"], digits)] + budget_cells[i]
        if len(compared):
            c = by_arm.get(s["arm"])
            if c is None:  # a control arm, or an arm whose task has no control arm
                cells += ["control" if s["arm"] in control_labels else "—"] + [""] * (len(header) - len(cells) - 1)
            else:
                cells += [_num(c["mean_diff"], digits, sign=True), _num(c["d_z"], 2), p_value(c["p_ttest"])]
                cells += [p_value(c["p_wilcoxon"])] if show_wilcoxon else []
                cells += [p_value(c["p_holm"]), seeds_cell(c["seeds_needed"])]
        rows.append(cells)
    strata = strata_keys(arm_keys)
    groups = (
        stats.groupby(arm_columns(strata), sort=False, dropna=False).indices.values() if strata else [range(len(stats))]
    )
    for j, metric in enumerate(metrics):
        column = len(arm_keys) + 2 + j
        for rows_of_group in groups:
            means = stats[f"{metric}_mean"].iloc[list(rows_of_group)]
            bold |= {(int(rows_of_group[i]), column) for i in _best(means)}
    best_where = f" per {', '.join(strata)}" if strata else ""
    notes = [
        f"mean ± std over completed trials (seeds); bold = lowest mean{best_where}; 95% CI of the mean from the "
        "t-distribution; failed, stopped and unfinished trials are counted in 'trials', not averaged."
    ]
    if any(MISSING in cells for cells in keys.values()):
        notes.append("— in a key column: that key has no effect on the arm (e.g. threshold under selection=topk).")
    if budget:
        notes.append(
            "Optimizer steps and wall time: mean over completed trials of each trial's total at its last "
            "epoch, including supervised pre-training stages (ORCA's alignment, MoNA's warm-up and meta "
            "steps): equal epochs are not equal compute."
        )
    if control_labels:
        which = "Control arm" if len(control_labels) == 1 else "Control arms (each arm vs the one of its task)"
        notes.append(
            f"{which}: {'; '.join(control_labels)}. Δ = arm − control on {tested}, paired by seed "
            f"(scipy.stats.ttest_rel{', wilcoxon' if show_wilcoxon else ''}); d_z = mean(Δ)/std(Δ); "
            f"Holm-adjusted over {len(compared)} comparison{'s' if len(compared) != 1 else ''}."
        )
        notes.append(
            f"{SEEDS_HEADER}: seeds a paired t-test needs to detect the observed d_z with "
            f"{POWER:.0%} power at α = {ALPHA:g} (statsmodels); more than the arm has means the sweep "
            "cannot tell an effect of this size from noise."
        )
    numbers = (
        stats.merge(
            compared.drop(columns="control").add_prefix("vs_control_"),
            how="left",
            left_on="arm",
            right_on="vs_control_arm",
        ).drop(columns="vs_control_arm")
        if len(compared)
        else stats
    )
    notes += degenerate_notes(stats)
    return Table(header, rows, bold, notes, numbers, labels=len(arm_keys) + 2)


def budget_metrics(trials: pd.DataFrame, arm_keys: list[str]) -> tuple[str, ...]:
    """The :data:`BUDGET` metrics the arm table shows: in a method comparison (``method`` swept), those
    some trial reported (results from before they were reported have none)."""
    if "method" not in arm_keys:
        return ()
    return tuple(m for m in BUDGET if m in trials and pd.to_numeric(trials[m], errors="coerce").notna().any())


def _budget_columns(stats: pd.DataFrame, budget: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """Header and per-arm cells of the budget columns: steps as whole numbers, wall time in one unit
    for the whole column (h for real sweeps, s for smoke tests) so arms compare at a glance."""
    divisor, unit = time_unit(float(stats["wall_s_mean"].max())) if "wall_s" in budget else (1.0, "s")
    header = [_BUDGET_HEADERS[m].format(unit=unit) for m in budget]
    cells = [[_budget_cell(m, s[f"{m}_mean"], divisor) for m in budget] for _, s in stats.iterrows()]
    return header, cells


def _budget_cell(metric: str, mean: float, divisor: float) -> str:
    if _missing(mean):
        return "—"
    return f"{mean:,.0f}" if metric == "optimizer_steps" else f"{mean / divisor:.1f}"


def main_table(
    trials: pd.DataFrame,
    arm_keys: list[str],
    column_key: str = "task.name",
    metric: str = "test_error",
    digits: int = 3,
) -> Table:
    """The papers' main table: one row per arm without ``column_key`` (e.g. per method), one column
    per value of ``column_key`` (e.g. per task); cells are mean ± std of ``metric``."""
    if column_key not in arm_keys:
        raise ValueError(f"column_key={column_key!r} is not swept here: swept keys are {', '.join(arm_keys)}")
    row_keys = [k for k in arm_keys if k != column_key]
    budget = budget_metrics(trials, arm_keys)
    stats = arm_stats(trials, arm_keys, (metric, *budget))
    columns = list(dict.fromkeys(stats[CONFIG + column_key]))
    row_index = list(dict.fromkeys(tuple(r) for r in stats[arm_columns(row_keys)].itertuples(index=False)))
    budget_header, budget_cells = _budget_columns(stats, budget)
    header = [_short(k) for k in row_keys] + [_fmt_value(c) for c in columns]
    header += [f"{h} per {_noun(column_key)}" for h in budget_header]
    rows = [[_fmt_value(v) for v in key] + ["—"] * (len(columns) + len(budget)) for key in row_index]
    per_column = [[["—"] * len(columns) for _ in budget] for _ in row_index]  # row -> metric -> column
    means = pd.DataFrame(math.nan, index=range(len(row_index)), columns=range(len(columns)))
    keys = key_cells(trials, arm_keys)
    for pos, (_, s) in enumerate(stats.iterrows()):
        i = row_index.index(tuple(s[arm_columns(row_keys)]))
        j = columns.index(s[CONFIG + column_key])
        shown = dict(zip(arm_keys, keys[s["arm"]]))
        rows[i][: len(row_keys)] = [MISSING if shown[k] == MISSING else cell for k, cell in zip(row_keys, rows[i])]
        note = _problems(s)
        cell = mean_std(s[f"{metric}_mean"], s[f"{metric}_std"], digits) if s["n_done"] else "—"
        rows[i][len(row_keys) + j] = f"{cell} ({note})" if note else cell
        means.iloc[i, j] = s[f"{metric}_mean"]
        for m, value in enumerate(budget_cells[pos]):
            per_column[i][m][j] = value
    for i, cells in enumerate(per_column):
        rows[i][len(row_keys) + len(columns) :] = [" / ".join(values) for values in cells]
    bold = {(i, len(row_keys) + j) for j in means.columns for i in _best(means[j])}
    notes = [
        f"{metric}: mean ± std over seeds, lower is better; bold = best per {_noun(column_key)}; "
        "'—' = no completed trial (in a key column: the key has no effect on that row)."
    ]
    if budget:
        notes.append(
            f"Budget columns: the mean per {_noun(column_key)} ({' / '.join(map(_fmt_value, columns))}) "
            "of each trial's total at its last epoch, supervised pre-training stages included (ORCA's "
            "alignment, MoNA's warm-up and meta steps): equal epochs are not equal compute."
        )
    return Table(header, rows, bold, notes, stats, labels=len(row_keys))


def trials_table(
    trials: pd.DataFrame, params: list[str], metric: str = "val_error", mode: str = "min", digits: int = 4
) -> Table:
    """A tuning sweep's trials, best first: each trial's searched values, status, epochs run and its
    last ``metric`` (and ``test_error`` where it finished). Unfinished trials follow, worst last."""
    order = trials.assign(
        _done=trials["status"] != "done",
        _value=pd.to_numeric(trials[metric], errors="coerce") * (1 if mode == "min" else -1),
    )
    order = order.sort_values(["_done", "_value"], kind="stable", na_position="last")
    extra = ["test_error"] if "test_error" in trials else []
    header = ["trial"] + [_short(p) for p in params] + ["status", "epochs", metric] + extra
    rows = []
    for _, t in order.iterrows():
        number = t.get("trial_number")
        rows.append(
            [f"#{int(number)}" if not _missing(number) and number is not None else str(t["trial_id"])]
            + [_fmt_value(t[CONFIG + p]) for p in params]
            + [
                str(t["status"]),
                f"{int(t['epochs'])}/{int(t['planned_epochs'])}"
                if not _missing(t["planned_epochs"])
                else str(t["epochs"]),
            ]
            + [_num(t.get(m, math.nan), digits) for m in [metric] + extra]
        )
    bold = {(0, len(params) + 3)} if len(order) and order["status"].iloc[0] == "done" else set()
    notes = [
        f"{metric} at each trial's last epoch; trials stopped early by the scheduler ran fewer epochs, so "
        "their values are not comparable with completed ones; bold = best completed trial."
    ]
    numbers = order.drop(columns=["_done", "_value"])
    return Table(header, rows, bold, notes, numbers, labels=1)


def render(table: Table, fmt: str) -> str:
    """The table as Markdown (``md``), LaTeX booktabs (``latex``) or CSV (``csv``, the raw numbers)."""
    if fmt == "md":
        return to_markdown(table)
    if fmt == "latex":
        return to_latex(table)
    if fmt == "csv":
        return table.numbers.to_csv(index=False)
    raise ValueError(f"format {fmt!r} is invalid: allowed formats are {', '.join(FORMATS)}")


def to_markdown(table: Table) -> str:
    cells = [
        [f"**{c}**" if (i, j) in table.bold and c else c for j, c in enumerate(row)] for i, row in enumerate(table.rows)
    ]
    text = markdown_table(table.header, cells)
    return text + "".join(f"\n\n{note}" for note in table.notes) + "\n"


def to_latex(table: Table) -> str:
    def cell(i: int, j: int, text: str) -> str:
        text = latex_escape(text).replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("−", "$-$")
        return rf"\textbf{{{text}}}" if (i, j) in table.bold and text else text

    align = "l" * table.labels + "r" * (len(table.header) - table.labels)
    lines = [r"% needs \usepackage{booktabs}"] + [f"% {latex_escape(note)}" for note in table.notes]
    lines += [
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(cell(-1, j, h) for j, h in enumerate(table.header)) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(cell(i, j, c) for j, c in enumerate(row)) + r" \\" for i, row in enumerate(table.rows)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# -- cells ----------------------------------------------------------------------------------------


def trial_counts(s: pd.Series) -> str:
    """``5/5 done`` or ``3/5 done, 2/5 failed``: how many trials the mean is over, and what happened to the
    rest; ``5/5 done (2 reused)`` when some came from an earlier sweep (``sweeps.reuse``)."""
    note = _problems(s)
    reused = f" ({s['n_reused']} reused)" if s.get("n_reused", 0) else ""
    return f"{s['n_done']}/{s['n_trials']} done{reused}" + (f", {note}" if note else "")


def _problems(s: pd.Series) -> str:
    parts = [(s["n_failed"], "failed"), (s["n_stopped"], "stopped early"), (s["n_running"], "unfinished")]
    parts.append((s.get("n_degenerate", 0), DEGENERATE))
    return ", ".join(f"{n}/{s['n_trials']} {what}" for n, what in parts if n)


def degenerate_notes(stats: pd.DataFrame) -> list[str]:
    """What "degenerate" in a trials cell means, when some arm has such trials."""
    if not stats.get("n_degenerate", pd.Series(dtype=int)).any():
        return []
    return [
        f"{DEGENERATE}: a completed trial whose test error does not beat the majority baseline on its own "
        "test split (pare_core.tasks.baselines.degenerate): it learned nothing from its inputs. It is still "
        "in the mean, which then says nothing about the arm's method."
    ]


def ci(low: float, high: float, digits: int) -> str:
    return "—" if _missing(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def seeds_cell(n: float) -> str:
    """Seeds needed for the power target; beyond 10,000 the exact figure only says "no real effect"."""
    if _missing(n):
        return "—"
    return f"{n:,.0f}" if n <= MAX_SEEDS_SHOWN else f">{MAX_SEEDS_SHOWN:,}"


def p_value(p: float) -> str:
    if _missing(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def time_unit(seconds: float) -> tuple[float, str]:
    """(divisor, unit) so trial times read as small numbers: h for real sweeps, s for smoke tests."""
    if seconds >= 2 * 3600:
        return 3600.0, "h"
    if seconds >= 120:
        return 60.0, "min"
    return 1.0, "s"


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPE.get(ch, ch) for ch in text)


def _num(value: float, digits: int, sign: bool = False) -> str:
    if _missing(value):
        return "—"
    return f"{value:+.{digits}f}".replace("-", "−") if sign else f"{value:.{digits}f}"


def key_cells(trials: pd.DataFrame, arm_keys: list[str]) -> dict[str, list[str]]:
    """Per arm label, its cells in the key columns: the value, or "—" for a key with no effect on the arm
    (:func:`sweeps.identity.arm_cells`, as summary.md and the dry-run plan show them)."""
    return {
        label: [_fmt_value(c) for c in arm_cells(trial_config(group.iloc[0]), arm_keys)]
        for label, group in trials.groupby("arm", sort=False)
    }


def _best(means: pd.Series) -> list[int]:
    """Positions of the lowest mean (every one of them on an exact tie)."""
    values = pd.to_numeric(means, errors="coerce").reset_index(drop=True)
    if values.notna().sum() == 0:
        return []
    return list(values.index[values == values.min()])


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _noun(key: str) -> str:
    """What one value of ``key`` is: ``task.name`` -> task, ``gate.threshold`` -> threshold."""
    group, _, leaf = key.rpartition(".")
    return group if leaf == "name" and group else leaf


def _fmt_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
