"""N fused seeds against N separate trials on the same machine, end to end and in steady state (issue 21).

Not a test: prints a table for the closing note / docs. Separate trials run as a sweep runs them: one
unfused trial (``pare_core.train.fit``) per seed, each its own process, as many at once as there are
cores, the cores split evenly. Fused seeds run as one process with every core
(``pare_core.fusion.fit_seeds``); one seed is never fused (a sweep runs it as an ordinary trial), so
its row is one measurement. Both train the default PaRe trial (digits + MiniLM, frozen body) on the
same seeds. Two figures per row:

- end to end: wall-clock seconds from starting the processes to the last one's exit, so it includes
  what a trial pays before its first step (Python start, imports, the CUDA context, data load, model
  build) and after its last (test pass);
- steady state: training samples per second (all seeds together) over epochs 2+ (epoch 1 pays the
  one-off costs).

A JSON line follows every row, so a run cut by bench/gpu.sh's time cap keeps the rows that finished.

``--ablation`` instead times the default gate ablation (``sweeps/ablate_gate.py``, 25 trials) end to end,
launch to exit (Ray start, every trial's start-up), unfused and then fused, each into a fresh results
folder with nothing reused; ``--gpus-per-trial`` puts its trials on the GPU.

    python bench/fusion.py [--seeds 1 2 5 10] [--epochs 3] [--set KEY=VALUE ...]
    python bench/fusion.py --ablation [--gpus-per-trial 0.0625] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pare_core.config import TrialConfig, parse_sets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train_samples_per_s(flat: dict, seeds: list[int]) -> float:
    """Training samples per second (all seeds together), mean over epochs 2+, of these seeds trained here:
    one seed unfused (``fit``), several fused (``fit_seeds``)."""
    from pare_core.fusion import fit_seeds
    from pare_core.train import fit

    rates: dict[int, float] = {}

    def report(result):
        if result["epoch"] > 1:
            rates[result["epoch"]] = result["samples_per_s"]  # a fused run's: every seed's samples

    def report_seeds(results, _checkpointer):
        for result in results.values():
            report(result)

    if len(seeds) == 1:
        fit(TrialConfig.from_flat({**flat, "seed": seeds[0]}), lambda metrics, _checkpointer: report(metrics))
    else:
        fit_seeds(TrialConfig.from_flat(flat), seeds, report_seeds)
    return sum(rates.values()) / len(rates)


def processes(flat: dict, groups: list[list[int]], at_once: int, threads: int) -> tuple[float, list[float]]:
    """One process per seed group, ``at_once`` at a time with ``threads`` torch threads each: the wall-clock
    seconds from the first start to the last exit, and each process's steady training samples/s."""

    def one(seeds: list[int]) -> float:
        worker = json.dumps({**flat, "runtime.threads": threads})
        command = [sys.executable, __file__, "--worker", worker, "--worker-seeds", ",".join(map(str, seeds))]
        return float(
            subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        rates = list(pool.map(one, groups))
    return time.perf_counter() - started, rates


def compare(flat: dict, n: int, cores: int) -> dict[str, dict[str, float]]:
    """Seeds 0..n-1 as separate trials and fused: end-to-end seconds and steady samples/s of each."""
    at_once = min(n, cores)
    apart_s, rates = processes(flat, [[seed] for seed in range(n)], at_once, cores // at_once)
    apart = {"wall_s": apart_s, "samples_per_s": sum(rates) / len(rates) * at_once}  # at_once trials train at a time
    if n == 1:
        return {"separate": apart, "fused": apart}
    fused_s, (fused_rate,) = processes(flat, [list(range(n))], 1, cores)
    return {"separate": apart, "fused": {"wall_s": fused_s, "samples_per_s": fused_rate}}


def ablation_wall_s(fused: bool, sets: list[str], gpus: float | None) -> float:
    """Wall-clock seconds of the default gate ablation, launch to exit, in a fresh results folder
    (``sets``: --set overrides for every trial, e.g. a backbone.path of random weights on a GPU machine;
    ``gpus``: each trial's GPU fraction, None: the spec's, CPU only)."""
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, "sweeps/ablate_gate.py", "--storage-path", results, "--no-reuse"]
        command += [] if gpus is None else ["--gpus-per-trial", str(gpus)]
        command += [arg for kv in sets for arg in ("--set", kv)]
        started = time.perf_counter()
        subprocess.run([*command, *(["--fuse-seeds"] if fused else [])], check=True, cwd=ROOT, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--ablation", action="store_true", help="time the default gate ablation, unfused then fused")
    parser.add_argument("--gpus-per-trial", type=float, help="with --ablation: each trial's GPU fraction")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-seeds", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one trial process: print its training samples per second
        print(train_samples_per_s(json.loads(args.worker), [int(s) for s in args.worker_seeds.split(",")]))
        return
    cores = os.cpu_count() or 1
    if args.ablation:
        where = f"{cores} cores" + (f", {args.gpus_per_trial:g} GPU per trial" if args.gpus_per_trial else "")
        apart = ablation_wall_s(False, args.set, args.gpus_per_trial)
        print(json.dumps({"unfused_s": apart, "fused_s": None}), flush=True)  # kept if the fused launch is cut
        fused = ablation_wall_s(True, args.set, args.gpus_per_trial)
        print(f"default gate ablation, {where}: {apart / 60:.1f} min unfused, {fused / 60:.1f} min fused")
        print(json.dumps({"unfused_s": apart, "fused_s": fused}))
        return
    flat = {"train.epochs": args.epochs, **parse_sets(args.set)}
    print(
        f"default PaRe trial, {cores} cores; end to end (process start to exit) and training samples/s over epochs 2-{args.epochs}"
    )
    print(
        "| seeds | separate s | fused s | separate / fused s | separate samples/s | fused samples/s | fused / separate |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for n in args.seeds:
        rows[n] = compare(flat, n, cores)
        apart, fused = rows[n]["separate"], rows[n]["fused"]
        print(
            f"| {n} | {apart['wall_s']:.1f} | {fused['wall_s']:.1f} | {apart['wall_s'] / fused['wall_s']:.2f} | "
            f"{apart['samples_per_s']:.0f} | {fused['samples_per_s']:.0f} | "
            f"{fused['samples_per_s'] / apart['samples_per_s']:.2f} |"
        )
        per = {k: {n: {mode: r[mode][k] for mode in r} for n, r in rows.items()} for k in ("samples_per_s", "wall_s")}
        print(json.dumps({**per, "overrides": args.set}), flush=True)  # every row so far: a cut run keeps them


if __name__ == "__main__":
    sys.exit(main())
