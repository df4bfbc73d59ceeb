"""A retried trial keeps the epochs it reported before it failed (``sweeps.retry``), on real local Ray.

Which copy the loggers find on a retry depends on when Ray's background copy last ran, so the test
fixes it: background copies are held off (``TUNE_GLOBAL_CHECKPOINT_S``), and a callback leaves the
results folder holding the trial's files as a copy taken before its last report would have.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
import ray
from ray import cloudpickle, tune

from sweeps.retry import UploadReportsBeforeRetry

pytestmark = pytest.mark.slow
LOG_FILES = ("result.json", "progress.csv")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import a test module


def crash_once_after_epoch_1(config: dict) -> None:
    """Reports epochs 1-3 with a checkpoint each; the first try fails right after epoch 1's report."""
    checkpoint, start = tune.get_checkpoint(), 0
    if checkpoint:
        with checkpoint.as_directory() as folder:
            start = json.loads(Path(folder, "epoch.json").read_text())
    for epoch in range(start + 1, 4):
        if epoch == 2 and not checkpoint:
            raise RuntimeError("injected failure after epoch 1")
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "epoch.json").write_text(json.dumps(epoch))
            tune.report({"epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder))


class StaleCopy(tune.Callback):
    """The results folder's copy of the trial's log files, as taken before its epoch-1 report: empty."""

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        for name in LOG_FILES:
            Path(trial.storage.trial_fs_path, name).write_text("")


def reported_epochs(storage: Path, callbacks: list[tune.Callback]) -> list[int]:
    tuner = tune.Tuner(
        crash_once_after_epoch_1,
        run_config=tune.RunConfig(
            name="retry",
            storage_path=str(storage),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=1),
            callbacks=callbacks,
        ),
    )
    [result] = tuner.fit()
    assert result.error is None and result.metrics["epoch"] == 3  # it did resume and finish
    [trial_dir] = (storage / "retry").glob("crash_once_after_epoch_1_*")
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    return [row["epoch"] for row in rows]


def test_a_retried_trial_keeps_the_reports_made_before_it_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1000")  # no background copy during the run
    ray.init(address="local", include_dashboard=False, num_cpus=1, log_to_driver=False)
    try:
        # Ray alone: the loggers restart from the stale copy, and epoch 1 is lost.
        assert reported_epochs(tmp_path / "ray", [StaleCopy()]) == [2, 3]
        # With the upload on retry, the copy is current again when the loggers read it.
        assert reported_epochs(tmp_path / "ours", [StaleCopy(), UploadReportsBeforeRetry()]) == [1, 2, 3]
    finally:
        ray.shutdown()
