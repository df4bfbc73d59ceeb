"""How long the test suite takes here, how busy it keeps the cores, and how fast the machine was meanwhile.

This VM's speed drifts from hour to hour (the same suite took 653 s and 748 s fifteen minutes apart, and a
session-start run 915 s), so a suite time alone does not compare across runs. Before and after the suite, a
fixed single-thread workload (a trial process's imports and torch math) is timed: its seconds say how fast
the machine was; compare suite times only at similar reference times. While the suite runs, the machine's
busy CPU-seconds (bench/launch_cost.py's ``busy_seconds``) are read every 2 s: busy cores on average, and
the seconds in which less than one core was busy (room that one more pytest-xdist worker could use).

    python bench/suite_time.py [--cold] [--where] [PYTEST_ARG ...]     e.g. -m "not slow", or --durations=30

``--where`` also says which kinds of process and which test files used the CPU (bench/suite_cpu.py).

``--cold`` first removes what a fresh machine lacks: ``~/.cache/pare`` (task and weight caches), inductor's
cache and matplotlib's. Not a test: prints the figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from launch_cost import busy_seconds  # bench/ is on sys.path: this script runs by path
from suite_cpu import ProcessSampler

ROOT = Path(__file__).resolve().parents[1]
# What a trial process does first, the suite's most repeated work: imports, then single-thread torch math.
REFERENCE = """
import time
start = time.perf_counter()
import torch
from transformers.models.bert import modeling_bert
torch.set_num_threads(1)
a = torch.randn(256, 256)
for _ in range(3000):
    a = torch.tanh(a @ a)
print(time.perf_counter() - start)
"""
COLD = [
    Path.home() / ".cache" / "pare",
    Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}",
    Path.home() / ".cache" / "matplotlib",
]


def reference_s() -> float:
    """Seconds of a fixed single-thread workload (a trial's imports, then 3000 256x256 matmuls), the median
    of three fresh processes: the machine's speed right now."""
    runs = [
        subprocess.run([sys.executable, "-c", REFERENCE], capture_output=True, text=True, check=True) for _ in "abc"
    ]
    return statistics.median(float(run.stdout.strip()) for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="clear the caches a fresh machine lacks first")
    parser.add_argument(
        "--where", action="store_true", help="also say where the CPU went: by kind of process and by test file"
    )
    args, pytest_args = parser.parse_known_args()
    if args.cold:
        for path in COLD:
            shutil.rmtree(path, ignore_errors=True)
    before = reference_s()
    samples: list[float] = []  # busy cores in each 2 s window
    done = threading.Event()

    def sample() -> None:
        last = busy_seconds(), time.monotonic()
        while not done.wait(2.0):
            now = busy_seconds(), time.monotonic()
            samples.append((now[0] - last[0]) / (now[1] - last[1]))
            last = now

    start_busy, start = busy_seconds(), time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", *pytest_args], cwd=ROOT)  # its output shows
    processes = ProcessSampler(root=proc.pid) if args.where else None
    if processes:
        processes.start()
    proc.wait()
    wall = time.monotonic() - start
    done.set()
    sampler.join()
    busy_s = busy_seconds() - start_busy
    if processes:
        processes.stop()
        print(processes.report())
    after = reference_s()
    print(
        f"suite wall {wall:.0f} s, busy CPU {busy_s:.0f} s ({busy_s / wall:.2f} of {os.cpu_count()} cores), "
        f"{2 * sum(s < 1.0 for s in samples)} s with less than one core busy (pytest exit {proc.returncode})"
    )
    print(f"reference workload {before:.2f} s before, {after:.2f} s after (lower = faster machine)")


if __name__ == "__main__":
    main()
