"""Training throughput of N fused seeds against N separate trials on the same cores (issue: fused trials).

Not a test: prints a table for the closing note / docs. Separate trials run as a sweep runs them: as many
at once as there are cores, one torch thread each, every seed in its own process. Fused seeds run as one
process with every core (``pare_core.fusion.fit_seeds``). Both train the default PaRe trial (digits +
MiniLM, frozen body) on the same seeds; throughput counts training samples per second over epochs 2+
(epoch 1 pays one-off costs; set-up is excluded, it is measured by bench/trial_profile.py).

``--ablation`` instead times the default gate ablation (``sweeps/ablate_gate.py``, 25 trials) end to end,
unfused and then fused, each into a fresh results folder with nothing reused.

    python bench/fusion.py [--seeds 1 2 5 10] [--epochs 3] [--set KEY=VALUE ...]
    python bench/fusion.py --ablation
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pare_core.config import TrialConfig, parse_sets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train_samples_per_s(flat: dict, seeds: list[int]) -> float:
    """Training samples per second (all seeds together), mean over epochs 2+, of these seeds fused here."""
    from pare_core.fusion import fit_seeds

    rates: dict[int, float] = {}

    def report(results, _checkpointer):
        for result in results.values():
            if result["epoch"] > 1:
                rates[result["epoch"]] = result["samples_per_s"]  # every seed's samples, fused

    fit_seeds(TrialConfig.from_flat(flat), seeds, report)
    return sum(rates.values()) / len(rates)


def separate(flat: dict, n: int, cores: int) -> float:
    """Training samples per second of a sweep of n separate trials in steady state: min(n, cores)
    one-seed processes at once, the cores split evenly between them."""
    at_once = min(n, cores)
    worker = json.dumps({**flat, "runtime.threads": cores // at_once})
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", worker, "--worker-seed", str(seed)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(at_once)
    ]
    return sum(float(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs)


def ablation_wall_s(fused: bool, sets: list[str]) -> float:
    """Wall-clock seconds of the default gate ablation, launch to exit, in a fresh results folder
    (``sets``: --set overrides for every trial, e.g. a backbone.path of random weights on a GPU machine)."""
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, "sweeps/ablate_gate.py", "--storage-path", results, "--no-reuse"]
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one separate trial: print its training samples per second
        print(train_samples_per_s(json.loads(args.worker), [args.worker_seed]))
        return
    cores = os.cpu_count() or 1
    if args.ablation:
        apart, fused = ablation_wall_s(False, args.set), ablation_wall_s(True, args.set)
        print(f"default gate ablation, {cores} cores: {apart / 60:.1f} min unfused, {fused / 60:.1f} min fused")
        print(json.dumps({"unfused_s": apart, "fused_s": fused}))
        return
    flat = {"train.epochs": args.epochs, **parse_sets(args.set)}
    print(f"default PaRe trial, {cores} cores; training samples/s over epochs 2-{args.epochs}")
    print("| seeds | separate trials (samples/s) | fused (samples/s) | fused / separate |")
    print("|---|---|---|---|")
    rates = {}
    for n in args.seeds:
        seeds = list(range(n))
        fused = train_samples_per_s({**flat, "runtime.threads": cores}, seeds)
        apart = separate(flat, n, cores)
        rates[n] = {"separate": apart, "fused": fused}
        print(f"| {n} | {apart:.0f} | {fused:.0f} | {fused / apart:.2f} |", flush=True)
    print(json.dumps({"samples_per_s": rates, "overrides": args.set}))


if __name__ == "__main__":
    sys.exit(main())
