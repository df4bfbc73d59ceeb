"""The plan: a built sweep's trials as they will run — fused where they can be, keyed, matched with
finished trials to reuse — and the ``--dry-run`` text that shows it.

The second layer of ``sweeps/`` (docs/sweeps.md, "How sweeps/ is laid out"): it reads the spec's
:class:`~sweeps.spec.Sweep` and never imports Ray, so a dry run, the tests and analysis can use it
on a machine without a cluster.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pare_core.config import TrialConfig
from pare_core.formatting import markdown_table
from sweeps.fused import TrialRecord, fuse, is_fused, seeds_of, split
from sweeps.identity import ARM_KEY, CODE_KEY, TRIAL_KEY, arm_cells, code_version, provenance, trial_key
from sweeps.options import format_seeds
from sweeps.reuse import finished_trials
from sweeps.spec import Sweep


def fuse_arms(sweep: Sweep) -> Sweep:
    """With ``sweep.fuse_seeds``, each arm's trials (they go arm by arm, seeds inside) as one fused trial
    where ``pare_core.fusion`` can train its seeds together, else one trial per seed, with the reason
    in ``fallbacks``. Without it, the sweep as it is."""
    if not sweep.fuse_seeds:
        return sweep
    from pare_core.fusion import fusion_blocker  # imports torch: only a sweep that fuses pays for it

    n_seeds = len(sweep.seeds)
    trials, names, fallbacks = [], [], {}
    for start in range(0, len(sweep.trials), n_seeds):
        runs, name = sweep.trials[start : start + n_seeds], sweep.arm_names[start]
        why = "one seed per arm: nothing to fuse" if n_seeds == 1 else fusion_blocker(TrialConfig.from_flat(runs[0]))
        if why:
            fallbacks[name] = why
        groups = [[run] for run in runs] if why else [runs]
        trials += [fuse(group) for group in groups]
        names += [name] * len(groups)
    return dataclasses.replace(sweep, trials=trials, arm_names=names, fallbacks=fallbacks)


def with_identity(sweep: Sweep, command: str) -> Sweep:
    """The sweep with each grid trial's key, code version and arm name (recorded in its params.json)
    and the launch's provenance (recorded in sweep.json). A fused trial's seeds are keyed as their
    unfused trials are (``sweeps.fused.fuse``)."""
    code = code_version()["version"]
    trials = [
        fuse([{**run, TRIAL_KEY: trial_key(run, code), CODE_KEY: code, ARM_KEY: arm} for run in split(t)])
        for t, arm in zip(sweep.trials, sweep.arm_names)
    ]
    return dataclasses.replace(sweep, trials=trials, provenance=provenance(sweep.spec_file, command))


def reusable(sweep: Sweep, storage_root: str) -> list[TrialRecord]:
    """The finished trials under ``storage_root`` whose keys match runs of the keyed ``sweep`` (a fused
    trial's seeds one by one); a searcher's trials are not known in advance, so none."""
    if sweep.search["type"] != "grid":
        return []
    found = finished_trials(storage_root)
    return [found[run[TRIAL_KEY]] for t in sweep.trials for run in split(t) if run[TRIAL_KEY] in found]


def unfinished(trials: list[dict[str, Any]], reused: set[str]) -> list[dict[str, Any]]:
    """The trials left to run once the runs with keys in ``reused`` are reused: a fused trial keeps
    only its other seeds (one left: an ordinary trial)."""
    left = ([run for run in split(t) if run[TRIAL_KEY] not in reused] for t in trials)
    return [fuse(runs) for runs in left if runs]


def n_runs(sweep: Sweep) -> int:
    """Trials as results count them: a fused trial counts each of its seeds."""
    return sum(len(seeds_of(t)) for t in sweep.trials) if sweep.search["type"] == "grid" else sweep.n_trials


def resources_text(resources: dict[str, float]) -> str:
    return f"{resources['cpu']:g} CPU, {resources['gpu']:g} GPU"


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
        arms = len(dict.fromkeys(sweep.arm_names))
        own = ["cpu", "gpu"] if sweep.arm_resources else []  # arms have their own resources: one column each
        lines.append(
            markdown_table(
                ["#", "arm", *sweep.swept, "seeds" if sweep.fuse_seeds else "seed", *own],
                [
                    [
                        i,
                        arm,
                        *arm_cells(t, sweep.swept),
                        format_seeds(seeds_of(t)),
                        *(sweep.trial_resources(t)[r] for r in own),
                    ]
                    for i, (t, arm) in enumerate(zip(sweep.trials, sweep.arm_names))
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
    per_trial = "its arm's CPU and GPU (table)" if sweep.arm_resources else resources_text(sweep.resources)
    lines += [
        "",
        f"{count}; scheduler {sweep.scheduler['type']}; metric {sweep.metric} ({sweep.mode}); "
        f"per trial {per_trial}; checkpoint every {sweep.checkpoint_every} epochs; up to {sweep.max_failures} retries",
        *(f"not fused, one trial per seed: arm {arm}: {why}" for arm, why in sweep.fallbacks.items()),
        "",
    ]
    return "\n".join(lines)
