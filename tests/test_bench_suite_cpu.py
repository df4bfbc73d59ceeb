"""bench/suite_cpu.py (``bench/suite_time.py --where``): a child's CPU goes to the test that started it and to
its kind, and what ran before sampling started is not counted."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # bench/ runs its scripts by path
from suite_cpu import OUTSIDE, ProcessSampler, kind  # noqa: E402

BURN = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"


@pytest.mark.parametrize(
    ("command", "name", "expected"),
    [
        ("ray::ImplicitFunc.train", "ray::ImplicitFu", "Ray workers (trial processes)"),
        ("", "ray::ImplicitFu", "Ray workers (trial processes)"),  # Ray's retitled workers can show no command
        (
            "/venv/bin/python -u /venv/ray/_private/workers/default_worker.py --node-ip-address=127.0.0.1",
            "python",
            "Ray workers (trial processes)",
        ),
        (
            "/venv/ray/core/src/ray/gcs/gcs_server --log_dir=/tmp/ray",
            "gcs_server",
            "Ray services (GCS, raylet, agents, monitors)",
        ),
        ("ray::DashboardAgent", "ray::Dashboar", "Ray services (GCS, raylet, agents, monitors)"),
        ("/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus -quiet x.cpp", "cc1plus", "C++ compiler (inductor's kernels)"),
        ("/venv/bin/python -m sweeps kill.yaml --resume", "python", "sweep drivers"),
    ],
)
def test_processes_are_told_apart_by_their_command(command, name, expected):
    assert kind(command, name) == expected


def test_a_child_counts_for_the_test_that_started_it():
    sampler = ProcessSampler(root=os.getpid(), interval=0.1)
    sampler.start()
    env = {**os.environ, "PYTEST_CURRENT_TEST": "tests/test_example.py::test_burn (call)"}
    subprocess.run([sys.executable, "-c", BURN], env=env, check=True)
    sampler.stop()
    by_test = {test: seconds for test, seconds, _ in sampler.by("test")}
    assert 0.8 <= by_test["tests/test_example.py"] <= 1.5  # the 1 s it burned, sampled to its last tick
    assert OUTSIDE in {process.kind for process in sampler.seen.values()}  # the machine's other processes


def test_only_what_runs_after_start_counts():
    sampler = ProcessSampler(root=os.getpid())
    sampler.start()  # this process, and the machine's older ones, have spent CPU before: none of it counts
    sampler.stop()
    assert max(process.cpu_s for process in sampler.seen.values()) < 0.5
