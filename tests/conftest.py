"""Test environment: offline hub, Ray on loopback without auth tokens, one CPU thread per process.

The suite runs on one pytest-xdist worker per core (pyproject ``addopts``: ``-n auto``, sized by
:func:`pytest_xdist_auto_num_workers`), which keeps the cores busy; a fit with two torch threads beside
them only adds OpenMP spin-waiting (measured: 2 threads cost 19 % more CPU-seconds than 1 for
test_train.py + test_pare_arms.py). Subprocesses and Ray workers inherit
``OMP_NUM_THREADS``; a test that needs more threads sets ``runtime.threads``.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported, here or in a subprocess

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


import collections  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402
from ray_sockets import listening  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_budget() -> dict:
    """The smallest real fit the tests run: 160 training samples, 200 test samples, one epoch of two steps of 16, a 200-sample
    source set, one torch thread. Tests override what they need (``{**tiny_budget, "train.epochs": 3}``);
    shared by the whole session (so module fixtures can build on it): copy it, never change it."""
    return {
        "task.n_train": 160,
        "task.max_test": 200,
        "train.batch_size": 16,
        "train.epochs": 1,
        "train.steps_per_epoch": 2,
        "source.size": 200,
        "runtime.threads": 1,
    }


@pytest.fixture(scope="session")
def smoke_sweep(request, tmp_path_factory) -> Callable[[str], Path]:
    """``smoke_sweep("ablate_gate")`` runs ``sweeps/ablate_gate.py --smoke-test`` (a real local Ray sweep of
    real fits, by path as a user would) once per test run and returns its storage folder; later calls, in
    any pytest-xdist worker, wait for that run and read the same folder. The tests that use it only read
    it (copy it before writing), so sharing it saves a whole sweep per reader without changing what each
    one checks.

    The sweep runs as from a user's shell, without the ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` this file sets
    (the runner must keep its private Ray on loopback by itself), and the TCP sockets its processes listen
    on are sampled while it runs: ``run.json`` beside the storage folder records them, for
    tests/test_sweeps_local_ray.py."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base  # xdist: beside every worker's

    def run_once(script: str) -> Path:
        folder = shared / f"smoke_{script}"
        with open(shared / f"smoke_{script}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the first caller runs the sweep, the others wait here
            record = folder / "run.json"
            if not record.exists():
                folder.mkdir(parents=True, exist_ok=True)
                storage, log = folder / "storage", folder / "output.txt"
                env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
                with open(log, "w") as out:
                    proc = subprocess.Popen(
                        [sys.executable, f"sweeps/{script}.py", "--smoke-test", "--storage-path", str(storage)],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                    seen: set[tuple[str, str]] = set()
                    deadline = time.monotonic() + 400
                    while proc.poll() is None and time.monotonic() < deadline:
                        seen |= listening(proc.pid)
                        time.sleep(0.5)
                    proc.kill()
                    returncode = proc.wait()
                output = log.read_text()[-8000:]
                record.write_text(json.dumps({"returncode": returncode, "output": output, "listening": sorted(seen)}))
        run = json.loads(record.read_text())
        assert run["returncode"] == 0, run["output"]
        return folder / "storage"

    return run_once


# The largest process of a suite run peaked at 2.4 GB (GNU time's maximum resident set); a worker's sweeps
# add their trial processes and Ray beside it.
WORKER_MEMORY = 4 * 1024**3


def xdist_workers(cores: int, memory: int) -> int:
    """How many test processes ``-n auto`` starts: one per core, since the suite is CPU-bound (1.88 of 2
    cores busy on average, bench/suite_time.py), but no more than the memory holds at WORKER_MEMORY each."""
    return max(1, min(cores, memory // WORKER_MEMORY))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """pytest-xdist's hook for ``-n auto``: the cores this process may run on (a container's cpuset, not
    the host's count) and the machine's memory."""
    return xdist_workers(len(os.sched_getaffinity(0)), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files with the most slow tests first, the fast files last. The xdist workers take whole files
    in this order (``--dist loadfile --no-loadscope-reorder`` in pyproject; by default xdist reorders
    files by their number of tests, which put one-test slow files such as test_reuse last, run by one
    worker while the other had nothing left to do). With the long files first, the many short tests
    even the workers out at the end. A stable sort: the same order in every worker."""
    slow_in_file = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, -slow_in_file[item.path]))
