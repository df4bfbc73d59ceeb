"""Fault tolerance on local Ray: a crashing trial resumes from its checkpoint; a killed driver resumes.

The crash is injected with ``runtime.fail_at_epoch``: ``fit`` raises at that epoch unless it was
resumed from a checkpoint, so a retry that restarted from scratch would crash again and the trial
would end in ERROR; only a retry from the checkpoint finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_results import SERIAL, read_trials, summary_rows, wait_for, write_spec

from sweeps.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_crashed_trial_retries_from_its_checkpoint_and_a_hopeless_one_is_reported(tmp_path):
    # fail_at_epoch 2: crashes once after the epoch-1 checkpoint, its retry resumes and finishes.
    # fail_at_epoch 1: crashes before any checkpoint, so its retry starts afresh and crashes again.
    # One retry is enough to tell the two apart; each costs a new trial process (~7 CPU-s of start-up).
    spec = write_spec(
        tmp_path / "crash.yaml",
        seeds=[0],
        arms=[{"runtime.fail_at_epoch": e} for e in (-1, 2, 1)],
        max_failures=1,
        **SERIAL,
    )
    assert main(str(spec), argv=["--storage-path", str(tmp_path)]) == 1  # 1 = some trial failed
    experiment = tmp_path / "crash"
    trials = {t["config"]["runtime.fail_at_epoch"]: t for t in read_trials(experiment)}
    for e in (-1, 2):  # both finished with the full epoch count, each epoch reported once
        assert [row["epoch"] for row in trials[e]["rows"]] == [1, 2, 3]
    assert "injected failure at epoch 2" in (trials[2]["dir"] / "error.txt").read_text()  # it did crash
    for key in ("val_error", "test_error"):  # and resuming reproduced the uninterrupted run exactly
        assert trials[2]["rows"][-1][key] == trials[-1]["rows"][-1][key]
    assert not (trials[-1]["dir"] / "error.txt").exists()
    assert "injected failure at epoch 1" in (trials[1]["dir"] / "error.txt").read_text()
    summary = (experiment / "summary.md").read_text()
    assert "3 trials: 2 done, 1 failed" in summary
    # per arm: done, failed, pending, crashes (the hopeless one: first try + 1 retry)
    arms = {
        row["runtime.fail_at_epoch"]: [row[k] for k in ("done", "failed", "pending", "crashes")]
        for row in summary_rows(summary)
    }
    assert arms["2"] == ["1", "0", "0", "1"] and arms["1"] == ["0", "1", "0", "2"]
    assert "## Failed trials" in summary and f"{trials[1]['dir']}/error.txt" in summary


def saved_state(experiment: Path) -> dict[str, tuple[str, int]]:
    """Per trial id, its status and last epoch in Tune's newest saved experiment state: what ``--resume``
    continues from (every epoch is checkpointed here); empty before Tune saved any. Tune saves that state
    now and then, while the trial's rows are written as they come, so a killed driver can leave rows after
    it; the resumed trial reports those epochs again (a CI run at 7ac2356: epoch 2 twice), and analysis
    keeps the later report (``analysis.load``)."""
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states:
        return {}
    saved = {}
    for trial_json, metadata in json.loads(states[-1].read_text())["trial_data"]:
        trial, last = json.loads(trial_json), json.loads(metadata).get("last_result") or {}
        saved[trial["trial_id"]] = (trial["status"], last.get("training_iteration", 0))
    return saved


@pytest.mark.parametrize("fuse", [False, True], ids=["plain", "fused"])
def test_killed_driver_resumes_without_rerunning_finished_trials(tmp_path, fuse):
    # two waves of two trials (1 CPU each on 2 CPUs); the second wave runs longer, so the driver is
    # killed while it runs, after Tune's saved state records the first wave as finished. Fused, each
    # arm is one Tune trial of both seeds: the short arm finishes while the long one runs. The long arm
    # is 3x the short one so that, on a loaded machine, Tune's state is saved while it still runs.
    n_tune = 2 if fuse else 4
    spec = write_spec(tmp_path / "kill.yaml", arms=[{"train.epochs": 3}, {"train.epochs": 9}], seeds=[0, 1])
    experiment = tmp_path / "kill"
    flags = ["--storage-path", str(tmp_path), *(["--fuse-seeds"] if fuse else [])]
    command = [sys.executable, "-m", "sweeps", str(spec), *flags]
    driver = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )

    def finished_in_saved_state() -> list[str]:
        """Trial ids Tune's saved experiment state already records as finished (what --resume reads)."""
        try:
            saved = saved_state(experiment)
        except (json.JSONDecodeError, KeyError):  # being rewritten: try again
            return []
        done = [trial_id for trial_id, (status, _) in saved.items() if status == "TERMINATED"]
        return done if n_tune // 2 <= len(done) < n_tune else []

    try:
        finished = wait_for(finished_in_saved_state, 240, "the short arm finished in the saved experiment state")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
        driver.wait()
    resumes_after = {trial_id: epoch for trial_id, (_, epoch) in saved_state(experiment).items()}
    before = {
        t["dir"].name: (t["dir"] / "result.json").read_text()
        for t in read_trials(experiment)
        if t["rows"] and t["rows"][0]["trial_id"] in finished
    }
    assert len(before) == len(finished)

    assert main(str(spec), argv=["--storage-path", str(tmp_path), "--resume"]) == 0
    trials = read_trials(experiment)
    assert len(trials) == n_tune
    for t in trials:  # every curve whole and in order; only what came after the saved state was reported again
        epochs = [r["epoch"] for r in t["rows"]]
        assert sorted(set(epochs)) == list(range(1, t["config"]["train.epochs"] + 1)) and epochs == sorted(epochs)
        again = [r for r in t["rows"] if epochs.count(r["epoch"]) > 1]
        assert all(r["epoch"] > resumes_after.get(r["trial_id"], 0) for r in again), t["dir"]
        for first, second in zip(again[::2], again[1::2]):  # a resumed fit repeats its epochs exactly
            assert first["epoch"] == second["epoch"] and first["val_error"] == second["val_error"], t["dir"]
            assert first.get("train_loss") == second.get("train_loss")  # a fused row has it per seed only
    for t in trials:
        if t["dir"].name in before:  # not re-run: not a byte of its results changed
            assert (t["dir"] / "result.json").read_text() == before[t["dir"].name]
    assert "4 trials: 4 done, 0 failed" in (experiment / "summary.md").read_text()
