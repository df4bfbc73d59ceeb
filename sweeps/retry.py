"""A retried trial keeps every epoch it reported before it failed.

Tune's loggers write a trial's ``result.json`` and ``progress.csv`` in a staging folder on the driver,
which Ray copies to the results folder in the background, at most every ~10 s. When a failed trial
restarts from its checkpoint, each logger first replaces its staged file with the results folder's
copy (``LoggerCallback._restore_from_remote`` in Ray 2.60). If no copy ran between the trial's last
report and its failure, that copy is stale, and the reports in between are lost for good: a fused
sweep's CI run read a resumed trial with its first epoch missing. Uploading the staged folder when
the trial is requeued makes the results folder's copy current before the loggers read it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray.tune import Callback
from ray.tune.experiment import Trial

logger = logging.getLogger(__name__)


class UploadReportsBeforeRetry(Callback):
    """On a retry, copy the trial's staged log files to its folder in the results folder."""

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if not Path(trial.local_path).is_dir():  # failed before it logged anything
            return
        try:  # a background copy that read the files before the last report must not land after ours
            trial.storage.syncer.wait()
        except Exception as error:  # Ray's own sync failed: say so, and still copy ours
            logger.warning("copying the results folder in the background failed: %s", error)
        # A trial that failed before its first report, in a process that an earlier trial had started
        # (reuse_actors), has no folder in the results folder yet: copying into it failed with
        # FileNotFoundError and took the driver down (tests/test_sweeps_faults.py, one trial at a time).
        destination = trial.storage.storage_filesystem
        destination.create_dir(trial.storage.trial_fs_path, recursive=True)
        pyarrow.fs.copy_files(trial.local_path, trial.storage.trial_fs_path, destination_filesystem=destination)
