"""The Ray Tune function trainable: ``pare_core.train.fit`` with Tune's report and checkpoints.

``pare_core`` stays free of Ray: ``fit`` takes a plain ``report(metrics, checkpointer)`` callback, and
this module adapts it to ``tune.report``. Only ``ray.tune.*`` APIs are used (the ``ray.train.*``
spellings fail inside Tune in Ray 2.60). A fused trial (``sweeps.fused``) runs
``pare_core.fusion.fit_seeds`` the same way, reporting every seed's metrics in one row.

The driver imports this module only to hand Tune a reference to :func:`train_trial`; torch and the
fit are imported inside the trial process, so the driver's own modules never import torch (~1.5 CPU-s,
``tests/test_imports.py`` keeps it so). A launch's driver still imports it where tensorboardX is installed
(``pip install -e .[dev]`` or ``.[tensorboard]``): Tune's TensorBoard logger imports tensorboardX, whose
writer imports torch whenever it can (1.7 s of a smoke launch's 8.6 CPU-s, ``python -X importtime``).
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any, Callable

import ray
from ray import tune

from pare_core.config import TrialConfig
from sweeps.fused import is_fused, report_row, seeds_of
from sweeps.identity import config_only

Publish = Callable[[dict[str, Any], Callable[[str], Any]], None]  # (row, save(directory)) -> tune.report


def trial_threads() -> int:
    """torch threads = the trial's CPU allocation, so co-located trials do not oversubscribe cores."""
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    return max(1, int(cpus))


def train_trial(config: dict[str, Any], checkpoint_every: int = 1, metric: str = "val_error") -> None:
    """Run one trial; ``config`` is the full flat TrialConfig (what ``params.json`` then records), plus a
    fused trial's seeds.

    Reports every epoch; saves a checkpoint every ``checkpoint_every`` epochs and at the last one.
    After a crash, Tune restarts the trial and ``tune.get_checkpoint()`` hands back the latest
    checkpoint, from which ``fit`` (or ``fit_seeds``) continues (epoch numbering continues).
    ``metric``: the sweep's, which a fused trial reports as its mean over live seeds.
    """
    # Ray logs "Checkpoint successfully created at: ..." from the worker at every checkpoint, and the
    # driver prints each such line: dozens per sweep that say nothing the summary does not.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    cfg = TrialConfig.from_flat(config_only(config))
    if not cfg.runtime.threads:
        cfg.runtime.threads = trial_threads()
    node_id = ray.get_runtime_context().get_node_id()

    def publish(row: dict[str, Any], save: Callable[[str], Any]) -> None:
        row = {**row, "node_id": node_id}  # which machine ran it: for scheduling checks and timings
        epoch = row["epoch"]
        if epoch % checkpoint_every and epoch != cfg.train.epochs:
            tune.report(row)
            return
        with tempfile.TemporaryDirectory() as directory:
            save(directory)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(directory))

    def train(resume: str | None) -> None:
        from pare_core.train import fit  # in the trial process only (module docstring)

        if is_fused(config):
            _fit_fused(cfg, seeds_of(config), metric, publish, resume)
        else:
            fit(cfg, lambda metrics, ckpt: publish(metrics, ckpt.save), resume=resume)

    checkpoint = tune.get_checkpoint()
    try:
        if checkpoint is None:
            train(None)
        else:
            with checkpoint.as_directory() as directory:
                train(directory)
    finally:
        _release_cuda_cache()


def _release_cuda_cache() -> None:
    """Processes serve one trial after another (``reuse_actors``): the CUDA caching allocator would
    otherwise keep this trial's peak memory reserved while the next trial, or a co-located one sharing
    the GPU, needs it."""
    import torch  # the trial has imported it already (module docstring)

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _fit_fused(cfg: TrialConfig, seeds: list[int], metric: str, publish: Publish, resume: str | None) -> None:
    """``fit_seeds`` with one report row per epoch (``sweeps.fused.report_row``). A seed's failure is
    reported in every later row; the fused checkpoint keeps it, so a resumed trial still reports it."""
    from pare_core.fusion import fit_seeds  # only fused trials need it

    def report(results: dict[int, Any], checkpointer: Any) -> None:
        row = report_row({s: r for s, r in results.items() if isinstance(r, dict)}, checkpointer.failed, metric)
        if row is not None:  # None: every seed has failed; fit_seeds raises, and Tune records the trial's error
            publish(row, checkpointer.save)

    fit_seeds(cfg, seeds, report, resume=resume)
