"""``python -m analysis.report RESULTS_DIR --out DIR``: every table and figure that applies to a sweep.

What applies is decided from the results folder alone: the ablation figures (one per metric, the
arms on its axis; a line figure per key swept alone) need swept keys (a grid sweep), the curriculum figure needs a swept ``curriculum.*`` key and a reported ``ratio``, tuning
figures need a searcher (Optuna) sweep, the gate figure needs PaRe checkpoints and
``pare_core.inspect.gate_map``. Whatever is skipped is listed with the reason, in the output and in
``index.md``, which shows every table and figure on one page. One exception: the gate-learning figure
needs the per-epoch gate statistics PaRe trials report (``gate_score_std``, ``gate_score_range``,
``gate_rank_tau``); results without them (no PaRe trial, or written before they were reported) have
nothing to show there, and it is left out without a note.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from analysis import estimate, plots, provenance, tables, tuning
from analysis.load import CONFIG, Results, load
from analysis.stats import (
    ALPHA,
    CONTROL_HELP,
    POWER,
    arm_stats,
    compare_to_control,
    curve_stats,
    default_control,
    one_key_sweeps,
    parse_control,
)
from pare_core.config import GateSelection, choices
from sweeps.fused import split_ref

GATE_SELECTIONS = tuple(s for s in choices(GateSelection) if s != "none")  # selections that replace tokens
MAX_GATE_FIGURES = 6
# Below this last-epoch mean gate_score_range the gate barely tells a sample's tokens apart: which tokens
# it replaces is then decided by tiny score differences, and index.md says so for the arm.
FLAT_RANGE = 0.05


@dataclass
class Report:
    """What was written: tables, figures (title, caption, files) and what was skipped and why."""

    out: Path
    provenance: str = ""  # the footer of every table, figure and index.md (analysis.provenance)
    tables: list[tuple[str, str, list[Path]]] = field(default_factory=list)  # (title, markdown, files)
    figures: list[tuple[str, str, list[Path]]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sentences a reader must see first (index.md, under the summary)
    layout: list[str] = field(default_factory=list)  # "<figure>: <problem>" (analysis.plots.layout_problems)

    def figure(self, title: str, caption: str, make: Callable[[], list[Path]]) -> None:
        self.figures.append((title, caption, make()))

    def skip(self, what: str, why: str) -> None:
        self.skipped.append((what, why))


def build(
    results_dir: str | Path | list[str | Path],
    out_dir: str | Path,
    control: str | None = None,
    width: str = "full",
    footer: bool = True,
) -> Report:
    """Write every applicable table and figure of ``results_dir`` (one folder, or several read as one
    sweep) into ``out_dir``, plus index.md. Each carries the provenance footer. Figures are drawn
    ``width`` wide (:data:`analysis.plots.WIDTHS`: a paper's column or its full text width); any
    figure whose tick labels overlap or whose legend covers an axes is named in index.md. Without
    ``footer`` the figures leave out the provenance line (index.md and the tables keep it)."""
    if width not in plots.WIDTHS:
        raise ValueError(f"width {width!r} is invalid: allowed values are {', '.join(plots.WIDTHS)}")
    results = load(*(results_dir if isinstance(results_dir, list) else [results_dir]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, provenance.footer(results.trials))
    results.trials.to_csv(out / "trials.csv", index=False)
    results.curves.to_csv(out / "curves.csv", index=False)
    with plots.footer(report.provenance if footer else ""), plots.sized(plots.WIDTHS[width]) as layout:
        _build(results, report, control)
    report.layout = list(layout)
    if report.layout:
        report.notes.append(
            "**Figure layout problems** (found by matplotlib's renderer): " + "; ".join(report.layout) + "."
        )
    write_index(results, report)
    return report


def _build(results: Results, report: Report, control: str | None) -> None:
    out = report.out
    chosen = (
        parse_control(control, results.trials, results.arm_keys) if control and results.search != "search" else None
    )
    _tables(results, report, chosen)
    _curves(results, report)
    _ablations(results, report, chosen)
    _curriculum(results, report)
    _gate(results, report)
    _gate_learning(results, report)
    _tuning(results, report)
    _cost_estimate(results, report)
    report.figure(
        "Compute cost",
        "Trial time and epochs per arm (per trial for a tuning sweep), by how trials "
        "ended; hatched: epochs the scheduler saved by stopping trials early.",
        lambda: plots.cost(_cost_frame(results), out, by=_cost_group(results)),
    )


# -- tables -----------------------------------------------------------------------------------------


def _tables(results: Results, report: Report, control: dict[str, Any] | None) -> None:
    trials, keys = results.trials, results.arm_keys
    if results.search == "search":
        table = tables.trials_table(trials, keys, results.metric, results.mode)
        _write_table(report, "Trials (best first)", "trials_table", table)
        report.skip(
            "arm table",
            "a tuning sweep samples a config per trial: there are no arms with seeds to "
            "average (the trials table lists them instead)",
        )
        return
    arm_table = tables.arm_table(trials, keys, control)
    _write_table(report, "Arms", "table", arm_table)
    report.notes += degenerate_notes(arm_table.numbers) + underpowered_notes(arm_table.numbers)
    if "method" in keys and "task.name" in keys:
        _write_table(
            report,
            "Main table (methods x tasks, test error)",
            "main_table",
            tables.main_table(trials, keys, "task.name"),
        )
    else:
        report.skip("main table (methods x tasks)", "needs both `method` and `task.name` among the swept keys")


def degenerate_notes(numbers: pd.DataFrame) -> list[str]:
    """A sentence while some completed trial is degenerate (never beat its majority baseline,
    ``pare_core.tasks.baselines.degenerate``): no difference between arms means anything then."""
    if "n_degenerate" not in numbers or not numbers["n_degenerate"].any():
        return []
    short = numbers[numbers["n_degenerate"] > 0]
    items = [f"`{r['arm']}` ({int(r['n_degenerate'])}/{int(r['n_done'])})" for _, r in short.iterrows()]
    return [
        f"**Degenerate trials: the comparison is not meaningful.** {int(numbers['n_degenerate'].sum())} of "
        f"{int(numbers['n_done'].sum())} completed trials never beat the majority baseline of their own test split "
        f"(test error ≥ `baseline/majority`; they learned nothing from their inputs): " + ", ".join(items) + ". "
        "Their arms' means, and every difference with them, describe a run that did not train. Fix the base "
        "(learning rate, epochs) until no seed stays at the baseline, then compare."
    ]


def underpowered_notes(numbers: pd.DataFrame) -> list[str]:
    """A sentence when some comparison with the control has fewer seeds than its observed effect needs
    for the power target (``stats.seeds_needed``): its p-value, small or large, does not settle it."""
    if "vs_control_seeds_needed" not in numbers:
        return []
    short = numbers[numbers["vs_control_seeds_needed"] > numbers["vs_control_n_pairs"]]
    if short.empty:
        return []
    compared = int(numbers["vs_control_seeds_needed"].notna().sum())
    items = [
        f"`{r['arm']}` (d_z = {r['vs_control_d_z']:.2f} over {int(r['vs_control_n_pairs'])} seeds) needs "
        f"{tables.seeds_cell(r['vs_control_seeds_needed'])}"
        for _, r in short.iterrows()
    ]
    return [
        f"**Under-powered**: {len(short)} of {compared} comparisons with the control have fewer seeds than "
        f"their observed effect needs to be detected with {POWER:.0%} power (paired t-test, α = {ALPHA:g}): "
        + "; ".join(items)
        + ". Add seeds (`--seeds`) before reading these differences, or their absence, "
        "as real."
    ]


def _cost_estimate(results: Results, report: Report) -> None:
    table = estimate.compare(results)
    if table is None:
        report.skip(
            "cost estimate vs actual",
            f"no {estimate.ESTIMATE_FILE} beside the trials: launches record "
            "their estimate there (sweeps.cost) since the estimate is measured",
        )
        return
    _write_table(report, "Cost: estimated vs actual", "cost_estimate", table)


def _write_table(report: Report, title: str, stem: str, table: tables.Table) -> None:
    table.notes.append(report.provenance)
    files = []
    for fmt, suffix in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
        path = report.out / f"{stem}.{suffix}"
        path.write_text(tables.render(table, fmt))
        files.append(path)
    report.tables.append((title, tables.render(table, "md"), files))


# -- figures ----------------------------------------------------------------------------------------


def _curves(results: Results, report: Report) -> None:
    metric = results.metric
    if metric not in results.curves or results.curves[metric].notna().sum() == 0:
        report.skip("learning curves", f"no per-epoch `{metric}` was reported")
        return
    search = results.search == "search"
    caption = (
        "Every trial's validation error per epoch; trials that end early were stopped by the scheduler."
        if search
        else "Mean validation error per epoch over each arm's seeds, with a 95% t-CI band; failed trials are left out."
    )
    report.figure(
        "Learning curves",
        caption,
        lambda: plots.learning_curves(results.curves, results.trials, report.out, metric, per_trial=search),
    )


def _ablations(results: Results, report: Report, control: dict[str, Any] | None) -> None:
    """One figure per reported metric with the arms on its axis (:func:`plots.arms`), and a line figure
    per key swept on its own (:func:`analysis.stats.one_key_sweeps`): a key that changes together with
    others gets none, since its axis would show their effect too."""
    if results.search == "search":
        report.skip(
            "ablation charts",
            "a tuning sweep samples values instead of fixing arms (see the parallel coordinates figure)",
        )
        return
    if not results.arm_keys:
        report.skip("ablation charts", "no config key varies between trials (one arm)")
        return
    trials, keys = results.trials, results.arm_keys
    metrics = reported_metrics(results)
    stats = arm_stats(trials, keys, metrics)
    control = default_control(trials, keys) if control is None else control
    for metric in metrics:
        comparison = compare_to_control(trials, keys, control, metric) if len(stats) > 1 else pd.DataFrame()
        report.figure(
            f"Ablation: {metric}",
            f"`{metric}` per arm: mean with its 95% t-CI over seeds, each seed a dot (a cross: a degenerate "
            "seed, one that never beat its majority baseline); dashed: the control's mean. Right: Δ vs control, "
            "the mean per-seed difference with its paired 95% CI, and the Holm-adjusted paired t-test p.",
            lambda metric=metric, comparison=comparison: plots.arms(stats, trials, comparison, metric, report.out),
        )
    for key, groups in one_key_sweeps(trials, stats, keys):
        report.figure(
            f"Sweep of {key}",
            f"{', '.join(f'`{m}`' for m in metrics)} over the values of `{key}`, every other key fixed "
            "(one line per such group of arms): mean with 95% t-CI, each seed a dot.",
            lambda key=key, groups=groups: plots.key_sweep(stats, trials, key, groups, report.out, metrics),
        )


def reported_metrics(results: Results) -> tuple[str, ...]:
    """The metric the sweep optimised and ``test_error`` (what papers report), those the trials reported."""
    return tuple(m for m in dict.fromkeys((results.metric, "test_error")) if m in results.trials)


def _curriculum(results: Results, report: Report) -> None:
    schedule_keys = [k for k in results.arm_keys if k.startswith("curriculum.")]
    if results.search == "search":
        report.skip(
            "curriculum figure",
            "a tuning sweep has no schedule arms (searched `curriculum.*` keys are in the parallel coordinates figure)",
        )
        return
    if not schedule_keys:
        report.skip("curriculum figure", "no `curriculum.*` key is swept as an arm")
        return
    if "ratio" not in results.curves:
        report.skip("curriculum figure", "the trials did not report `ratio` per epoch")
        return
    stats = arm_stats(results.trials, results.arm_keys)
    report.figure(
        "Curriculum",
        "Replaced-token ratio per epoch for each schedule (as reported by the trials), "
        "beside each arm's final test error (mean, 95% CI).",
        lambda: plots.curriculum(results.curves, results.trials, stats, schedule_keys, report.out),
    )


def _gate(results: Results, report: Report) -> None:
    """One gate map per token-replacing arm (for a tuning sweep: of the best trial), from the arm's first
    completed trial, at its kept checkpoint with the most tokens replaced (see :func:`_gate_checkpoint`)."""
    trials = results.trials
    if CONFIG + "method" not in trials or not (trials[CONFIG + "method"] == "pare").any():
        report.skip("gate figure", "no PaRe trial (config `method=pare`) in this sweep")
        return
    selection = trials.get(CONFIG + "gate.selection", pd.Series("topk", index=trials.index))
    candidates = trials[
        (trials[CONFIG + "method"] == "pare") & selection.isin(GATE_SELECTIONS) & (trials["status"] == "done")
    ]
    if results.search == "search" and len(candidates):
        values = candidates[results.metric].astype(float)
        candidates = candidates.loc[[values.idxmin() if results.mode == "min" else values.idxmax()]]
    with_checkpoint = [(row, _gate_checkpoint(results, row)) for _, row in candidates.iterrows()]
    with_checkpoint = [(row, ckpt) for row, ckpt in with_checkpoint if ckpt is not None]
    if not with_checkpoint:
        report.skip("gate figure", "no completed PaRe trial that replaces tokens has a checkpoint")
        return
    try:
        from pare_core.inspect import gate_map
    except ImportError as err:
        report.skip("gate figure", f"pare_core.inspect.gate_map is not importable here ({err})")
        return
    arms = list(dict.fromkeys(row["arm"] for row, _ in with_checkpoint))[:MAX_GATE_FIGURES]
    for i, arm in enumerate(arms):
        row, checkpoint = next((r, c) for r, c in with_checkpoint if r["arm"] == arm)
        config = {k[len(CONFIG) :]: v for k, v in row.items() if k.startswith(CONFIG) and not _missing(v)}
        try:
            gate = gate_map(checkpoint, config)
        except Exception as err:  # an optional figure: say why it is missing and build the rest
            # The same code and the same kind of checkpoint fail alike: rebuilding more models is slow.
            message = " ".join(str(err).split())
            message = message if len(message) <= 200 else message[:200] + " ..."
            report.skip(
                "gate figure",
                f"pare_core.inspect.gate_map could not rebuild the model of trial "
                f"{row['trial_id']} from {checkpoint.name}: {type(err).__name__}: {message}",
            )
            return
        seed = config.get("seed")
        report.figure(
            f"Gate map: {arm}",
            f"Gate scores over the token positions of validation sample 0 and the "
            f"tokens replaced at the checkpoint's epoch, trial {row['trial_id']} "
            f"(seed {seed}), {checkpoint.name}. The curriculum sets how many tokens "
            "are replaced (k); at its last epoch it is often 0.",
            lambda gate=gate, i=i, arm=arm: plots.gate_map(
                gate, report.out, f"gate_{i}", title=f"Gate map: {arm}, seed {seed}"
            ),
        )


def _gate_learning(results: Results, report: Report) -> None:
    """The gate statistics per epoch, for each arm that reported them; the caption adds a sentence per
    arm whose gate stayed flat (:func:`flat_gate_notes`), so a reader does not take its selection for a
    learned one. Nothing at all when no trial reported them (see the module docstring)."""
    curves = results.curves
    metrics = tuple(m for m in plots.GATE_LEARNING if m in curves and curves[m].notna().any())
    if not metrics:
        return
    if results.search == "search":
        report.skip(
            "gate learning figure", "a tuning sweep samples a config per trial: there are no arms with seeds to average"
        )
        return
    caption = (
        "Per epoch, mean over each arm's seeds with a 95% t-CI band (failed trials left out): the spread of "
        "the gate's scores over a sample's tokens (std, and range = max − min) and Kendall's τ between this "
        "and the previous epoch's token ranking (from epoch 2), each averaged over a fixed probe set of "
        "samples. A learned gate spreads its scores and keeps its ranking (τ near 1); a gate that learned "
        "nothing stays flat and reshuffles."
    )
    notes = flat_gate_notes(curves, results.trials)
    report.figure(
        "Gate learning",
        " ".join([caption, *notes]),
        lambda: plots.gate_learning(curves, results.trials, report.out, metrics),
    )


def flat_gate_notes(curves: pd.DataFrame, trials: pd.DataFrame, threshold: float = FLAT_RANGE) -> list[str]:
    """One sentence per arm whose mean ``gate_score_range`` at its last reported epoch (over seeds,
    failed trials left out, as drawn in the figure) is below ``threshold``; none for arms whose gate moved."""
    if "gate_score_range" not in curves:
        return []
    last = curve_stats(curves, trials, "gate_score_range").groupby("arm", sort=False).tail(1)
    return [
        f"For `{r['arm']}` the gate's scores are nearly flat: the mean gate_score_range at its last epoch "
        f"({int(r['epoch'])}) is {r['mean']:.3g} over {int(r['n'])} seed{'s' if r['n'] != 1 else ''}, "
        f"below {threshold:g}."
        for _, r in last[last["mean"] < threshold].iterrows()
    ]


def _tuning(results: Results, report: Report) -> None:
    if results.search != "search":
        report.skip("tuning figures", "a grid sweep: no searcher proposed the configs")
        return
    params, metric = results.arm_keys, results.metric
    done = results.trials[results.trials["status"] == "done"]
    report.figure(
        "Optimisation history",
        f"Each trial's last `{metric}` in creation order (stopped trials ran "
        "fewer epochs) and the best completed trial so far.",
        lambda: plots.optimisation_history(results.trials, metric, report.out, results.mode),
    )
    if len(done) < 2 or not params:
        report.skip(
            "parallel coordinates and importance",
            f"{len(done)} completed trials and {len(params)} searched keys: needs 2 or more of each",
        )
        return
    study = tuning.build_study(results.trials, params, metric, results.mode, results.curves, results.space)
    log_params = tuning.log_scaled(study.trials[0].distributions)
    report.figure(
        "Parallel coordinates",
        "Searched values and the final metric of every completed trial.",
        lambda: plots.parallel_coordinates(results.trials, params, metric, report.out, log_params),
    )
    try:
        importances = tuning.importances(study)
    except (RuntimeError, ValueError) as err:
        report.skip("parameter importance", f"optuna could not compute it: {err}")
        return
    report.figure(
        "Parameter importance",
        "fANOVA importance (optuna.importance) over completed trials; "
        "scheduler-stopped trials are left out (shorter budget).",
        lambda: plots.param_importance(importances, len(done), report.out),
    )


# -- index.md ---------------------------------------------------------------------------------------


def write_index(results: Results, report: Report) -> Path:
    """index.md: the sweep in one paragraph, every table inline, every figure embedded, what was skipped."""
    trials = results.trials
    counts = trials["status"].value_counts()
    loud = provenance.warning(trials)
    lines = (
        [f"# Results: {results.path.name}", ""]
        + ([f"**{loud}**", ""] if loud else [])
        + [
            f"Source: {', '.join(f'`{p}`' for p in results.paths)}. {len(trials)} trials: "
            + ", ".join(f"{counts.get(s, 0)} {plots.STATUS_NAMES[s]}" for s in ("done", "stopped", "error", "running"))
            + f". Swept keys: {', '.join(f'`{k}`' for k in results.arm_keys) or 'none'}. "
            f"Metric: `{results.metric}` ({results.mode}). Kind: {'tuning (searcher)' if results.search == 'search' else 'grid'}.",
            "",
            *[line for note in report.notes for line in (note, "")],
            "Tidy data: [trials.csv](trials.csv) (one row per trial), [curves.csv](curves.csv) (one row per epoch).",
            "",
        ]
    )
    for title, markdown, files in report.tables:
        lines += [f"## {title}", "", markdown, "Files: " + ", ".join(f"[{p.name}]({p.name})" for p in files), ""]
    failed = trials[trials["status"] == "error"]
    if len(failed):
        lines += [
            "## Failed trials",
            "",
            tables.to_markdown(
                tables.Table(
                    ["trial", "arm", "seed", "epochs", "retries", "error"],
                    [
                        [
                            str(r["trial_id"]),
                            str(r["arm"]),
                            str(r.get(CONFIG + "seed", "")),
                            str(r["epochs"]),
                            str(r["retries"]),
                            str(r["error_message"]).replace("|", "\\|"),
                        ]
                        for _, r in failed.iterrows()
                    ],
                )
            ),
            "",
        ]
    lines += ["## Figures", ""]
    for title, caption, files in report.figures:
        png = next(p for p in files if p.suffix == ".png")
        pdf = next(p for p in files if p.suffix == ".pdf")
        lines += [f"### {title}", "", f"![{title}]({png.name})", "", f"{caption} ([PDF]({pdf.name}))", ""]
    if report.skipped:
        lines += ["## Skipped", ""] + [f"- **{what}**: {why}" for what, why in report.skipped] + [""]
    lines += ["---", "", report.provenance, ""]
    path = report.out / "index.md"
    path.write_text("\n".join(lines))
    return path


# -- helpers ----------------------------------------------------------------------------------------


def _cost_group(results: Results) -> str:
    return "trial" if results.search == "search" else "arm"


def _cost_frame(results: Results) -> pd.DataFrame:
    """For a tuning sweep, one group per trial, labelled ``#n (id)`` in creation order."""
    trials = results.trials
    if results.search != "search":
        return trials
    trials = trials.sort_values("trial_number", kind="stable")
    labels = [
        f"#{int(n)} ({t})" if not _missing(n) else str(t) for n, t in zip(trials["trial_number"], trials["trial_id"])
    ]
    return trials.assign(trial=labels)


def _gate_checkpoint(results: Results, trial: pd.Series) -> Path | None:
    """The trial's checkpoint (still on disk) whose epoch reported the largest ``k``, the latest on a tie.

    The curriculum usually ends at ratio 0, so the last checkpoint replaces nothing; an earlier kept
    checkpoint shows the trained gate actually choosing tokens. Without per-epoch checkpoint names
    (an old folder) the last ``checkpoint_*`` folder is used."""
    trial_dir = Path(split_ref(trial["trial_path"])[0])  # one seed of a fused trial: the trial's folder
    curve = results.curves[results.curves["trial_id"] == trial["trial_id"]]
    if "checkpoint" in curve:
        kept = curve[curve["checkpoint"].map(lambda c: isinstance(c, str) and (trial_dir / c).is_dir())]
        if len(kept):
            order = kept.assign(_k=kept["k"] if "k" in kept else 0).sort_values(["_k", "epoch"], kind="stable")
            return trial_dir / order["checkpoint"].iloc[-1]
    checkpoints = sorted(trial_dir.glob("checkpoint_*"))
    return checkpoints[-1] if checkpoints else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "results_dir",
        nargs="+",
        help="a Ray Tune experiment folder, e.g. results/ablate_gate; "
        "several are read as one sweep (e.g. an earlier launch and its extension)",
    )
    parser.add_argument("--out", required=True, help="folder for tables, figures and index.md")
    parser.add_argument("--control", help=CONTROL_HELP)
    parser.add_argument(
        "--width",
        choices=list(plots.WIDTHS),
        default="full",
        help="draw figures one column of a two-column paper wide (3.25 in) or the full text width (6.75 in; default)",
    )
    parser.add_argument(
        "--no-footer",
        action="store_true",
        help="leave the provenance line out of the figures, for a camera-ready paper (index.md and the tables keep it)",
    )
    args = parser.parse_args(argv)
    try:
        report = build(args.results_dir, args.out, args.control, args.width, footer=not args.no_footer)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for title, _, files in report.tables + report.figures:
        print(f"wrote {title}: {', '.join(p.name for p in files)}")
    for what, why in report.skipped:
        print(f"skipped {what}: {why}")
    print(f"index: {report.out / 'index.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
