"""The launch: a planned sweep on Ray Tune — Ray started or joined, the Tuner built (or restored) and run.

The third layer of ``sweeps/`` (docs/sweeps.md, "How sweeps/ is laid out") and the only one, with the
trainable, that drives Ray. It knows nothing of what the records write: the entry layer
(``sweeps.driver``) hands it the callbacks that keep summary.md, the progress view and the trackers.
A launch writes ``sweep.json`` (the resolved sweep) next to Tune's own experiment state, so
``--resume`` rebuilds the identical trainable and resources without re-reading specs that may have
changed since.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import ray
import ray._private.ray_constants as ray_constants  # private: Ray is pinned (pyproject.toml)
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

from pare_core.config import inert_keys
from pare_core.formatting import short
from sweeps import storage
from sweeps.fused import seed_text
from sweeps.identity import ARM_KEY, config_only
from sweeps.packing import local_slots
from sweeps.plan import resources_text
from sweeps.spec import Sweep
from sweeps.trainable import train_trial

_DOMAINS = {"uniform": tune.uniform, "loguniform": tune.loguniform, "choice": lambda *values: tune.choice(values)}


def start_ray(address: str | None, n_trials: int) -> None:
    """Join ``address``; with none, start a private Ray bound to 127.0.0.1 (not the machine's network address).

    On a cluster, Tune keeps at most ``TUNE_MAX_PENDING_TRIALS_PG`` trials pending (200 for a grid in
    Ray 2.60, read when ``fit`` starts), and the autoscaler sees only pending trials' resource requests:
    the cap is raised to the sweep's trial count, so a big grid asks for all the nodes it could use at once.

    Ray picks loopback only when ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is off, and reads it when ``ray``
    is imported (``ray_constants.ENABLE_RAY_CLUSTER``), which happened before this call: the variable is
    set for the processes Ray starts and the constant for this one. (``ray.init(_node_ip_address=
    "127.0.0.1")`` does not work: Ray turns a loopback address into the network one.)
    """
    # Short trials that checkpoint every epoch make Tune warn, dozens of times per sweep, that its state
    # snapshots "may become a bottleneck": noise beside the progress view. Set the variable to see them.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if address is None:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
        ray.init(
            address="local",
            include_dashboard=False,
            logging_level=logging.WARNING,  # no "Started a local Ray" line
            # Ray starts a worker per CPU for the first driver, which Tune's trial actors do not use
            # (they start their own): ~1 CPU-s each, wasted on every launch (bench/launch_cost.py).
            _system_config={"prestart_worker_first_driver": False},
        )
    else:
        ray.init(address=address)
        os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(n_trials)


def trainable(sweep: Sweep) -> Any:
    """The trainable with its resources: each trial's from its arm (``Sweep.trial_resources``), which
    Tune asks for by config (``with_resources`` takes a callable)."""
    fn = tune.with_parameters(train_trial, checkpoint_every=sweep.checkpoint_every, metric=sweep.metric)

    def resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
        own = sweep.trial_resources(config)
        return tune.PlacementGroupFactory([{"CPU": own["cpu"], "GPU": own["gpu"]}])

    return tune.with_resources(fn, resources)


def beyond_machine(sweep: Sweep, available: dict[str, float]) -> str | None:
    """Local Ray has no autoscaler: a trial asking for more CPUs or GPUs than this machine offers would
    wait forever (Tune only warns). Why some trial does, or None."""
    for trial in sweep.trials or [sweep.base]:
        own = sweep.trial_resources(trial)
        if own["cpu"] > available.get("CPU", 0) or own["gpu"] > available.get("GPU", 0):
            arm = f"arm {trial.get(ARM_KEY)}" if sweep.arm_resources else "every trial"
            return (
                f"trials ask for {resources_text(own)} ({arm}), but this machine offers local Ray "
                f"{available.get('CPU', 0):g} CPU, {available.get('GPU', 0):g} GPU: set --gpus-per-trial / "
                "--cpus-per-trial to fit (--gpus-per-trial 0 runs on the CPU), or join a cluster with --address"
            )
    return None


def cluster_problem(sweep: Sweep, storage_path: str, joined: bool) -> str | None:
    """Why the Ray now running cannot serve ``sweep`` (results unreachable from some node; local Ray
    too small for a trial, which would wait forever), or None."""
    hosts = {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
    return storage.storage_problem(storage_path, hosts, storage.read_mounts()) or (
        None if joined else beyond_machine(sweep, ray.cluster_resources())
    )


def stop_ray() -> None:
    ray.shutdown()


def concurrency(sweep: Sweep) -> tuple[int, str]:
    """Trials of ``sweep`` that the Ray now running fits at once, and where that figure comes from."""
    available = ray.cluster_resources()
    cpus, gpus = available.get("CPU", 0), available.get("GPU", 0)
    return local_slots(sweep, cpus, gpus), f"Ray now: {cpus:g} CPUs, {gpus:g} GPUs"


def restore(experiment: str, sweep: Sweep) -> tune.Tuner | None:
    """The Tuner of the launch saved at ``experiment``, set to rerun its unfinished and errored trials;
    None when the first launch stopped before Tune saved any state."""
    fs, path = storage.filesystem(experiment)
    if not tune.Tuner.can_restore(path, storage_filesystem=fs):
        return None
    return tune.Tuner.restore(
        path, trainable(sweep), resume_unfinished=True, resume_errored=True, storage_filesystem=fs
    )


def tuner(sweep: Sweep, storage_path: str, experiment: str, callbacks: list[tune.Callback]) -> tune.Tuner:
    """The Tuner that runs ``sweep``'s trials, logging through ``callbacks`` (the records' own)."""
    if sweep.search["type"] == "grid":
        # Arms need not be a cartesian product (e.g. `none` has no threshold), so each trial is a preset
        # point; the keys that vary are declared as choices so Tune accepts the presets as valid values.
        varying = [k for k in sweep.trials[0] if len({repr(t[k]) for t in sweep.trials}) > 1]
        param_space = {
            **sweep.trials[0],
            **{k: tune.choice(list({repr(t[k]): t[k] for t in sweep.trials}.values())) for k in varying},
        }
        search_alg = BasicVariantGenerator(
            points_to_evaluate=[{k: t[k] for k in varying} for t in sweep.trials],
            max_concurrent=sweep.search.get("max_concurrent", 0),  # 0: as many as the resources fit
        )
    else:
        from ray.tune.search.optuna import OptunaSearch  # imports optuna (~1 s): only tuning needs it

        param_space = {
            **sweep.base,
            **{k: _DOMAINS[kind](*values) for k, d in sweep.space.items() for kind, values in d.items()},
        }
        search_alg = ConcurrencyLimiter(
            OptunaSearch(seed=sweep.search.get("seed", 0), study_name=sweep.name, storage=optuna_storage(experiment)),
            max_concurrent=int(sweep.search["max_concurrent"]),
        )
    fs, fs_path = storage.filesystem(storage_path)  # what trials write through: patient with S3
    scheduler = FIFOScheduler()
    if sweep.scheduler["type"] == "asha":
        scheduler = ASHAScheduler(
            time_attr="epoch",
            max_t=sweep.base["train.epochs"],
            grace_period=int(sweep.scheduler.get("grace_period", 1)),
            reduction_factor=float(sweep.scheduler.get("reduction_factor", 2)),
        )
    return tune.Tuner(
        trainable(sweep),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=sweep.metric,
            mode=sweep.mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=sweep.n_trials,
            trial_dirname_creator=TrialDirName(sweep.swept),
            # A trial's process serves the next trial that asks for the same resources: start-up
            # (imports, the CUDA context, weights) is most of a short trial, on a GPU as on CPUs.
            # train_trial hands its CUDA cache back when it ends, so no trial inherits another's memory.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=fs_path,
            storage_filesystem=fs,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
    )


def optuna_storage(experiment: str) -> Any:
    """The Optuna study's storage: ``<experiment>/optuna.db`` (SQLite), so optuna-dashboard can open it
    while the search runs and ``--resume`` continues the study where it stopped. A remote experiment
    folder cannot hold a SQLite file: the study then lives in memory (Tune still saves the searcher)."""
    if "://" in experiment:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in RDB ..." per launch
    return optuna.storages.RDBStorage(f"sqlite:///{storage.join(experiment, 'optuna.db')}")


class TrialDirName:
    """``<trial_id>_threshold_seed=3`` (fused: ``..._seeds=0-4``): readable trial folders (Tune's default is unreadable), named by
    the trial's arm; a trial without a named arm (a tuning trial) by its swept keys that act on it
    (``threshold`` is left out under ``selection=topk``)."""

    def __init__(self, keys: list[str]):
        self.keys = keys

    def __call__(self, trial: Any) -> str:
        inert = inert_keys(config_only(trial.config))
        parts = [f"{k.rsplit('.', 1)[-1]}={short(trial.config.get(k))}" for k in self.keys if k not in inert]
        arm = trial.config.get(ARM_KEY)
        name = "_".join([trial.trial_id, *([arm] if arm else parts), seed_text(trial.config)])
        return "".join(c if c.isalnum() or c in "._=-" else "-" for c in name)[:120]
