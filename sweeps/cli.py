"""The flags every sweep script shares; one parser so ``ablate_*.py`` and ``tune_task.py`` stay a few lines.

Flags left unset stay ``None`` so the spec's own values apply, and so ``--resume`` can refuse flags
that would silently not apply to a sweep whose trials are already fixed.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class SweepArgs:
    """Parsed command line of one sweep launch."""

    smoke_test: bool = False
    sets: list[str] = field(default_factory=list)
    seeds: list[int] | None = None
    base: str | None = None
    address: str | None = None
    storage_path: str = "./results"
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    resume: bool = False
    dry_run: bool = False
    name: str | None = None
    trackers: list[str] = field(default_factory=list)
    calibrate: bool = False
    no_reuse: bool = False
    fuse_seeds: bool | None = None  # None: the spec's ``fuse_seeds``


TRACKERS = ("tensorboard", "mlflow", "wandb")  # --tracker choices (sweeps.trackers wires them to Tune)
# Flags that choose trials or their resources: fixed once a sweep has started.
TRIAL_FLAGS = {
    "sets": "--set",
    "seeds": "--seeds",
    "base": "--base",
    "gpus_per_trial": "--gpus-per-trial",
    "cpus_per_trial": "--cpus-per-trial",
    "fuse_seeds": "--fuse-seeds",
}


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,1,2"`` and mixes such as ``"0-2,7"`` also work."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds {text!r} is invalid: allowed forms are 0-4, 0,1,2 or 0-2,7"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds {text!r} is invalid: give distinct seeds >= 0, e.g. 0-4")
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


def _resource(kind: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not resource_ok(kind, value):
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed values are {RESOURCE_RULES[kind]}")
        return value

    return parse


def parse_args(prog: str, description: str, argv: list[str] | None = None) -> SweepArgs:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into :class:`SweepArgs`; exits 2 on a malformed flag."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--smoke-test", action="store_true", help="tiny trials (spec's smoke overrides); ~1-2 min on 2 CPUs"
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="override a config key for every trial (repeatable), e.g. --set train.lr=3e-4",
    )
    parser.add_argument("--seeds", type=parse_seeds, help="seeds per arm, e.g. 0-4 or 0,1,2 (default: the spec's)")
    parser.add_argument(
        "--base",
        metavar="FILE",
        help="YAML of flat config keys applied over the spec's base "
        "(e.g. sweeps/configs/tuned/digits.yaml written by tune_task.py)",
    )
    parser.add_argument(
        "--address",
        help="Ray cluster to join: 'auto' on a `ray up` cluster, or HOST:PORT "
        "(default: start a private local Ray on 127.0.0.1)",
    )
    parser.add_argument(
        "--storage-path",
        default="./results",
        help="where results go: a local folder (single machine), s3://..., gs://..., or an NFS "
        "path mounted on every node (default: ./results)",
    )
    parser.add_argument(
        "--gpus-per-trial", type=_resource("gpu"), help="GPUs per trial, fractions share a GPU (e.g. 0.5)"
    )
    parser.add_argument("--cpus-per-trial", type=_resource("cpu"), help="CPUs per trial (also torch's thread count)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep NAME under --storage-path: only unfinished and errored trials run",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the trial table and the cost estimate (wall-clock, CPU- or GPU-hours); start no Ray",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="with --dry-run: first measure the time per epoch with "
        "a short probe per (task, backbone, method, device) on this machine (cached)",
    )
    parser.add_argument(
        "--tracker",
        dest="trackers",
        action="append",
        choices=TRACKERS,
        default=None,
        help="also log every trial to this tracker (repeatable); each is an optional extra, "
        "e.g. pip install -e '.[mlflow]'",
    )
    parser.add_argument("--name", help="experiment folder name under --storage-path (default: the spec's name)")
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="run every trial, even those whose key matches a "
        "finished trial under --storage-path (default: reuse them)",
    )
    parser.add_argument(
        "--fuse-seeds",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train the seeds of each arm as one fused trial (one stacked model; arms that cannot fuse run "
        "one trial per seed, --dry-run says why); default: the spec's fuse_seeds (false)",
    )
    ns = parser.parse_args(argv)
    args = SweepArgs(**{k: v for k, v in vars(ns).items() if v is not None})
    if args.resume:
        given = [flag for attr, flag in TRIAL_FLAGS.items() if getattr(ns, attr) is not None]
        if given:
            parser.error(f"--resume continues the saved sweep as it was launched; drop {', '.join(given)}")
    if args.resume and args.trackers:  # Tune restores the callbacks it pickled at launch
        parser.error("--resume logs to the trackers the sweep was launched with; drop --tracker")
    if args.calibrate and not args.dry_run:
        parser.error("--calibrate measures for the cost estimate of a dry run: add --dry-run")
    args.trackers = list(dict.fromkeys(args.trackers))
    return args


def main(spec: str, description: str | None = None, argv: list[str] | None = None) -> int:
    """Entry point of ``sweeps/<spec>.py`` and ``python -m sweeps SPEC``; returns the exit code (2 = bad input).

    Flags are parsed before the runner is imported, so ``--help`` and a malformed flag answer at once
    instead of after the seconds that importing torch and Ray take."""
    from sweeps.spec import SPEC_DIR, spec_path  # sweeps.spec imports this module

    args = parse_args(
        f"sweeps/{spec}.py" if spec_path(spec).parent == SPEC_DIR else f"python -m sweeps {spec}",
        description or "",
        argv,
    )
    from sweeps.runner import launch

    return launch(spec, args)
