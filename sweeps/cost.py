"""What a sweep will cost, from measurements on this machine rather than a typed-in guess.

``--dry-run --calibrate`` runs one short probe per distinct (task, backbone, method, device) of the
sweep and, within it, per distinct step work (the config minus seed and epochs, :func:`_step_work`:
arms of an ablation differ in what a step computes). A probe builds the group's first trial config
(``pare_core.train.Run``) with its full schedule and stops it after ``PROBE_EPOCHS`` epochs of
``PROBE_STEPS`` optimiser steps, on the device and with the threads its trials get, then times the
test pass and baselines that close a run. From the two
epochs' reports it keeps the seconds per optimiser step, per validation pass, before the first epoch (data,
model, pre-training stages such as ORCA's alignment, first-step warm-up) and after the last one (test
pass, baselines). A trial of the group then costs ``setup + epochs x (steps x s/step + val) + end``.

Measurements are cached under ``$PARE_DATA/calibration/`` keyed like a trial: a hash of the resolved
config minus seed (``sweeps.identity.canonical_config``) plus the device model and thread count, so
a later ``--dry-run`` (or launch) of the same configs on the same kind of machine reuses them; a
changed config or machine has no measurement until it is calibrated, and ``--calibrate`` always
measures anew (the code version is not in the key: most edits do not change the speed). Groups
without a measurement fall back to the spec's ``gpu_s_per_epoch`` and are marked as guesses (a spec
without one has no guess: its figures read "—").

Wall-clock time is the makespan of the trials at the sweep's concurrency (how many trials fit on the
machine at once), placed in launch order as Tune does; device-hours are trial time x the devices a
trial holds: CPU-hours for a CPU sweep, GPU-hours for a GPU sweep. A fused trial (``sweeps.fused``)
holds one trial's resources and counts as its seeds' work, each seed at an unfused trial's time: an
upper bound, since the probe times one seed and fusion's speed-up is not measured. Nothing here imports torch or Ray
until a probe runs, so a plain ``--dry-run`` stays fast.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from pare_core.cache import atomic_path, data_root
from pare_core.formatting import fmt_duration, markdown_table
from sweeps import storage
from sweeps.fused import seeds_of
from sweeps.identity import TRIAL_KEY, canonical_config, config_only
from sweeps.packing import gpu_count, local_slots, trial_configs
from sweeps.spec import Sweep

PROBE_EPOCHS = 2  # the first epoch carries the one-off costs; the second is a steady one
PROBE_STEPS = 5  # optimiser steps per probe epoch
GROUP_KEYS = ("task.name", "backbone.name", "method")  # + the device: one probe per distinct combination
ESTIMATE_FILE = "estimate.json"  # in the experiment folder: each launch's estimate, for analysis to compare


def cache_dir() -> Path:
    """``$PARE_DATA/calibration`` (default ``~/.cache/pare/calibration``), beside the data cache."""
    return data_root() / "calibration"


@dataclass
class Measurement:
    """One probe's timings (seconds) for a trial config on one device."""

    key: str
    device: str  # the device model, e.g. "cpu: AMD EPYC" or "cuda: NVIDIA H200"
    threads: int
    step_s: float  # one optimiser step, steady state
    steps_per_epoch: int  # the full config's steps per epoch (train.steps_per_epoch, or one pass over the data)
    val_s: float  # one validation pass
    setup_s: float  # before the first epoch's steady cost: data, model, pre-training stages, warm-up
    end_s: float  # after the last epoch: test pass and baselines
    measured_at: str
    config: dict[str, Any]  # what was measured (resolved, minus seed)

    def epoch_s(self, steps: int | None = None) -> float:
        return (steps or self.steps_per_epoch) * self.step_s + self.val_s

    def trial_s(self, epochs: int, steps: int | None = None) -> float:
        return self.setup_s + epochs * self.epoch_s(steps) + self.end_s


@dataclass
class GroupEstimate:
    """The estimate for the trials of one (task, backbone, method, device) group."""

    group: dict[str, str]
    trials: int  # as results count them: each seed of a fused trial is one
    epochs: int  # per trial (the most any trial of the group runs)
    epoch_s: float
    trial_s: float  # one trial, start to end
    source: str  # "measured" | "guess"
    key: str  # the cache key of the group's probe config
    arms: str = ""  # the spec's arms whose trials this group prices ("" for a sweep without named arms)


