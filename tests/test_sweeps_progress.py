"""The live progress view, driven through Tune's callback hooks with real Tune ``Trial`` objects.

No Ray is started: the hooks are what Tune's controller calls, fed here with reports whose timings
are known, so the counts and the ETA have exact answers. The view on a real sweep is checked in
tests/test_sweeps_trackers.py.
"""

from __future__ import annotations

import io
import logging
import os
import pickle

import pytest
from ray.tune.experiment import Trial
from rich.console import Console
from sweep_results import summary_rows

from pare_core.tasks.baselines import TRIVIAL_KEY
from sweeps.fused import TrialRecord
from sweeps.identity import ARM_KEY
from sweeps.progress import ProgressCallback, arm_text, quiet_tune
from sweeps.summary import render

EPOCHS = 4


def trial(lr: float) -> Trial:
    return Trial(
        "train_trial", config={"train.lr": lr, "seed": 0, "train.epochs": EPOCHS, "method": "finetune"}, stub=True
    )


def report(cb: ProgressCallback, trials: list[Trial], t: Trial, epoch: int, wall: float, error: float) -> None:
    result = {"epoch": epoch, "wall_s": wall, "epoch_s": 1.5, "val_s": 0.5, "val_error": error}
    t.update_last_result(result)
    cb.on_trial_result(0, trials, t, result)


@pytest.fixture
def sweep():
    """Two trials running with 2 s epochs after 8 s of set-up (10 s at epoch 1, 12 s at epoch 2), two pending."""
    trials = [trial(lr) for lr in (0.001, 0.002, 0.003, 0.004)]
    cb = ProgressCallback("demo", "val_error", ["train.lr"], planned=4, reused=1)
    cb.setup()  # not a terminal under pytest: plain lines
    for t in trials[:2]:
        t.set_status(Trial.RUNNING)
        cb.on_trial_start(0, trials, t)
        report(cb, trials, t, 1, 10.0, 0.5)
        report(cb, trials, t, 2, 12.0, 0.4)
    return cb, trials


def test_counts_include_reused_trials(sweep):
    cb, trials = sweep
    assert cb.counts(trials) == {"done": 1, "degenerate": 0, "failed": 0, "running": 2, "pending": 2, "total": 5}


def test_eta_places_remaining_work_on_the_sweeps_concurrency(sweep):
    cb, trials = sweep
    cb.on_step_end(0, trials)  # two running at once: two slots
    # running: 2 epochs x 2 s left each; pending: 8 s set-up + 4 x 2 s, one after each running trial
    assert cb.eta(trials) == pytest.approx(4 + 16, abs=0.5)
    running = trials[0]
    report(cb, trials, running, 3, 14.0, 0.3)
    report(cb, trials, running, 4, 21.0, 0.3)  # the last epoch took 5 s beyond a steady one (test pass)
    running.set_status(Trial.TERMINATED)
    # now: 4 s + 5 s left on the other; each pending trial 16 s + 5 s; one starts at once, one after 9 s
    assert cb.eta(trials) == pytest.approx(9 + 21, abs=0.5)


def test_a_searchers_trials_count_before_tune_creates_them(sweep):
    cb, trials = sweep
    cb.planned = 6  # two more trials than Tune has created so far
    cb.on_step_end(0, trials)
    assert cb.counts(trials)["pending"] == 4 and cb.counts(trials)["total"] == 7
    assert cb.eta(trials) == pytest.approx(4 + 16 + 16, abs=0.5)  # four queued on two slots after the running two


def test_eta_waits_for_a_measured_epoch():
    trials = [trial(0.001)]
    cb = ProgressCallback("demo", "val_error", ["train.lr"], planned=1)
    cb.setup()
    trials[0].set_status(Trial.RUNNING)
    cb.on_trial_start(0, trials, trials[0])
    assert cb.eta(trials) is None and "ETA measuring" in cb.status_line(trials)


