"""The test harness itself: how many pytest-xdist workers ``-n auto`` starts (tests/conftest.py)."""

import os

from conftest import WORKER_MEMORY, pytest_xdist_auto_num_workers, xdist_workers


def test_one_worker_per_core_as_far_as_memory_holds():
    assert xdist_workers(2, 23 * 1024**3) == 2  # this project's 2-CPU VM
    assert xdist_workers(8, 16 * 1024**3) == 16 * 1024**3 // WORKER_MEMORY == 4  # a laptop: memory decides
    assert xdist_workers(4, 2 * 1024**3) == 1  # never none


def test_auto_counts_the_cores_this_process_may_use(pytestconfig):
    assert 1 <= pytest_xdist_auto_num_workers(pytestconfig) <= len(os.sched_getaffinity(0))
