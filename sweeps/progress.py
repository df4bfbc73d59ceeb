"""Live progress of a running sweep: counts, each running trial's epoch and metric, and an ETA.

Tune's own console output is either silent (``verbose=0``) or a table of every trial's 60-key config;
neither tells a researcher how far a 50-trial sweep is. :class:`ProgressCallback` shows trials done /
failed / running / pending, for each running trial its arm, ``epoch x/N`` and latest metric, and an
ETA for the whole sweep: the running trials' remaining epochs at their own measured seconds per epoch,
and the pending ones at the typical measured start-up and epoch time, placed on the sweep's
concurrency (``sweeps.cost.makespan``); once a trial has finished, the typical extra time of a last
epoch (test pass, baselines) is added too. Until one epoch has been measured the ETA reads "measuring".
A done trial whose test error does not beat its majority baseline is counted as degenerate, and the
last line says the comparison is not meaningful while any is (``sweeps.summary.degenerate_warning``).
Counts are of seeds, as results count them: a fused trial (``sweeps.fused``) is one Tune trial that
trains several seeds, and a seed that failed in it is failed while the others run on.

On a terminal the view is redrawn in place (rich, twice a second at most); lines printed meanwhile
(one per finished trial, by ``SummaryCallback``) scroll above it. When stdout is not a terminal (CI,
a log file) it prints a plain status line every ``$PARE_PROGRESS_INTERVAL_S`` seconds (default 30)
and once at the end.

:func:`quiet_tune` turns off the rest of what Tune prints in a sweep: its experiment box and its
TensorBoard hint (which names a driver folder under /tmp; the events are in the results folder).
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from ray.tune import Callback
from ray.tune.experiment import Trial

from pare_core.formatting import fmt_duration
from pare_core.tasks.baselines import degenerate
from sweeps.cost import makespan
from sweeps.fused import seed_outcomes, seed_text
from sweeps.identity import arm_name
from sweeps.summary import degenerate_warning

INTERVAL_ENV = "PARE_PROGRESS_INTERVAL_S"
REFRESH_S = 0.5  # redraw at most this often on a terminal
MAX_LISTED = 8  # running trials named on a plain status line


def quiet_tune() -> None:
    """Silence Tune's console output for this driver process: the legacy output engine with
    ``verbose=0`` prints nothing (the new engine always prints its experiment box and a TensorBoard
    hint), Tune's INFO logs ("Wrote the latest version of all result files ...") go, and so do its
    "operation took 2.5 s, which may be a performance bottleneck" hints (a tracker writing 60 params
    on a busy disk is not a bottleneck of a minutes-long trial)."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray.tune.utils.util").setLevel(logging.ERROR)


def arm_text(config: dict[str, Any], swept: Sequence[str]) -> str:
    """``topk_preaudit seed=1`` (fused: ``seeds=0-4``): the trial's arm by the spec's name, as every line
    that ``SummaryCallback`` prints names it; a tuning trial by its values of ``swept`` that act on it."""
    return f"{arm_name(config, swept)} {seed_text(config)}"


@dataclass
class _Timing:
    """What one trial's reports say about its speed."""

    started: float  # monotonic time the trial started (this driver's view)
    reported: float = 0.0  # monotonic time of its latest report
    first_epoch: int = 0
    first_wall: float = 0.0  # fit's cumulative wall_s at its first report
    epoch: int = 0
    wall: float = 0.0
    epoch_s: float = 0.0  # its latest epoch's train + validation time, until two reports give a wall-clock rate

    @property
    def s_per_epoch(self) -> float:
        if self.epoch > self.first_epoch:
            return (self.wall - self.first_wall) / (self.epoch - self.first_epoch)
        return self.epoch_s

    @property
    def setup_s(self) -> float:
        """Time before its first measured epoch (data, model, stages) at a steady epoch rate."""
        return max(0.0, self.first_wall - self.first_epoch * self.s_per_epoch)


