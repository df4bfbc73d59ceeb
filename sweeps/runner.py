"""The one runner behind every sweep script: spec + flags -> validated trials -> Ray Tune -> summary.

``sweeps.cli.main("ablate_gate")`` is all a script calls: it parses the flags and hands them to
:func:`launch`. Validation happens before Ray starts (``sweeps.spec``); ``--dry-run`` stops there, with
the trial table and the cost estimate (``sweeps.cost``). A launch writes ``sweep.json`` (the resolved sweep) next to Tune's own
experiment state, so ``--resume`` rebuilds the identical trainable and resources without re-reading
specs that may have changed since.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any

import ray
import ray._private.ray_constants as ray_constants  # private: Ray is pinned (pyproject.toml)
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

from pare_core.config import TrialConfig, inert_keys
from pare_core.formatting import markdown_table
from sweeps import cost, progress, storage, trackers
from sweeps.cli import SweepArgs, format_seeds
from sweeps.fused import TrialRecord, fuse, is_fused, seed_error, seed_text, seeds_of, split
from sweeps.identity import ARM_KEY, CODE_KEY, TRIAL_KEY, code_version, config_only, provenance, trial_key
from sweeps.retry import UploadReportsBeforeRetry
from sweeps.reuse import LaunchLock, LaunchLocked, finished_trials
from sweeps.spec import TUNED_DIR, SpecError, Sweep, build
from sweeps.summary import SummaryCallback
from sweeps.trainable import train_trial

_DOMAINS = {"uniform": tune.uniform, "loguniform": tune.loguniform, "choice": lambda *values: tune.choice(values)}


def launch(spec: str, args: SweepArgs) -> int:
    """Build and validate the sweep (exit code 2 on bad input, before Ray starts), then dry-run or run it."""
    try:
        sweep = build(spec, args)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        return dry_run(sweep, args)
    return run(sweep, args)


def dry_run(sweep: Sweep, args: SweepArgs) -> int:
    """Print the sweep and what it will cost (``--calibrate``: measured here first); start no Ray."""
    print(describe(sweep))
    try:
        estimate = cost.estimate(sweep, calibrate=args.calibrate)
    except RuntimeError as err:  # a GPU sweep calibrated on a machine without one
        return _fail(str(err))
    print("\n".join(cost.render(estimate)))
    experiment = storage.join(storage.resolve(args.storage_path), sweep.name)
    if "://" not in experiment and os.path.exists(experiment):  # a remote store is not contacted by a dry run
        print(
            f"warning: {experiment} already exists: a launch adds to it (finished trials with the same key are "
            "reused, not re-run); --name NEW starts a separate folder",
            file=sys.stderr,
        )
    return 0


def describe(sweep: Sweep) -> str:
    """The ``--dry-run`` text: fixed keys, one row per trial (or the search space; "—": a key with no
    effect on that trial), trial count and resources; with ``fuse_seeds``, which arms run one trial per
    seed instead of one fused trial, and why."""
    defaults = TrialConfig().to_flat()
    varying = set(sweep.swept) | {"seed"}
    fixed = {k: v for k, v in sweep.base.items() if k not in varying and v != defaults[k]}
    lines = [
        f"sweep {sweep.name}  (spec {sweep.spec_file}{', smoke test' if sweep.smoke else ''})",
        "fixed (differs from paper defaults): " + (", ".join(f"{k}={v}" for k, v in fixed.items()) or "none"),
        "",
    ]
    if sweep.search["type"] == "grid":
        arms = len({tuple(repr(t[k]) for k in sweep.swept) for t in sweep.trials})
        own = ["cpu", "gpu"] if sweep.arm_resources else []  # arms have their own resources: one column each
        lines.append(
            markdown_table(
                ["#", *sweep.swept, "seeds" if sweep.fuse_seeds else "seed", *own],
                [
                    [
                        i,
                        *("—" if k in inert_keys(t) else t[k] for k in sweep.swept),
                        format_seeds(seeds_of(t)),
                        *(sweep.trial_resources(t)[r] for r in own),
                    ]
                    for i, t in enumerate(sweep.trials)
                ],
            )
        )
        count = f"{sweep.n_trials} trials = {arms} arms x {len(sweep.seeds)} seeds"
        if sweep.fuse_seeds:
            fused = sum(map(is_fused, sweep.trials))
            count = (
                f"{sweep.n_trials} trials for {arms} arms x {len(sweep.seeds)} seeds: {fused} fused (an arm's "
                f"seeds trained as one stacked run; each seed is still its own result), "
                f"{sweep.n_trials - fused} single-seed"
            )
    else:
        lines.append(markdown_table(["searched key", "domain"], [[k, d] for k, d in sweep.space.items()]))
        count = f"{sweep.n_trials} trials sampled by {sweep.search['type']} (seed {sweep.seeds[0]})"
    per_trial = "its arm's CPU and GPU (table)" if sweep.arm_resources else _resources_text(sweep.resources)
    lines += [
        "",
        f"{count}; scheduler {sweep.scheduler['type']}; metric {sweep.metric} ({sweep.mode}); "
        f"per trial {per_trial}; checkpoint every {sweep.checkpoint_every} epochs; up to {sweep.max_failures} retries",
        *(f"not fused, one trial per seed: arm {arm}: {why}" for arm, why in sweep.fallbacks.items()),
        "",
    ]
    return "\n".join(lines)


def run(sweep: Sweep, args: SweepArgs) -> int:
    """Launch (or ``--resume``) the sweep on Ray and wait for it; 0 if every trial finished, 1 if any failed.

    A launch reuses every trial whose key matches a finished trial anywhere under the storage root and
    runs only the others; a launch under an existing name adds its new trials to that folder
    (docs/sweeps.md, "Extending a sweep").
    """
    storage_path = storage.resolve(args.storage_path)
    experiment = storage.join(storage_path, sweep.name)
    try:
        trackers.check(args.trackers, experiment)
    except trackers.TrackerError as err:
        return _fail(str(err))
    unusable = storage.unwritable(storage_path)
    if unusable:
        return _fail(unusable)
    saved = storage.read_text(storage.join(experiment, "sweep.json"))
    if args.resume and saved is None:
        return _fail(f"--resume: no sweep at {experiment} (check --name, --storage-path and --smoke-test)")
    try:
        with LaunchLock(experiment):
            return _launch(Sweep(**json.loads(saved)) if args.resume else sweep, args, storage_path, experiment)
    except LaunchLocked as err:
        return _fail(str(err))


def _launch(sweep: Sweep, args: SweepArgs, storage_path: str, experiment: str) -> int:
    reused: list[TrialRecord] = []
    if not args.resume:
        sweep = with_identity(sweep)
        if not args.no_reuse and sweep.search["type"] == "grid":
            found = finished_trials(storage_path)
            reused = [found[run[TRIAL_KEY]] for t in sweep.trials for run in split(t) if run[TRIAL_KEY] in found]
        sweep.reused = [t.path for t in reused]
        storage.write_text(storage.join(experiment, "sweep.json"), json.dumps(dataclasses.asdict(sweep), indent=1))
    to_run = dataclasses.replace(sweep, trials=unfinished(sweep.trials, {r.config[TRIAL_KEY] for r in reused}))
    print(
        f"sweep {sweep.name}: {_runs(sweep)} trials ({len(reused)} reused, {_runs(to_run)} to run) -> "
        f"{experiment} (live table: summary.md)",
        flush=True,
    )
    if not to_run.n_trials:
        SummaryCallback(experiment, sweep.name, sweep.metric, sweep.swept, reused, sweep.arm_names).write([])
        print(f"every trial reused. Results: {experiment}  Summary: {experiment}/summary.md")
        return 0
    _init_ray(args.address, sweep.n_trials)
    try:
        hosts = {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
        problem = storage.storage_problem(storage_path, hosts, storage.read_mounts()) or (
            None if args.address else _beyond_machine(sweep, ray.cluster_resources())
        )
        if problem:
            return _fail(problem)
        if args.resume:
            if not tune.Tuner.can_restore(experiment):
                return _fail(
                    f"--resume: {experiment} has no Tune state (the first launch stopped before Tune saved "
                    "any); delete the folder and launch again"
                )
            tuner = tune.Tuner.restore(experiment, _trainable(sweep), resume_unfinished=True, resume_errored=True)
        else:
            available = ray.cluster_resources()
            estimate = cost.estimate(
                to_run,
                slots=cost.local_slots(to_run, available.get("CPU", 0), available.get("GPU", 0)),
                slots_from=f"Ray now: {available.get('CPU', 0):g} CPUs, {available.get('GPU', 0):g} GPUs",
            )
            cost.record(estimate, experiment)
            print(cost.launch_line(estimate), *trackers.hints(args.trackers, experiment), sep="\n", flush=True)
            tuner = _tuner(to_run, storage_path, experiment, reused, args.trackers)
        progress.quiet_tune()
        results = tuner.fit()
        if sweep.tuned:
            print(f"tuned config written to {write_tuned(sweep, results, experiment)}")
    finally:
        ray.shutdown()
    runs = [(r, seed) for r in results for seed in seeds_of(r.config)]  # a fused trial: one per seed
    failed = sum(r.error is not None or bool(seed_error(r.metrics or {}, seed)) for r, seed in runs)
    print(f"{len(runs)} trials, {failed} failed. Results: {experiment}  Summary: {experiment}/summary.md")
    return 1 if failed else 0


def unfinished(trials: list[dict[str, Any]], reused: set[str]) -> list[dict[str, Any]]:
    """The trials left to run once the runs with keys in ``reused`` are reused: a fused trial keeps
    only its other seeds (one left: an ordinary trial)."""
    left = ([run for run in split(t) if run[TRIAL_KEY] not in reused] for t in trials)
    return [fuse(runs) for runs in left if runs]


def _runs(sweep: Sweep) -> int:
    """Trials as results count them: a fused trial counts each of its seeds."""
    return sum(len(seeds_of(t)) for t in sweep.trials) if sweep.search["type"] == "grid" else sweep.n_trials


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _init_ray(address: str | None, n_trials: int) -> None:
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
            address="local", include_dashboard=False, logging_level=logging.WARNING
        )  # no "Started a local Ray" line
    else:
        ray.init(address=address)
        os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(n_trials)


def _resources_text(resources: dict[str, float]) -> str:
    return f"{resources['cpu']:g} CPU, {resources['gpu']:g} GPU"


def _trainable(sweep: Sweep) -> Any:
    """The trainable with its resources: each trial's from its arm (``Sweep.trial_resources``), which
    Tune asks for by config (``with_resources`` takes a callable)."""
    fn = tune.with_parameters(train_trial, checkpoint_every=sweep.checkpoint_every, metric=sweep.metric)

    def resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
        own = sweep.trial_resources(config)
        return tune.PlacementGroupFactory([{"CPU": own["cpu"], "GPU": own["gpu"]}])

    return tune.with_resources(fn, resources)


def _beyond_machine(sweep: Sweep, available: dict[str, float]) -> str | None:
    """Local Ray has no autoscaler: a trial asking for more CPUs or GPUs than this machine offers would
    wait forever (Tune only warns). Why some trial does, or None."""
    for trial in sweep.trials or [sweep.base]:
        own = sweep.trial_resources(trial)
        if own["cpu"] > available.get("CPU", 0) or own["gpu"] > available.get("GPU", 0):
            arm = ", ".join(f"{k}={trial[k]}" for k in sweep.swept) if sweep.arm_resources else "every trial"
            return (
                f"trials ask for {_resources_text(own)} ({arm}), but this machine offers local Ray "
                f"{available.get('CPU', 0):g} CPU, {available.get('GPU', 0):g} GPU: set --gpus-per-trial / "
                "--cpus-per-trial to fit (--gpus-per-trial 0 runs on the CPU), or join a cluster with --address"
            )
    return None


def with_identity(sweep: Sweep) -> Sweep:
    """The sweep with each grid trial's key, code version and arm name (recorded in its params.json)
    and the launch's provenance (recorded in sweep.json). A fused trial's seeds are keyed as their
    unfused trials are (``sweeps.fused.fuse``)."""
    code = code_version()["version"]
    trials = [
        fuse([{**run, TRIAL_KEY: trial_key(run, code), CODE_KEY: code, ARM_KEY: arm} for run in split(t)])
        for t, arm in zip(sweep.trials, sweep.arm_names)
    ]
    return dataclasses.replace(sweep, trials=trials, provenance=provenance(sweep.spec_file))


def _tuner(
    sweep: Sweep, storage_path: str, experiment: str, reused: list[TrialRecord], tracker_names: list[str]
) -> tune.Tuner:
    if sweep.search["type"] == "grid":
        # Arms need not be a cartesian product (e.g. `none` has no threshold), so each trial is a preset
        # point; the keys that vary are declared as choices so Tune accepts the presets as valid values.
        varying = [k for k in sweep.trials[0] if len({repr(t[k]) for t in sweep.trials}) > 1]
        param_space = {
            **sweep.trials[0],
            **{k: tune.choice(list({repr(t[k]): t[k] for t in sweep.trials}.values())) for k in varying},
        }
        search_alg = BasicVariantGenerator(points_to_evaluate=[{k: t[k] for k in varying} for t in sweep.trials])
    else:
        from ray.tune.search.optuna import OptunaSearch  # imports optuna (~1 s): only tuning needs it

        param_space = {
            **sweep.base,
            **{k: _DOMAINS[kind](*values) for k, d in sweep.space.items() for kind, values in d.items()},
        }
        search_alg = ConcurrencyLimiter(
            OptunaSearch(seed=sweep.search.get("seed", 0), study_name=sweep.name, storage=optuna_storage(experiment)),
            max_concurrent=int(sweep.search.get("max_concurrent", 2)),
        )
    scheduler = FIFOScheduler()
    if sweep.scheduler["type"] == "asha":
        scheduler = ASHAScheduler(
            time_attr="epoch",
            max_t=sweep.base["train.epochs"],
            grace_period=int(sweep.scheduler.get("grace_period", 1)),
            reduction_factor=float(sweep.scheduler.get("reduction_factor", 2)),
        )
    return tune.Tuner(
        _trainable(sweep),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=sweep.metric,
            mode=sweep.mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=sweep.n_trials,
            trial_dirname_creator=TrialDirName(sweep.swept),
            # CPU trials reuse worker processes: imports and weight loading are most of
            # a short CPU trial. GPU trials get a fresh process (no CUDA state carried).
            reuse_actors=all(sweep.trial_resources(t)["gpu"] == 0 for t in sweep.trials or [sweep.base]),
        ),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=storage_path,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[
                UploadReportsBeforeRetry(),
                SummaryCallback(experiment, sweep.name, sweep.metric, sweep.swept, reused, sweep.arm_names),
                progress.ProgressCallback(sweep.name, sweep.metric, sweep.swept, sweep.n_trials, len(reused)),
                *trackers.callbacks(tracker_names, experiment, sweep.name, sweep.swept),
            ],
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
        parts = [f"{k.rsplit('.', 1)[-1]}={_short(trial.config.get(k))}" for k in self.keys if k not in inert]
        arm = trial.config.get(ARM_KEY)
        name = "_".join([trial.trial_id, *([arm] if arm else parts), seed_text(trial.config)])
        return "".join(c if c.isalnum() or c in "._=-" else "-" for c in name)[:120]


def _short(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def write_tuned(sweep: Sweep, results: tune.ResultGrid, experiment: str) -> str:
    """Save the best trial's searched values as a ``--base`` file: ``configs/tuned/<task>.yaml``.

    Smoke runs write into the experiment folder instead, so a smoke test never replaces a real tuned config.
    """
    best = results.get_best_result(sweep.metric, sweep.mode, scope="last")
    flat = TrialConfig.from_flat({k: best.config[k] for k in ["task.name", *sweep.space]}).to_flat()
    task = flat["task.name"]
    header = (
        f"# Tuned by sweeps/tune_task.py (sweep {sweep.name}, {len(results)} trials, method {best.config['method']},"
        f" backbone {best.config['backbone.name']}): best {sweep.metric}={best.metrics[sweep.metric]:.4f}\n"
        f"# trial {best.path}\n# Use: python sweeps/ablate_gate.py --base sweeps/configs/tuned/{task}.yaml\n"
    )
    out = storage.join(experiment, "tuned", f"{task}.yaml") if sweep.smoke else str(TUNED_DIR / f"{task}.yaml")
    storage.write_text(out, header + yaml.safe_dump({k: flat[k] for k in ["task.name", *sweep.space]}, sort_keys=False))
    return out
