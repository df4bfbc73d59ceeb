"""The Ray Tune function trainable: ``pare_core.train.fit`` with Tune's report and checkpoints.

``pare_core`` stays free of Ray: ``fit`` takes a plain ``report(metrics, checkpointer)`` callback, and
this module adapts it to ``tune.report``. Only ``ray.tune.*`` APIs are used (the ``ray.train.*``
spellings fail inside Tune in Ray 2.60).
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import ray
from ray import tune

from pare_core.config import TrialConfig
from pare_core.train import Checkpointer, fit
from sweeps.identity import config_only


def trial_threads() -> int:
    """torch threads = the trial's CPU allocation, so co-located trials do not oversubscribe cores."""
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    return max(1, int(cpus))


def train_trial(config: dict[str, Any], checkpoint_every: int = 1) -> None:
    """Run one trial; ``config`` is the full flat TrialConfig (what ``params.json`` then records).

    Reports every epoch; saves a checkpoint every ``checkpoint_every`` epochs and at the last one.
    After a crash, Tune restarts the trial and ``tune.get_checkpoint()`` hands back the latest
    checkpoint, from which ``fit`` continues (epoch numbering continues).
    """
    # Ray logs "Checkpoint successfully created at: ..." from the worker at every checkpoint, and the
    # driver prints each such line: dozens per sweep that say nothing the summary does not.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    cfg = TrialConfig.from_flat(config_only(config))
    if not cfg.runtime.threads:
        cfg.runtime.threads = trial_threads()
    node_id = ray.get_runtime_context().get_node_id()

    def report(metrics: dict[str, Any], ckpt: Checkpointer) -> None:
        metrics = {**metrics, "node_id": node_id}  # which machine ran it: for scheduling checks and timings
        epoch = metrics["epoch"]
        if epoch % checkpoint_every and epoch != cfg.train.epochs:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            ckpt.save(directory)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        fit(cfg, report)
        return
    with checkpoint.as_directory() as directory:
        fit(cfg, report, resume=directory)
