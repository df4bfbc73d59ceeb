"""The flags every sweep script shares, and the entry every script calls: one parser so ``ablate_*.py``
and ``tune_task.py`` stay a few lines.

``main`` walks the layers of ``sweeps/`` once, in order (docs/sweeps.md, "How sweeps/ is laid out"):
the spec (``sweeps.spec.build``), the plan (``sweeps.plan.fuse_arms``), then a dry run here or a launch
(``sweeps.driver.run``, which imports Ray). Flags are parsed before anything heavy is imported, so
``--help`` and a malformed flag answer at once.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

from sweeps.options import (
    RESOURCE_RULES,
    TRACKERS,
    TRIAL_FLAGS,
    LaunchOptions,
    Overrides,
    parse_seeds,
    refuse,
    resource_ok,
)


class Flags(NamedTuple):
    """One parsed command line: what changes the trials, and how they are launched."""

    overrides: Overrides
    launch: LaunchOptions


def _seeds(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except ValueError as err:  # argparse shows an ArgumentTypeError's own message, a ValueError's not
        raise argparse.ArgumentTypeError(str(err)) from None


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


def parse_args(prog: str, description: str, argv: list[str] | None = None) -> Flags:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into :class:`Flags`; exits 2 on a malformed flag."""
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
    parser.add_argument("--seeds", type=_seeds, help="seeds per arm, e.g. 0-4 or 0,1,2 (default: the spec's)")
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
    ns = vars(parser.parse_args(argv))
    given = {k: v for k, v in ns.items() if v is not None}
    overrides = Overrides(**{k: v for k, v in given.items() if k in Overrides.__dataclass_fields__})
    launch = LaunchOptions(**{k: v for k, v in given.items() if k in LaunchOptions.__dataclass_fields__})
    if launch.resume:
        fixed = [flag for attr, flag in TRIAL_FLAGS.items() if ns[attr] is not None]
        if fixed:
            parser.error(f"--resume continues the saved sweep as it was launched; drop {', '.join(fixed)}")
    if launch.resume and launch.trackers:  # Tune restores the callbacks it pickled at launch
        parser.error("--resume logs to the trackers the sweep was launched with; drop --tracker")
    if launch.calibrate and not launch.dry_run:
        parser.error("--calibrate measures for the cost estimate of a dry run: add --dry-run")
    launch.trackers = list(dict.fromkeys(launch.trackers))
    launch.command = launch_command(prog, argv)
    return Flags(overrides, launch)


def launch_command(prog: str, argv: list[str] | None) -> str:
    """The command line that reruns a launch: the process's own (``argv`` None), or, for ``main`` called
    in a process of its own with ``argv`` (a notebook, a test, compare_methods.py), the command that does
    the same from a shell: what ``sys.argv`` holds there is that process's command, not the launch's."""
    if argv is None:
        return shlex.join([Path(sys.executable).name, *sys.argv])
    return " ".join([prog if prog.startswith("python ") else f"python {prog}", *map(shlex.quote, argv)])


class Outcome(NamedTuple):
    """How a command ended: its exit code, and the experiment folder it launched (None: refused or dry run)."""

    code: int
    experiment: str | None = None


def main(spec: str, description: str | None = None, argv: list[str] | None = None) -> int:
    """Entry point of ``sweeps/<spec>.py`` and ``python -m sweeps SPEC``; returns the exit code (0: every
    trial finished, 1: some failed, 2: bad input, refused before Ray starts)."""
    return command(spec, description, argv).code


def command(spec: str, description: str | None = None, argv: list[str] | None = None) -> Outcome:
    """:func:`main`, also telling where the results went (``sweeps/compare_methods.py`` reads them after)."""
    from sweeps.spec import SPEC_DIR, SpecError, build, spec_path

    path = spec_path(spec)
    prog = f"sweeps/{path.stem}.py" if path.parent == SPEC_DIR else f"python -m sweeps {shlex.quote(spec)}"
    overrides, launch = parse_args(prog, description or "", argv)
    try:
        from sweeps.plan import fuse_arms

        sweep = fuse_arms(build(spec, overrides))
    except SpecError as err:
        return Outcome(refuse(str(err)))
    if launch.dry_run:
        return Outcome(dry_run(sweep, launch))
    from sweeps.driver import run  # imports Ray
    from sweeps.storage import experiment_dir

    return Outcome(run(sweep, launch), experiment_dir(launch.storage_path, sweep.name))


def dry_run(sweep: Any, options: LaunchOptions) -> int:
    """Print the sweep, how its trials pack on the nodes it would run on (``--address``: cluster.yaml's
    node types, else this machine) and what it will cost (``--calibrate``: measured here first), then what
    the launch would refuse before Ray starts (``sweeps.preflight``: exit 2, as the launch); start no Ray."""
    from sweeps import cost, packing, plan, preflight, storage
    from sweeps.spec import SpecError

    try:
        nodes, where = packing.nodes_for(options.address)
    except SpecError as err:  # a cluster file without usable node shapes
        return refuse(str(err))
    print(plan.describe(sweep))
    print("\n".join(packing.render(sweep, nodes, where)))
    try:
        estimate = cost.estimate(sweep, calibrate=options.calibrate)
    except RuntimeError as err:  # a GPU sweep calibrated on a machine without one
        return refuse(str(err))
    print("\n".join(cost.render(estimate)))
    storage_path = storage.resolve(options.storage_path)
    experiment = storage.experiment_dir(storage_path, sweep.name)
    found = preflight.problem(sweep, options, storage_path, experiment)
    if found:
        return refuse(found)
    if "://" not in experiment and os.path.exists(experiment):  # a remote store is not listed by a dry run
        print(
            f"warning: {experiment} already exists: a launch adds to it (finished trials with the same key are "
            "reused, not re-run); --name NEW starts a separate folder",
            file=sys.stderr,
        )
    return 0
