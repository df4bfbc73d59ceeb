"""How many trials, and how many seeds, train at once on one node; what limits it; what would keep its
GPU busier. The dry run prints it (docs/sweeps.md, "Packing on GPU nodes").

In the plan layer: Ray places a trial on a node where its CPUs and GPUs fit, so a node of C CPUs and G
GPUs runs at most floor(C / cpu) and floor(G / gpu) trials at once, whichever is fewer. cluster.yaml's
GPU workers have 8 or 12 CPUs per GPU: 16 trials of 1/16 GPU and 1 CPU each run 8 at once on an A10G
node, and the GPU waits on the CPUs. A fused trial (``sweeps.fused``) trains all its seeds in one
process, one stacked step for all of them (``pare_core.fusion``), so the seeds at once, not the
processes, say how much work the GPU gets.

This module says what would pack better; it changes nothing. ``--fuse-seeds`` changes how a trial
computes (on CUDA a fused seed's dropout masks differ from its unfused run's: ``pare_core.fusion``)
and a GPU fraction changes what Ray reserves, so both stay the user's choice.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.fused import seeds_of
from sweeps.plan import fuse_arms
from sweeps.spec import SpecError, Sweep, load_yaml

CLUSTER_FILE = Path(__file__).resolve().parents[1] / "cluster.yaml"  # the `ray up` cluster of docs/sweeps.md
TRIAL_COUNT, SEARCHER, GPU_FRACTION, CPUS = (
    "the trial count",
    "search.max_concurrent",
    "the GPU fraction",
    "CPUs",
)


@dataclass(frozen=True)
class Node:
    """A node's shape: the CPUs and GPUs Ray can hand to trials there."""

    name: str
    cpus: float
    gpus: float

    def __str__(self) -> str:
        return f"{self.name} ({self.cpus:g} CPUs, {self.gpus:g} GPU{'s' if self.gpus != 1 else ''})"


@dataclass
class Packing:
    """The trials of a sweep on one node: how many run at once, and what stops more."""

    node: Node
    need: dict[str, float]  # the most CPUs and GPUs any trial asks for (Ray must fit that one)
    room: dict[str, int]  # trials at once that each constraint allows, by name
    trials: int  # trial processes at once: the smallest room
    seeds: int  # seeds training at once: those trials' seeds (a fused trial counts each of its seeds)

    @property
    def limits(self) -> list[str]:
        """The constraints that set :attr:`trials` (several on a tie; the trial count alone once every trial runs)."""
        binding = [name for name, room in self.room.items() if room == self.trials]
        return [TRIAL_COUNT] if TRIAL_COUNT in binding else binding

    @property
    def on_gpu(self) -> bool:
        return self.need["gpu"] > 0 and self.node.gpus > 0

    @property
    def waits_on_cpus(self) -> bool:
        """Trials hold GPU fractions, but the node's CPUs run fewer of them than the GPUs have room for."""
        return self.on_gpu and self.limits == [CPUS] and self.room[CPUS] < self.room[GPU_FRACTION]


# -- node shapes ------------------------------------------------------------------------------------