def test_plain_line_names_running_trials_arm_epoch_and_metric(sweep, capsys):
    cb, trials = sweep
    cb.on_step_end(0, trials)
    line = capsys.readouterr().out.strip()
    assert line.startswith("sweep demo: 1/5 done, 0 failed, 2 running, 2 pending, elapsed ")
    assert "ETA 20s" in line or "ETA 19s" in line
    assert f"{trials[0].trial_id} train.lr=0.001 seed=0 epoch 2/{EPOCHS} val_error=0.4000" in line
    cb.on_step_end(0, trials)  # within the interval: nothing more
    assert capsys.readouterr().out == ""
    cb.on_experiment_end(trials)
    assert capsys.readouterr().out.startswith("sweep demo: 1/5 done, 0 failed in ")


def test_terminal_view_has_a_row_per_running_trial(sweep):
    cb, trials = sweep
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(cb.renderable(trials))
    text = console.file.getvalue()
    assert "sweep demo: 1/5 done" in text
    for t in trials[:2]:
        row = next(line for line in text.splitlines() if t.trial_id in line)
        assert f"train.lr={t.config['train.lr']} seed=0" in row and f"2/{EPOCHS}" in row and "2.0" in row
    assert trials[2].trial_id not in text  # pending trials are counted, not listed


def test_arm_text_names_the_arm_as_the_spec_does():
    config = {"method": "pare", "gate.selection": "topk", "gate.threshold": 0.5, "seed": 3}
    swept = ["gate.selection", "gate.threshold"]
    assert arm_text({**config, ARM_KEY: "topk_preaudit"}, swept) == "topk_preaudit seed=3"
    assert arm_text(config, swept) == "gate.selection=topk seed=3"  # a tuning trial: its values that act on it


def test_degenerate_trials_are_counted_in_the_view_and_the_summary(sweep, capsys):
    """A done trial at its majority baseline (test error 0.481 = baseline/majority) is degenerate; one that
    beats it is not; the final line and summary.md say the comparison is not meaningful."""
    cb, trials = sweep
    final = {"epoch": EPOCHS, "val_error": 0.48, "test_error": 0.481, TRIVIAL_KEY: 0.481}
    for t, result in zip(trials[2:], (final, {**final, "test_error": 0.2})):
        t.update_last_result(result)
        t.set_status(Trial.TERMINATED)
    assert cb.counts(trials)["degenerate"] == 1
    assert "1 degenerate (never beat the majority baseline)" in cb.status_line(trials)
    cb.on_experiment_end(trials)
    final = capsys.readouterr().out
    assert "1 degenerate (never beat the majority baseline)" in final and "1 of 3 done trials are degenerate" in final
    records = [TrialRecord(t.trial_id, f"/x/{t.trial_id}", t.config, t.last_result, t.status) for t in trials[2:]]
    text = render("demo", "val_error", ["train.lr"], records)
    assert "1 of 2 done trials are degenerate" in text
    assert sorted(row["degenerate"] for row in summary_rows(text)) == ["0", "1"]


def test_pickled_with_the_experiment_without_its_screen(sweep):
    cb, _ = sweep
    copy = pickle.loads(pickle.dumps(cb))
    assert (copy.name, copy.metric, copy.swept, copy.planned, copy.reused) == ("demo", "val_error", ["train.lr"], 4, 1)
    assert copy.timings == {} and copy.live is None


def test_quiet_tune_turns_off_tunes_own_output(monkeypatch):
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    tune_logger, util_logger = logging.getLogger("ray.tune"), logging.getLogger("ray.tune.utils.util")
    levels = tune_logger.level, util_logger.level
    try:
        quiet_tune()
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
        assert tune_logger.level == logging.WARNING and util_logger.level == logging.ERROR
    finally:
        tune_logger.setLevel(levels[0])
        util_logger.setLevel(levels[1])
        os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
