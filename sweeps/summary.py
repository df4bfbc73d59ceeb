"""A live ``summary.md`` per sweep: one row per arm (as the spec names it), rewritten as trials end.

Columns: the arm's name, the swept keys ("—" where a key has no effect on the arm), trials done (of which
reused: finished earlier, found by key, not re-run) / failed / pending, degenerate (done trials whose test
error does not beat the majority baseline: ``pare_core.tasks.baselines.degenerate``), crashes (every crash counts, including those a retry recovered from), then mean ±
std over seeds of the metric and of ``test_error``.

A driver-side Ray Tune callback, so it sees every trial, including trials finished before a
``--resume`` (Tune hands the full trial list to each hook). Failed trials are counted and listed,
never dropped: a mean over the survivors alone would flatter an arm that crashes. A fused trial
counts as its seeds, each with its own metrics and status (``sweeps.fused``).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from ray.tune import Callback
from ray.tune.experiment import Trial

from pare_core.formatting import markdown_table, mean_std_of
from pare_core.tasks.baselines import TRIVIAL_KEY, degenerate
from sweeps.fused import TrialRecord, seed_records, seed_text, split_ref
from sweeps.identity import ARM_KEY, arm_cells, arm_name
from sweeps.storage import join, write_text

DONE, FAILED = Trial.TERMINATED, Trial.ERROR


def runs_of(trials: Sequence[Any], ending: dict[str, str]) -> list[TrialRecord]:
    """One record per seed of ``trials`` (Tune trials and reused records), with its status: ``ending``
    maps trial ids to the status they are entering (Tune calls the completion and error hooks before it
    updates the trial's own status)."""
    return [run for t in trials for run in seed_records(t, ending.get(t.trial_id, t.status))]


def render(
    name: str,
    metric: str,
    swept: list[str],
    trials: Sequence[Trial],
    ending: dict[str, str] | None = None,
    arm_order: Sequence[str] = (),
) -> str:
    """The summary's Markdown for the current state of ``trials``, one trial per seed (``ending``: see
    :func:`runs_of`). Arms come in ``arm_order`` (the spec's), not in Tune's trial order: Tune moves a
    retried trial to the end of its list, so that order depends on which trial crashed first."""
    runs = runs_of(trials, ending or {})
    arms: dict[Any, list[TrialRecord]] = {}
    for run in runs:
        arm = run.config.get(ARM_KEY)  # the spec's name; tuning trials have none: grouped by their values
        arms.setdefault(arm or tuple(repr(run.config.get(k)) for k in swept), []).append(run)
    position = {arm: i for i, arm in enumerate(dict.fromkeys(arm_order))}
    rows = []
    for group in sorted(arms.values(), key=lambda g: position.get(g[0].config.get(ARM_KEY), len(position))):
        done = [t for t in group if t.status == DONE]
        failed = sum(t.status == FAILED for t in group)
        rows.append(
            [
                group[0].config.get(ARM_KEY) or "—",
                *arm_cells(group[0].config, swept),
                len(done),
                sum(t.reused for t in group),
                failed,
                len(group) - len(done) - failed,
                sum(degenerate(t.last_result) for t in done),
                sum(t.num_failures for t in group),
                mean_std_of([t.last_result.get(metric) for t in done], 4, count=True),
                mean_std_of([t.last_result.get("test_error") for t in done], 4, count=True),
            ]
        )
    headers = [
        "arm",
        *swept,
        "done",
        "reused",
        "failed",
        "pending",
        "degenerate",
        "crashes",
        f"{metric} (mean ± std)",
        "test_error (mean ± std)",
    ]
    counts = {s: sum(t.status == s for t in runs) for s in (DONE, FAILED)}
    n_reused = sum(t.reused for t in runs)
    n_degenerate = sum(degenerate(t.last_result) for t in runs if t.status == DONE)
    text = [
        f"# Sweep `{name}`",
        "",
        f"{len(runs)} trials: {counts[DONE]} done, {counts[FAILED]} failed, "
        f"{len(runs) - counts[DONE] - counts[FAILED]} pending or running; {n_reused} of the done reused "
        "(finished earlier with the same key, not re-run). "
        f"Updated {time.strftime('%Y-%m-%d %H:%M:%S')}. Metrics are each trial's last report "
        f"(`test_error` appears when a trial ran its full budget).",
        "",
        *([degenerate_warning(n_degenerate, counts[DONE]), ""] if n_degenerate else []),
        markdown_table(headers, rows),
    ]
    failures = [t for t in runs if t.status == FAILED]
    if failures:
        text += [
            "",
            "## Failed trials",
            "",
            markdown_table(
                ["trial", "seed", *swept, "error"],
                [
                    [
                        t.trial_id,
                        t.config.get("seed"),
                        *(t.config.get(k) for k in swept),
                        t.error or f"`{join(split_ref(t.path)[0], 'error.txt')}`",  # a fused seed's own error
                    ]
                    for t in failures
                ],
            ),
        ]
    return "\n".join(text) + "\n"


def degenerate_warning(n: int, done: int) -> str:
    """The sentence summary.md and the progress view's last line show while some done trial is degenerate."""
    return (
        f"**{n} of {done} done trials are degenerate**: their test error does not beat the majority baseline "
        "of their own test split (they learned nothing from their inputs; "
        "`pare_core.tasks.baselines.degenerate`). A comparison of arms is not meaningful while this holds: "
        "fix the base (learning rate, epochs) first."
    )


class SummaryCallback(Callback):
    """Rewrites ``<experiment dir>/summary.md`` when a trial completes, fails or is retried, and at the end.

    It also prints one line per such event: Tune's own console output repeats every trial's full
    60-key config, which buries the progress of a sweep (the runner sets ``verbose=0``).
    """

    def __init__(
        self,
        experiment_path: str,
        name: str,
        metric: str,
        swept: list[str],
        reused: Sequence[Any] = (),
        arm_order: Sequence[str] = (),
    ):
        self.path = join(experiment_path, "summary.md")
        self.name, self.metric, self.swept, self.arm_order = name, metric, swept, arm_order
        self.reused = list(reused)  # finished trials found by key: shown as done, never re-run

    def write(self, trials: Sequence[Trial], trial: Trial | None = None, ending: str = "") -> None:
        """Rewrite summary.md; with ``trial``, also print its one-line progress (``ending``: its new state)."""
        endings = {trial.trial_id: ending} if trial is not None and ending in (DONE, FAILED) else {}
        write_text(
            self.path, render(self.name, self.metric, self.swept, [*self.reused, *trials], endings, self.arm_order)
        )
        if trial is not None:
            runs = runs_of(trials, endings)
            finished = sum(t.status in (DONE, FAILED) for t in runs)
            arm = arm_name(trial.config, self.swept)
            seeds = runs_of([trial], endings)
            failed_seeds = [t for t in seeds if t.error]
            degenerate_seeds = [t for t in seeds if t.status == DONE and degenerate(t.last_result)]
            result = trial.last_result
            print(
                f"[{finished}/{len(runs)}] {ending:10s} {trial.trial_id} {arm} {seed_text(trial.config)}: "
                f"epoch {result.get('epoch', 0)}, {self.metric}={result.get(self.metric, float('nan')):.4f}"
                + (f"  ({len(failed_seeds)} seed(s) failed: see summary.md)" if failed_seeds else "")
                + (
                    f"  ({len(degenerate_seeds)} seed(s) degenerate: test_error does not beat {TRIVIAL_KEY})"
                    if degenerate_seeds
                    else ""
                )
                + ("" if ending == DONE else f"  (error: {join(trial.path, 'error.txt')})"),
                flush=True,
            )

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.write(trials, trial, DONE)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.write(trials, trial, FAILED)

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.write(trials, trial, "RETRYING")

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.write(trials)
