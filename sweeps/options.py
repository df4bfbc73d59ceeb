"""What a sweep's command line asks for, in two halves, and the syntax of its values.

- :class:`Overrides`: the flags that change *which trials run* (``--set``, ``--seeds``, ``--base``,
  ``--smoke-test``, ``--name``, resources, ``--fuse-seeds``). ``sweeps.spec`` reads them to build the
  plan; once a sweep has started they are fixed, so ``--resume`` refuses them (:data:`TRIAL_FLAGS`).
- :class:`LaunchOptions`: the flags that change *how and where* it runs (``--address``,
  ``--storage-path``, ``--resume``, ``--dry-run``, trackers, reuse). The entry layer reads them.

Flags left unset stay ``None`` so the spec's own values apply. Nothing here imports more than the
standard library: the seed-range syntax is also read by ``sweeps.fused`` and by analysis.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Overrides:
    """The flags that choose trials or their resources (``sweeps.spec.build`` applies them over the spec)."""

    smoke_test: bool = False
    sets: list[str] = field(default_factory=list)
    seeds: list[int] | None = None
    base: str | None = None
    name: str | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    fuse_seeds: bool | None = None  # None: the spec's ``fuse_seeds``


@dataclass
class LaunchOptions:
    """The flags that decide how and where a built sweep runs."""

    address: str | None = None
    storage_path: str = "./results"
    resume: bool = False
    dry_run: bool = False
    calibrate: bool = False
    trackers: list[str] = field(default_factory=list)
    no_reuse: bool = False
    # the command line that reruns this launch (sweep.json's provenance records it; sweeps.cli.launch_command)
    command: str = ""


TRACKERS = ("tensorboard", "mlflow", "wandb")  # --tracker choices (sweeps.trackers wires them to Tune)
# The Overrides fields that are fixed once a sweep has started, with their flags.
TRIAL_FLAGS = {
    "sets": "--set",
    "seeds": "--seeds",
    "base": "--base",
    "gpus_per_trial": "--gpus-per-trial",
    "cpus_per_trial": "--cpus-per-trial",
    "fuse_seeds": "--fuse-seeds",
}


MAX_SEEDS = 1000  # seeds per sweep: far beyond any paper's count, small enough to plan and fuse at once


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,1,2"`` and mixes such as ``"0-2,7"`` also work. Raises
    ``ValueError`` naming the allowed forms."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise ValueError(f"--seeds {text!r} is invalid: allowed forms are 0-4, 0,1,2 or 0-2,7") from None
        if len(seeds) + last - first >= MAX_SEEDS:  # checked before the list grows: 0-999999999 would fill memory
            raise ValueError(f"--seeds {text!r} asks for more than {MAX_SEEDS} seeds: give fewer")
        seeds.extend(range(first, last + 1))
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r} is invalid: give distinct seeds >= 0, e.g. 0-4")
    return seeds


def format_seeds(seeds: list[int]) -> str:
    """[0, 1, 2, 3, 4] -> ``"0-4"``, [0, 1, 2, 7] -> ``"0-2,7"``: the inverse of :func:`parse_seeds`."""
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


RESOURCE_RULES = {
    "cpu": "numbers > 0 (fractions allowed, e.g. 0.5 or 4)",
    "gpu": "0, a fraction of one GPU (e.g. 0.5: two trials per GPU) or a whole number of GPUs",
}


def resource_ok(kind: str, value: Any) -> bool:
    """Whether ``value`` is a valid per-trial ``cpu`` or ``gpu`` count (:data:`RESOURCE_RULES`): a trial
    with 0 CPUs gets no thread budget and Ray packs any number of them on a node; Ray splits one GPU
    into fractions but cannot give a trial 1.5 GPUs."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value > 0 if kind == "cpu" else value >= 0 and (value <= 1 or float(value).is_integer())


BAD_INPUT = 2  # the exit code of a command refused before any trial ran


def refuse(message: str) -> int:
    """Print ``error: message`` on stderr and return :data:`BAD_INPUT`: how every refused launch ends
    (one line that says what is wrong and what to do, no traceback)."""
    print(f"error: {message}", file=sys.stderr)
    return BAD_INPUT