@dataclass
class Estimate:
    """A whole sweep: per-group figures, and the totals at ``slots`` trials at a time."""

    groups: list[GroupEstimate]
    slots: int
    slots_from: str  # where the concurrency comes from, for the reader
    unit: str  # "GPU" when trials hold GPUs, else "CPU"
    devices: list[str]  # the device models the figures are for
    trial_s: float  # sum over trials
    wall_s: float  # makespan at ``slots``
    device_hours: float  # trial time x the CPUs (CPU sweep) or GPUs (GPU sweep) each trial holds
    early_stopping: bool  # ASHA: the figures are an upper bound
    trials: list[dict[str, Any]]  # per trial: its key (grid sweeps), group, epochs, epoch_s, trial_s, source
    fused: int = 0  # trials that train several seeds fused, each counted as its seeds' work

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}


# -- where trials run ------------------------------------------------------------------------------


def device_kind(resources: dict[str, float]) -> str:
    """Trials that hold a GPU train on CUDA (``runtime.device=auto``); the others on the CPU."""
    return "cuda" if resources.get("gpu", 0) > 0 else "cpu"


def threads(resources: dict[str, float]) -> int:
    """torch threads of a trial: its CPU allocation, as ``sweeps.trainable.trial_threads`` sets them."""
    return max(1, int(resources.get("cpu", 1)))


def device_name(kind: str) -> str:
    """The device model, read without importing torch (so cache look-ups stay cheap): the CPU's model
    name from /proc/cpuinfo, the first GPU's from the NVIDIA driver's /proc entries."""
    if kind == "cuda":
        for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    return f"cuda: {line.split(':', 1)[1].strip()}"
        return "cuda: unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"cpu: {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"cpu: {platform.processor() or platform.machine()}"


def makespan(durations: Sequence[float], slots: int, busy: Sequence[float] = ()) -> float:
    """Seconds until ``durations`` (in launch order) are done on ``slots`` workers, each starting on the
    first worker to free up; ``busy`` are the seconds left on workers already running something."""
    if not durations and not busy:
        return 0.0
    if any(math.isnan(d) for d in [*durations, *busy]):  # some trial's time is unknown
        return math.nan
    free = sorted(list(busy)[:slots] + [0.0] * max(0, slots - len(busy)))
    heapq.heapify(free)
    end = max(free, default=0.0)
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


# -- measurements -----------------------------------------------------------------------------------


def cost_key(trial: dict[str, Any], device: str, n_threads: int) -> str:
    """The cache key of a trial config's timings: its resolved config minus seed (the trial identity's
    config part) with the execution that sets the speed: device model, threads, ``torch.compile`` and a
    captured step (named only when on, so keys measured before ``runtime.capture`` existed still match)."""
    config = {k: v for k, v in canonical_config(trial).items() if k != "seed"}
    payload = {
        "config": config,
        "device": device,
        "threads": n_threads,
        "compile": bool(trial.get("runtime.compile", False)),
    }
    if trial.get("runtime.capture"):
        payload["capture"] = True
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def load_measurement(key: str) -> Measurement | None:
    path = cache_dir() / f"{key}.json"
    if not path.is_file():
        return None
    try:
        return Measurement(**json.loads(path.read_text()))
    except (ValueError, TypeError):  # a file from an older layout: measure again
        return None


def save_measurement(m: Measurement) -> Path:
    path = cache_dir() / f"{m.key}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(asdict(m), indent=1, default=repr))
    return path


def probe(trial: dict[str, Any], kind: str, n_threads: int, key: str) -> Measurement:
    """Time ``trial``'s config for ``PROBE_EPOCHS`` short epochs on ``kind`` with ``n_threads``."""
    import torch

    from pare_core.config import TrialConfig
    from pare_core.tasks import load_task
    from pare_core.train import Run

    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "the sweep's trials use a GPU, but this machine has none: run --dry-run --calibrate "
            "on a machine like the ones the trials will run on"
        )
    full = TrialConfig.from_flat({**config_only(trial), "runtime.device": kind, "runtime.threads": n_threads})
    steps = full.train.steps_per_epoch or math.ceil(
        len(load_task(full.task, full.seed).x_train) / full.train.batch_size
    )
    probe_steps = min(PROBE_STEPS, steps)
    # The full run's epochs, cut after PROBE_EPOCHS: a run cut to 2 epochs would have a 2-epoch curriculum
    # (the pre-audit formula reaches k=0 at its last epoch, so the probe timed steps that mix nothing).
    cfg = TrialConfig.from_flat({"train.steps_per_epoch": probe_steps}, base=full)
    cfg.validate()
    rows: list[dict[str, Any]] = []
    run = Run(cfg, None)
    run.train(lambda metrics, _checkpointer: rows.append(metrics), until=PROBE_EPOCHS)
    first, last = rows[0], rows[-1]
    steady = last["epoch_s"] + last["val_s"]
    end_start = time.perf_counter()
    run.final_metrics()
    end_s = time.perf_counter() - end_start
    return Measurement(
        key=key,
        device=device_name(kind),
        threads=n_threads,
        step_s=last["epoch_s"] / probe_steps,
        steps_per_epoch=steps,
        val_s=last["val_s"],
        setup_s=max(0.0, first["wall_s"] - steady),
        end_s=end_s,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        config={k: v for k, v in canonical_config(trial).items() if k != "seed"},
    )