class ProgressCallback(Callback):
    """The sweep's progress on the terminal (see the module docstring). ``planned``: trials Tune will
    run (a searcher creates them as it goes, so Tune's list grows); ``reused``: finished trials found
    by key and not re-run (``sweeps.reuse``), counted as done."""

    def __init__(self, name: str, metric: str, swept: list[str], planned: int, reused: int = 0):
        self.name, self.metric, self.swept, self.planned, self.reused = name, metric, swept, planned, reused
        self._reset()

    def _reset(self) -> None:
        self.timings: dict[str, _Timing] = {}
        self.end_extra: list[float] = []  # the last epoch's time beyond a steady one, per finished trial
        self.slots = 1  # the most trials seen running at once: the sweep's concurrency
        self.started = time.monotonic()
        self.last_shown = -float("inf")
        self.live: Any = None  # rich.live.Live on a terminal, else None (plain lines)
        self.plain_every = float(os.environ.get(INTERVAL_ENV, 30))

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks with the experiment (tuner.pkl): keep the settings, not the screen."""
        return {k: v for k, v in self.__dict__.items() if k in ("name", "metric", "swept", "planned", "reused")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- Tune hooks ------------------------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        self._reset()
        if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
            from rich.live import Live

            self.live = Live(auto_refresh=False, transient=True, redirect_stdout=True, redirect_stderr=True)
            self.live.start()

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.timings.setdefault(trial.trial_id, _Timing(started=time.monotonic()))

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        t = self.timings.setdefault(trial.trial_id, _Timing(started=time.monotonic()))
        if "epoch" not in result or "wall_s" not in result:
            return
        if not t.first_epoch or result["wall_s"] < t.wall:  # first report, or a retry that restarted fit
            t.first_epoch, t.first_wall = result["epoch"], result["wall_s"]
        elif result["epoch"] == int(trial.config.get("train.epochs", 0)) and t.epoch == result["epoch"] - 1:
            # the last epoch also holds the test pass: kept apart, it would skew the trial's steady rate
            self.end_extra.append(max(0.0, result["wall_s"] - t.wall - t.s_per_epoch))
            return
        t.epoch, t.wall, t.reported = result["epoch"], result["wall_s"], time.monotonic()
        t.epoch_s = result.get("epoch_s", 0.0) + result.get("val_s", 0.0)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.slots = max(self.slots, sum(t.status == Trial.RUNNING for t in trials))
        now = time.monotonic()
        if self.live is not None and now - self.last_shown >= REFRESH_S:
            self.last_shown = now
            self.live.update(self.renderable(trials), refresh=True)
        elif self.live is None and now - self.last_shown >= self.plain_every:
            self.last_shown = now
            print(self.status_line(trials), flush=True)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        print(self.status_line(trials, final=True), flush=True)

    # -- what is shown ---------------------------------------------------------------------------
    def counts(self, trials: Sequence[Trial]) -> dict[str, int]:
        """Seeds done, failed, running, pending, and in all (a searcher's unborn trials count one each);
        and of the done (reused ones aside), those that never beat the majority baseline (degenerate)."""
        runs = [run for t in trials for run in seed_outcomes(t, t.status)]
        status = [s for s, _ in runs]
        return {
            "done": status.count(Trial.TERMINATED) + self.reused,
            "degenerate": sum(s == Trial.TERMINATED and degenerate(result) for s, result in runs),
            "failed": status.count(Trial.ERROR),
            "running": status.count(Trial.RUNNING),
            "pending": sum(s in (Trial.PENDING, Trial.PAUSED) for s in status) + self.unborn(trials),
            "total": len(status) + self.unborn(trials) + self.reused,
        }

    def unborn(self, trials: Sequence[Trial]) -> int:
        """Trials a searcher has yet to create."""
        return max(0, self.planned - len(trials))

    def eta(self, trials: Sequence[Trial]) -> float | None:
        """Seconds until the last trial ends; None until some trial has reported an epoch."""
        measured = [t for t in self.timings.values() if t.first_epoch]
        if not measured:
            return None
        epoch_s = statistics.median(t.s_per_epoch for t in measured)
        setup_s = statistics.median(t.setup_s for t in measured)
        end_s = statistics.median(self.end_extra) if self.end_extra else 0.0
        now = time.monotonic()
        busy, queued = [], []
        for trial in trials:
            planned = int(trial.config.get("train.epochs", 1))
            t = self.timings.get(trial.trial_id)
            if trial.status == Trial.RUNNING:
                if t is not None and t.first_epoch:
                    left = (planned - t.epoch) * t.s_per_epoch + end_s - (now - t.reported)
                else:
                    left = setup_s + planned * epoch_s + end_s - (now - (t.started if t else now))
                busy.append(max(0.0, left))
            elif trial.status in (Trial.PENDING, Trial.PAUSED):
                queued.append(setup_s + planned * epoch_s + end_s)
        if trials:  # a searcher's future trials: the same budget as its first
            queued += [setup_s + int(trials[0].config.get("train.epochs", 1)) * epoch_s + end_s] * self.unborn(trials)
        return makespan(queued, max(self.slots, len(busy)), busy)

    def running(self, trials: Sequence[Trial]) -> list[tuple[Trial, str, str]]:
        """(trial, ``epoch x/N``, latest metric) per running trial."""
        out = []
        for trial in trials:
            if trial.status != Trial.RUNNING:
                continue
            t = self.timings.get(trial.trial_id)
            value = trial.last_result.get(self.metric) if t is not None and t.first_epoch else None
            epoch = f"epoch {t.epoch if t else 0}/{trial.config.get('train.epochs', '?')}"
            out.append((trial, epoch, "—" if value is None else f"{value:.4f}"))
        return out

    def header(self, trials: Sequence[Trial], final: bool = False) -> str:
        """``sweep NAME: 3/10 done, 0 failed, ...``; while some done trial is degenerate, that count after it
        (and at the end, :func:`sweeps.summary.degenerate_warning` on a line of its own)."""
        c = self.counts(trials)
        elapsed = fmt_duration(time.monotonic() - self.started)
        parts = [f"{c['done']}/{c['total']} done", f"{c['failed']} failed"]
        degenerate = f"; {c['degenerate']} degenerate (never beat the majority baseline)" if c["degenerate"] else ""
        if final:
            warning = f"\n{degenerate_warning(c['degenerate'], c['done'])}" if c["degenerate"] else ""
            return f"sweep {self.name}: {', '.join(parts)} in {elapsed}{degenerate}{warning}"
        eta = self.eta(trials)
        parts += [
            f"{c['running']} running",
            f"{c['pending']} pending",
            f"elapsed {elapsed}",
            "ETA measuring"
            if eta is None
            else f"ETA {fmt_duration(eta)} (~{time.strftime('%H:%M', time.localtime(time.time() + eta))})",
        ]
        return f"sweep {self.name}: " + ", ".join(parts) + degenerate

    def status_line(self, trials: Sequence[Trial], final: bool = False) -> str:
        """The plain, one-line view (logs, CI)."""
        line = self.header(trials, final)
        running = self.running(trials)
        if final or not running:
            return line
        listed = "; ".join(
            f"{t.trial_id} {arm_text(t.config, self.swept)} {epoch} {self.metric}={value}"
            for t, epoch, value in running[:MAX_LISTED]
        )
        more = f"; +{len(running) - MAX_LISTED} more" if len(running) > MAX_LISTED else ""
        return f"{line}. running: {listed}{more}"

    def renderable(self, trials: Sequence[Trial]) -> Any:
        """The terminal view: the header, then one row per running trial."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        for column in ("trial", "arm", "epoch", self.metric, "s/epoch"):
            table.add_column(column, justify="right" if column in (self.metric, "s/epoch") else "left")
        for trial, epoch, value in self.running(trials):
            t = self.timings.get(trial.trial_id)
            rate = f"{t.s_per_epoch:.1f}" if t is not None and t.first_epoch else "—"
            table.add_row(trial.trial_id, arm_text(trial.config, self.swept), epoch.removeprefix("epoch "), value, rate)
        return Group(Text(self.header(trials), style="bold"), table)
