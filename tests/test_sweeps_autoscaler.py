"""cluster.yaml under Ray's own autoscaler (fake multi-node provider, see tests/fake_cluster.py).

One cluster for the module: a CPU-only head and no worker, as ``ray up cluster.yaml`` leaves it. Sweeps
run as on the head node (``--address auto``); the test process watches the cluster. Each test starts
from no GPU worker, so each also checks that the previous one's workers were released when idle.
Timings are printed (``pytest -s``): first pending trial -> first worker joined, sweep wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import ray
from fake_cluster import MAX_WORKERS, FakeCluster
from sweep_results import TINY, read_trials, running_with_checkpoint, wait_for, write_spec

from sweeps.options import Overrides
from sweeps.spec import build

pytestmark = pytest.mark.slow
GRID_PENDING_CAP = 200  # Tune's pending-trial cap for a grid in Ray 2.60 (tune_controller._get_max_pending_trials)


@pytest.fixture(scope="module")
def fake():
    cluster = FakeCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def idle(fake):
    """The cluster with no GPU worker (the previous test's released), as ``ray up`` starts it."""
    fake.wait_idle(120)
    return fake


def stop(driver: subprocess.Popen) -> None:
    """Kill a sweep driver still running (after a failed wait), with everything it started."""
    if driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


def test_workers_join_as_trials_ask_for_gpus_and_leave_when_idle(idle, tmp_path):
    head = [n for n in ray.nodes() if n["Alive"]]
    assert len(head) == 1 and not head[0]["Resources"].get("CPU") and not idle.gpu_nodes()  # CPU: 0 head only
    start = time.monotonic()
    driver = idle.sweep("ablate_gate", "--smoke-test", "--gpus-per-trial", "1", "--storage-path", str(tmp_path))
    pending_at = joined_at = None
    workers: set[str] = set()
    try:
        while driver.poll() is None and time.monotonic() - start < 480:
            if pending_at is None and any(pg["state"] == "PENDING" for pg in ray.util.placement_group_table().values()):
                pending_at = time.monotonic()
            nodes = idle.gpu_nodes()
            if nodes and joined_at is None:
                joined_at = time.monotonic()
            workers |= set(nodes)
            time.sleep(0.25)
        out = driver.communicate(timeout=30)[0]
    finally:
        stop(driver)
    wall = time.monotonic() - start
    assert driver.returncode == 0, out[-5000:]
    assert pending_at is not None and joined_at is not None and pending_at < joined_at  # demand first, then nodes
    assert 1 <= len(workers) <= MAX_WORKERS
    sweep = build("ablate_gate", Overrides(smoke_test=True))
    trials = read_trials(tmp_path / sweep.name)
    assert len(trials) == sweep.n_trials and all(t["rows"][-1]["epoch"] == sweep.base["train.epochs"] for t in trials)
    assert {row["node_id"] for t in trials for row in t["rows"]} <= workers  # trials ran on launched workers only
    idle_from = time.monotonic()
    idle.wait_idle(120)
    print(
        f"\nfake cluster: first pending trial -> first GPU worker joined {joined_at - pending_at:.1f} s; "
        f"gate smoke sweep ({sweep.n_trials} trials, {len(workers)} workers) {wall:.0f} s wall; "
        f"idle workers released {time.monotonic() - idle_from:.0f} s after the sweep"
    )


def test_spot_reclaim_mid_sweep_resumes_on_a_replacement_node(idle, tmp_path):
    # Two trials sharing one GPU worker (half a GPU and half a CPU each): the reclaim takes both, so both
    # can only finish on a worker the autoscaler launches to replace it.
    spec = write_spec(
        tmp_path / "reclaim.yaml",
        arms=[{"train.lr": 1e-3}, {"train.lr": 2e-3}],
        seeds=[0],
        base={**TINY["base"], "train.epochs": 6},
    )
    experiment = tmp_path / "res" / "reclaim"
    driver = idle.sweep(
        str(spec), "--gpus-per-trial", "0.5", "--cpus-per-trial", "0.5", "--storage-path", str(tmp_path / "res")
    )
    try:
        victim = wait_for(
            lambda: running_with_checkpoint(experiment, by_epoch=2), 300, "a running trial with a checkpoint"
        )
        reclaimed = victim["rows"][-1]["node_id"]
        assert set(idle.gpu_nodes()) == {reclaimed}  # one worker holds both trials
        idle.kill_node(reclaimed)
        out = driver.communicate(timeout=480)[0]
    finally:
        stop(driver)
    assert driver.returncode == 0, out[-5000:]
    trials = read_trials(experiment)
    assert len(trials) == 2
    for t in trials:  # nothing lost: every epoch reported once, from the checkpoint on after the reclaim
        assert [row["epoch"] for row in t["rows"]] == [1, 2, 3, 4, 5, 6]
        assert t["rows"][-1]["node_id"] != reclaimed  # finished on the replacement worker
    assert any(row["node_id"] == reclaimed for t in trials for row in t["rows"][:1])  # ... having started on it


def test_a_big_grid_shows_the_autoscaler_its_whole_demand(idle, tmp_path):
    # More one-GPU trials than Tune would keep pending by default: with --address the runner raises the
    # cap to the trial count, so the autoscaler is asked for a node per trial at once.
    spec = write_spec(tmp_path / "big.yaml", arms=[{}], seeds=list(range(GRID_PENDING_CAP + 10)))
    driver = idle.sweep(str(spec), "--gpus-per-trial", "1", "--storage-path", str(tmp_path))
    try:
        demand = wait_for(
            lambda: idle.pending_demand() > GRID_PENDING_CAP and idle.pending_demand(),
            240,
            f"the autoscaler to report more than {GRID_PENDING_CAP} pending trials",
        )
    finally:
        stop(driver)  # enough seen: the trials need not run
    assert GRID_PENDING_CAP < demand <= GRID_PENDING_CAP + 10
