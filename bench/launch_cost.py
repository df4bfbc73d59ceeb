"""What one small local launch costs in CPU-seconds: the floor under every sweep test in the suite.

The launch is four tiny fine-tuning trials (digits, 3 epochs of 3 steps) on local Ray, run as a user
runs it (``python -m sweeps spec``). Its cost is read from ``/proc/stat``, so every process counts:
the driver, Ray's services and workers, the trial processes. Most of it is start-up (imports of torch,
transformers and Ray in each process), not training. Run on a quiet machine; for a before/after
comparison, give several checkouts: they run in turn, round after round, so drift hits each alike.

    python bench/launch_cost.py [--rounds 3] [--serial] CHECKOUT [CHECKOUT ...]

Prints one line per launch and a mean per checkout. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SPEC = {
    "name": "launch_cost",
    "base": {
        "method": "finetune",
        "task.name": "digits",
        "train.epochs": 3,
        "train.steps_per_epoch": 3,
        "task.n_train": 120,
        "task.max_test": 200,
    },
    "grid": {"train.lr": [1e-3, 2e-3]},
    "seeds": [0, 1],
}


def busy_seconds() -> float:
    """CPU-seconds spent by the whole machine so far (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6)) / os.sysconf("SC_CLK_TCK")


def launch(checkout: Path, spec: Path, storage: Path) -> tuple[float, float]:
    """(CPU-s, wall s) of one launch of ``spec`` with ``checkout``'s code."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    cpu, wall = busy_seconds(), time.perf_counter()
    command = [sys.executable, "-m", "sweeps", str(spec), "--storage-path", str(storage)]
    subprocess.run(command, cwd=checkout, env=env, check=True, capture_output=True)
    return busy_seconds() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serial", action="store_true", help="search.max_concurrent 1: one trial process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp, "spec.yaml")
        search = {"search": {"max_concurrent": 1}} if args.serial else {}
        spec.write_text(yaml.safe_dump({**SPEC, **search}))
        costs: dict[Path, list[float]] = {c: [] for c in args.checkouts}
        for round_ in range(args.rounds):
            for checkout in args.checkouts:
                cpu, wall = launch(checkout.resolve(), spec, Path(tmp, f"r{round_}-{len(costs[checkout])}"))
                costs[checkout].append(cpu)
                print(f"round {round_ + 1} {checkout}: {cpu:.1f} CPU-s, {wall:.1f} s wall", flush=True)
    for checkout, values in costs.items():
        print(f"{checkout}: {statistics.mean(values):.1f} CPU-s per launch (n={len(values)})")


if __name__ == "__main__":
    main()