# -- the estimate -----------------------------------------------------------------------------------


def estimate(
    sweep: Sweep,
    calibrate: bool = False,
    slots: int | None = None,
    slots_from: str = "",
    log: Callable[[str], None] = print,
) -> Estimate:
    """Per-group and total cost of ``sweep`` from cached measurements; with ``calibrate``, probe every
    group now and cache the result (a fresh measurement replaces an old one: code and machines change).
    ``slots`` defaults to :func:`local_slots` on this machine."""
    configs = trial_configs(sweep)
    resources = [sweep.trial_resources(c) for c in configs]
    groups: dict[tuple, list[int]] = {}
    for i, (config, own) in enumerate(zip(configs, resources)):
        values = tuple(config[k] for k in GROUP_KEYS)
        groups.setdefault((*values, _step_work(config), device_kind(own), threads(own)), []).append(i)
    guess = sweep.gpu_s_per_epoch if sweep.gpu_s_per_epoch > 0 else math.nan
    rows, per_trial = [], [{} for _ in configs]
    for (*values, _work, kind, n_threads), members in groups.items():
        first = configs[members[0]]
        device = device_name(kind)
        key = cost_key(first, device, n_threads)
        measured = None if calibrate else load_measurement(key)
        if calibrate:
            log(
                f"calibrating {', '.join(f'{k}={v}' for k, v in zip(GROUP_KEYS, values))} on {device} "
                f"({n_threads} thread{'s' if n_threads != 1 else ''}): {PROBE_EPOCHS} epochs x {PROBE_STEPS} steps ..."
            )
            measured = probe(first, kind, n_threads, key)
            save_measurement(measured)
        for i in members:
            steps = int(configs[i]["train.steps_per_epoch"]) or None
            per_trial[i] = {
                "trial_key": configs[i].get(TRIAL_KEY),
                **dict(zip(GROUP_KEYS, values)),
                "device": kind,
                "epochs": int(configs[i]["train.epochs"]),
                "epoch_s": measured.epoch_s(steps) if measured else guess,
                "trial_s": trial_seconds(configs[i], measured, guess),
                "source": "measured" if measured else "guess",
            }
        epochs = max(int(configs[i]["train.epochs"]) for i in members)
        first_steps = int(first["train.steps_per_epoch"]) or None
        rows.append(
            GroupEstimate(
                group={**dict(zip(GROUP_KEYS, values)), "device": kind},
                trials=sum(len(seeds_of(configs[i])) for i in members),
                epochs=epochs,
                epoch_s=measured.epoch_s(first_steps) if measured else guess,
                trial_s=measured.trial_s(epochs, first_steps) if measured else epochs * guess,
                source="measured" if measured else "guess",
                key=key,
                arms=", ".join(dict.fromkeys(names[i] for i in members))
                if len(names := sweep.arm_names) == len(configs)
                else "",
            )
        )
    if slots is None:
        slots, slots_from = local_slots(sweep), f"this machine: {os.cpu_count()} CPUs, {gpu_count()} GPUs"
    unit = "gpu" if any(own["gpu"] > 0 for own in resources) else "cpu"
    durations = [t["trial_s"] for t in per_trial]
    return Estimate(
        groups=rows,
        slots=slots,
        slots_from=slots_from,
        unit=unit.upper(),
        devices=sorted({device_name(g.group["device"]) for g in rows}),
        trial_s=sum(durations),
        wall_s=makespan(durations, slots) if slots else math.inf,
        device_hours=sum(d * own[unit] for d, own in zip(durations, resources)) / 3600,
        early_stopping=sweep.scheduler["type"] == "asha",
        trials=per_trial,
        fused=sum(len(seeds_of(c)) > 1 for c in configs),
    )