def gpu_count() -> int:
    """GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else the driver's /proc entries."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(list(Path("/proc/driver/nvidia/gpus").glob("*")))


def this_machine() -> Node:
    return Node("this machine", os.cpu_count() or 1, gpu_count())


def cluster_nodes(path: str | Path | None = None) -> list[Node]:
    """The node types of a ``ray up`` cluster file that trials can land on: those that offer CPUs
    (cluster.yaml's head advertises none, so no trial runs there). Raises :class:`SpecError` naming
    the node type and key when a type's ``resources`` are missing or not whole numbers. Default:
    :data:`CLUSTER_FILE`."""
    path = path or CLUSTER_FILE
    types = load_yaml(path).get("available_node_types")
    if not isinstance(types, dict) or not types:
        raise SpecError(f"{path}: available_node_types is missing: allowed values are a mapping of node types")
    nodes = []
    for name, node_type in types.items():
        where = f"{path} available_node_types.{name}.resources"
        given = node_type.get("resources") if isinstance(node_type, dict) else None
        if not isinstance(given, dict) or "CPU" not in given:
            raise SpecError(f"{where}={given!r} is invalid: allowed values are a mapping such as {{CPU: 8, GPU: 1}}")
        shape = {kind: given.get(kind, 0) for kind in ("CPU", "GPU")}
        for kind, value in shape.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SpecError(f"{where}.{kind}={value!r} is invalid: allowed values are whole numbers >= 0")
        if shape["CPU"] > 0:
            nodes.append(Node(str(name), shape["CPU"], shape["GPU"]))
    if not nodes:
        raise SpecError(
            f"{path}: no node type offers CPUs, so no trial can run: give a worker type resources {{CPU: 8, GPU: 1}}"
        )
    return nodes


def nodes_for(address: str | None) -> tuple[list[Node], str]:
    """The node shapes a launch with ``--address`` (cluster.yaml's) or without (this machine) runs on,
    and where they come from."""
    if address is None:
        return [this_machine()], "this machine"
    return cluster_nodes(), f"{CLUSTER_FILE.name}'s node types (--address joins a `ray up` cluster)"


# -- packing ----------------------------------------------------------------------------------------


def trial_configs(sweep: Sweep) -> list[dict[str, Any]]:
    """Every trial's config; a searcher's trials are not known before they run, so each counts as the
    base config (searched keys such as ``train.lr`` change neither resources nor time much)."""
    return sweep.trials if sweep.search["type"] == "grid" else [sweep.base] * sweep.n_trials


def pack(sweep: Sweep, node: Node) -> Packing:
    """``sweep``'s trials on ``node``; with arms of their own resources, as many as fit of the largest.
    Seeds at once are those of the first trials in launch order, as Tune starts them."""
    configs = trial_configs(sweep)
    need = {kind: max(sweep.trial_resources(c)[kind] for c in configs) for kind in ("cpu", "gpu")}
    room = {TRIAL_COUNT: sweep.n_trials}
    if "max_concurrent" in sweep.search:
        room[SEARCHER] = int(sweep.search["max_concurrent"])
    if need["gpu"] > 0:
        room[GPU_FRACTION] = math.floor(node.gpus / need["gpu"] + 1e-9)
    room[CPUS] = math.floor(node.cpus / need["cpu"] + 1e-9)  # resources are validated: cpu > 0
    trials = max(0, min(room.values()))
    return Packing(node, need, room, trials, sum(len(seeds_of(c)) for c in configs[:trials]))


def local_slots(sweep: Sweep, cpus: float | None = None, gpus: float | None = None) -> int:
    """Trials that run at once on a machine with ``cpus`` and ``gpus`` (default: this one); 0 when a
    trial does not fit."""
    here = this_machine()
    return pack(sweep, Node("", here.cpus if cpus is None else cpus, here.gpus if gpus is None else gpus)).trials


# -- the dry run's text -----------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:.3g}"


def _count(count: float, one: str, many: str) -> str:
    return f"{_n(count)} {one if count == 1 else many}"


def at_once(trials: int, seeds: int, node: Node, on_gpu: bool) -> str:
    """``8 trial processes, 8 seeds at once per GPU``; on several GPUs the node's figures and the seeds per GPU."""
    text = f"{_count(trials, 'trial process', 'trial processes')}, {_count(seeds, 'seed', 'seeds')} at once"
    if not on_gpu:
        return text
    if node.gpus == 1:
        return f"{text} per GPU"
    return f"{text} on {node.gpus:g} GPUs ({_count(seeds / node.gpus, 'seed', 'seeds')} per GPU)"


def line(p: Packing) -> str:
    """One node type: trials and seeds at once, and what limits them."""
    if not p.trials:
        return f"{p.node}: a trial does not fit (it asks for {p.need['cpu']:g} CPU, {p.need['gpu']:g} GPU)"
    why = {
        TRIAL_COUNT: "the trial count (every trial at once)",
        SEARCHER: SEARCHER,
        GPU_FRACTION: f"the GPU fraction ({p.need['gpu']:g} GPU per trial)",
        CPUS: f"CPUs ({p.need['cpu']:g} CPU per trial)",
    }
    return (
        f"{p.node}: {at_once(p.trials, p.seeds, p.node, p.on_gpu)}; limited by {' and '.join(why[w] for w in p.limits)}"
    )


def advice(p: Packing, fused: Packing | None) -> list[str]:
    """What would keep ``p``'s GPUs busier, if anything: a GPU for trials that hold none, a GPU fraction
    that matches what the CPUs feed, and ``fused`` (the sweep with ``--fuse-seeds``) where it trains
    more seeds at once."""
    if p.node.gpus == 0 or not p.trials:
        return []
    out = []
    per_gpu = p.room[CPUS] / p.node.gpus  # trials per GPU that the node's CPUs run
    fraction = f"--gpus-per-trial {math.floor(1e4 / per_gpu) / 1e4:g}" if per_gpu >= 1 else ""
    if p.need["gpu"] == 0:
        out.append(
            "the GPU idles: trials hold no GPU, so they train on the node's CPUs"
            + (f"; {fraction} puts {_n(per_gpu)} on each GPU (what its CPUs feed)" if fraction else "")
        )
    elif p.waits_on_cpus:
        room = p.room[GPU_FRACTION] / p.node.gpus
        out.append(
            f"the GPU waits on CPUs: the GPU fraction leaves room for {_n(room)} trials per GPU, the CPUs run "
            f"{_n(per_gpu)}" + (f"; {fraction} says so to Ray (the same {_n(per_gpu)} per GPU)" if fraction else "")
        )
    if p.on_gpu and fused is not None and fused.seeds > p.seeds:
        out.append(
            f"--fuse-seeds packs more: {at_once(fused.trials, fused.seeds, p.node, True)} "
            "(each process trains its arm's seeds as one stacked step)"
        )
    return out


def render(sweep: Sweep, nodes: list[Node], where: str) -> list[str]:
    """The dry run's packing lines: per node type, trials and seeds at once and what limits them, then
    what would pack better. Fusing to compare imports torch (``sweeps.plan.fuse_arms``), so only a
    sweep on GPUs that could fuse does it."""
    packings = [pack(sweep, node) for node in nodes]
    fused_sweep = None
    if not sweep.fuse_seeds and sweep.search["type"] == "grid" and len(sweep.seeds) > 1:
        if any(p.on_gpu for p in packings):
            fused_sweep = fuse_arms(dataclasses.replace(sweep, fuse_seeds=True))
    lines = [f"packing on {where}:"]
    for p in packings:
        lines.append(f"- {line(p)}")
        fused = pack(fused_sweep, p.node) if fused_sweep is not None else None
        lines += [f"  {tip}" for tip in advice(p, fused)]
    return lines
