"""What the driver process does for one launch, start to end: the layers of ``sweeps/`` wired in order.

In the entry layer (docs/sweeps.md, "How sweeps/ is laid out"), above the rest: it takes the planned
sweep from ``sweeps.cli``, keys it and looks up what can be reused (the plan), estimates its cost,
starts Ray and the Tuner (the launch) with the records' callbacks (summary.md, the progress view,
trackers), and counts what finished. (``--dry-run`` stops before it: ``sweeps.cli.dry_run``.)

A launch reuses every trial whose key matches a finished trial anywhere under the storage root and
runs only the others; a launch under an existing name adds its new trials to that folder
(docs/sweeps.md, "Reuse and extension").
"""

from __future__ import annotations

import dataclasses
import json

from sweeps import cost, plan, preflight, storage, trackers
from sweeps.fused import TrialRecord, seed_error, seeds_of
from sweeps.identity import SWEEP_FILE, TRIAL_KEY
from sweeps.options import LaunchOptions, refuse
from sweeps.spec import Sweep
from sweeps.storage import LaunchLock, LaunchLocked


def run(sweep: Sweep, options: LaunchOptions) -> int:
    """Launch (or ``--resume``) the sweep on Ray and wait for it; 0 if every trial finished, 1 if any
    failed, 2 if it could not start (one line on stderr says why)."""
    storage_path = storage.resolve(options.storage_path)
    experiment = storage.experiment_dir(storage_path, sweep.name)
    found = preflight.problem(sweep, options, storage_path, experiment)  # before Ray: a bad launch ends here in seconds
    if found:
        return refuse(found)
    saved = storage.read_text(storage.join(experiment, SWEEP_FILE))
    if options.resume and saved is None:
        return refuse(f"--resume: no sweep at {experiment} (check --name, --storage-path and --smoke-test)")
    try:
        with LaunchLock(experiment):
            if options.resume:
                return _launch(Sweep(**json.loads(saved)), [], options, storage_path, experiment)
            return _launch(*_keyed(sweep, options, storage_path, experiment), options, storage_path, experiment)
    except LaunchLocked as err:
        return refuse(str(err))


def _keyed(sweep: Sweep, options: LaunchOptions, storage_path: str, experiment: str) -> tuple[Sweep, list]:
    """A new launch's sweep, keyed, with the finished trials it reuses; recorded in sweep.json."""
    sweep = plan.with_identity(sweep, options.command)
    reused = [] if options.no_reuse else plan.reusable(sweep, storage_path)
    sweep.reused = [t.path for t in reused]
    storage.write_text(storage.join(experiment, SWEEP_FILE), json.dumps(dataclasses.asdict(sweep), indent=1))
    return sweep, reused


def _launch(sweep: Sweep, reused: list[TrialRecord], options: LaunchOptions, storage_path: str, experiment: str) -> int:
    from sweeps import progress, runner
    from sweeps.retry import UploadReportsBeforeRetry
    from sweeps.summary import SummaryCallback

    summary = SummaryCallback(experiment, sweep.name, sweep.metric, sweep.swept, reused, sweep.arm_names)
    to_run = dataclasses.replace(sweep, trials=plan.unfinished(sweep.trials, {r.config[TRIAL_KEY] for r in reused}))
    print(
        f"sweep {sweep.name}: {plan.n_runs(sweep)} trials ({len(reused)} reused, {plan.n_runs(to_run)} to run) -> "
        f"{experiment} (live table: summary.md)",
        flush=True,
    )
    if not to_run.n_trials:
        summary.write([])
        print(f"every trial reused. Results: {experiment}  Summary: {experiment}/summary.md")
        return 0
    runner.start_ray(options.address, sweep.n_trials)
    try:
        problem = runner.cluster_problem(sweep, storage_path, joined=options.address is not None)
        if problem:
            return refuse(problem)
        if options.resume:
            tuner = runner.restore(experiment, sweep)
            if tuner is None:
                return refuse(
                    f"--resume: {experiment} has no Tune state (the first launch stopped before Tune saved "
                    "any); delete the folder and launch again"
                )
        else:
            slots, slots_from = runner.concurrency(to_run)
            estimate = cost.estimate(to_run, slots=slots, slots_from=slots_from)
            cost.record(estimate, experiment)
            print(cost.launch_line(estimate), *trackers.hints(options.trackers, experiment), sep="\n", flush=True)
            callbacks = [
                UploadReportsBeforeRetry(),
                summary,
                progress.ProgressCallback(sweep.name, sweep.metric, sweep.swept, to_run.n_trials, len(reused)),
                *trackers.callbacks(options.trackers, experiment, sweep.name, sweep.swept),
            ]
            tuner = runner.tuner(to_run, storage_path, experiment, callbacks)
        progress.quiet_tune()
        results = tuner.fit()
        if sweep.tuned:
            from sweeps.tuned import write_tuned

            print(f"tuned config written to {write_tuned(sweep, results, experiment)}")
    finally:
        runner.stop_ray()
    runs = [(r, seed) for r in results for seed in seeds_of(r.config)]  # a fused trial: one per seed
    failed = sum(r.error is not None or bool(seed_error(r.metrics or {}, seed)) for r, seed in runs)
    print(f"{len(runs)} trials, {failed} failed. Results: {experiment}  Summary: {experiment}/summary.md")
    return 1 if failed else 0