def record(est: Estimate, experiment: str) -> None:
    """Add this launch's estimate to ``<experiment>/estimate.json`` (a launch under an existing name adds
    trials to the folder, so the file keeps every launch), for analysis to compare with what it took."""
    path = storage.join(experiment, ESTIMATE_FILE)
    saved = storage.read_text(path)
    launches = json.loads(saved)["launches"] if saved else []
    storage.write_text(path, json.dumps({"launches": [*launches, est.to_json()]}, indent=1, default=repr))


def launch_line(est: Estimate) -> str:
    """One line for the start of a sweep: what it should take, and how much of that is measured."""
    measured = sum(g.source == "measured" for g in est.groups)
    wall = f"{fmt_duration(est.wall_s)} wall-clock at {est.slots} at a time" if est.slots else "no trial fits"
    todo = "" if measured == len(est.groups) else "; --dry-run --calibrate measures the rest"
    return (
        f"estimate: {wall}, {_hours(est.device_hours)} {est.unit}-hours ({measured}/{len(est.groups)} "
        f"groups measured{todo})"
    )


def trial_seconds(config: dict[str, Any], measured: Measurement | None, guess_s_per_epoch: float) -> float:
    """One trial's seconds from its group's measurement (its own epochs and steps), else the guess; a
    fused trial's, its seeds' (see the module docstring)."""
    epochs = int(config["train.epochs"])
    one = (
        epochs * guess_s_per_epoch
        if measured is None
        else measured.trial_s(epochs, int(config["train.steps_per_epoch"]) or None)
    )
    return len(seeds_of(config)) * one


# Keys that change a trial's numbers but not the work of a step: trials that differ only in these share
# a probe (a learning-rate grid is one group). train.epochs is applied per trial, as are steps per epoch.
SAME_WORK_KEYS = (
    "seed",
    "train.epochs",
    "train.lr",
    "train.weight_decay",
    "train.warmup_frac",
    "finetune.body_lr",
    "align.lr",
    "mona.inner_lr",
    "mona.outer_lr",
    "gate.tau",
)


def _step_work(config: dict[str, Any]) -> str:
    """What a config's steps cost beyond its group keys, as a hash of its resolved config less
    :data:`SAME_WORK_KEYS`. Arms of one ablation differ in it: PaRe with ``gate.selection=none`` makes one
    backbone pass per step, every mixing arm two (the clean and the mixed batch), so one probe of the
    first arm priced the default gate ablation at 1.7 s/epoch against the mixing arms' 3.4
    (bench/cost_estimate.py)."""
    work = {k: v for k, v in canonical_config(config).items() if k not in SAME_WORK_KEYS}
    return hashlib.sha256(json.dumps(work, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def _hours(hours: float) -> str:
    return "—" if math.isnan(hours) else f"{hours:.2f}"


def render(est: Estimate) -> list[str]:
    """The dry run's cost lines: one row per group, then wall-clock and device-hours."""
    rows = [
        [
            g.arms or "—",
            *g.group.values(),
            g.trials,
            g.epochs,
            "—" if math.isnan(g.epoch_s) else f"{g.epoch_s:.2f}",
            fmt_duration(g.trial_s),
            g.source,
        ]
        for g in est.groups
    ]
    lines = [
        markdown_table(["arms", *GROUP_KEYS, "device", "trials", "epochs", "s/epoch", "per trial", "source"], rows)
    ]
    guesses = [g for g in est.groups if g.source == "guess"]
    bound = "; an upper bound: ASHA stops trials early" if est.early_stopping else ""
    if est.slots:
        lines.append(
            f"estimated wall-clock: {fmt_duration(est.wall_s)} at {est.slots} trial"
            f"{'s' if est.slots != 1 else ''} at a time ({est.slots_from}){bound}"
        )
    else:
        lines.append(f"estimated wall-clock: — (a trial does not fit on {est.slots_from})")
    lines.append(
        f"estimated {est.unit}-hours: {_hours(est.device_hours)} ({fmt_duration(est.trial_s)} of trial time x the "
        f"{est.unit}s each trial holds; on {', '.join(est.devices)}){bound}"
    )
    if est.fused:
        lines.append(
            f"{est.fused} fused trial{'s' if est.fused != 1 else ''}: each holds one trial's {est.unit}s and counts "
            "as its seeds' work at an unfused trial's time (an upper bound: fusion's speed-up is not measured)"
        )
    if guesses:
        lines.append(
            f"{len(guesses)} of {len(est.groups)} group{'s' if len(est.groups) != 1 else ''} not measured "
            "here yet (source: guess, the spec's gpu_s_per_epoch): add --calibrate to measure them "
            f"({PROBE_EPOCHS} short epochs each; cached under {cache_dir()})"
        )
    return lines
