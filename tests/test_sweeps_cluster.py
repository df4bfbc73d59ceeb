"""Multi-node scheduling on a fake cluster (``ray.cluster_utils.Cluster``: one machine, several raylets).

Worker nodes advertise ``num_gpus=1`` with no physical GPU: Ray's scheduler only does the accounting,
and ``fit`` (device ``auto``) falls back to the CPU. The head advertises no CPUs, like cluster.yaml's
head, so every trial lands on a worker. Results go to a folder in tmp_path, which all fake nodes
share (one host), so the runner's storage rule accepts it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import ray
from ray._common.usage.usage_constants import CLUSTER_METADATA_KEY
from ray._private.ray_constants import KV_NAMESPACE_CLUSTER
from ray._raylet import GcsClient
from ray.cluster_utils import Cluster
from sweep_results import TINY, interval, overlap, read_trials, running_with_checkpoint, wait_for, write_spec

from sweeps.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NODE = {"num_gpus": 1, "object_store_memory": 80 * 1024**2}


@pytest.fixture
def cluster():
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0, "object_store_memory": 80 * 1024**2}
    )
    yield c
    c.shutdown()


def add_workers(cluster: Cluster, n: int, cpus: int) -> set[str]:
    nodes = [cluster.add_node(num_cpus=cpus, **NODE) for _ in range(n)]
    cluster.wait_for_nodes()
    return {node.node_id for node in nodes}


def launch(cluster: Cluster, spec: Path, storage: Path, *flags: str) -> int:
    """The sweep of ``spec`` on ``cluster``, results under ``storage``: the exit code."""
    return main(str(spec), argv=["--address", cluster.address, "--storage-path", str(storage), *flags])


@contextlib.contextmanager
def cluster_started_with_ray(address: str, version: str) -> Iterator[None]:
    """The cluster's GCS says it was started with Ray ``version``: the record ``ray.init`` checks too."""
    gcs = GcsClient(address=address)
    saved = gcs.internal_kv_get(CLUSTER_METADATA_KEY, namespace=KV_NAMESPACE_CLUSTER)
    other = json.dumps({**json.loads(saved), "ray_version": version}).encode()
    gcs.internal_kv_put(CLUSTER_METADATA_KEY, other, True, namespace=KV_NAMESPACE_CLUSTER)
    try:
        yield
    finally:
        gcs.internal_kv_put(CLUSTER_METADATA_KEY, saved, True, namespace=KV_NAMESPACE_CLUSTER)


def by_node(trials) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list] = {}
    for t in trials:
        assert len({row["node_id"] for row in t["rows"]}) == 1  # no retries here: one node per trial
        out.setdefault(t["rows"][0]["node_id"], []).append(interval(t["rows"]))
    return out


def test_trials_spread_over_all_gpu_nodes(cluster, tmp_path):
    workers = add_workers(cluster, 3, cpus=1)
    spec = write_spec(tmp_path / "spread.yaml", grid={"train.lr": [1e-3, 2e-3, 3e-3]}, seeds=[0])
    assert launch(cluster, spec, tmp_path / "res", "--gpus-per-trial", "1", "--cpus-per-trial", "1") == 0
    trials = read_trials(tmp_path / "res" / "spread")
    assert len(trials) == 3 and all(t["rows"][-1]["epoch"] == 3 for t in trials)
    nodes = by_node(trials)
    assert set(nodes) == workers  # one trial per GPU node, at the same time; the CPU-less head ran none
    assert all(overlap(a, b) > 2.0 for a, b in itertools.combinations([s for v in nodes.values() for s in v], 2))


def test_half_gpu_trials_share_a_node(cluster, tmp_path):
    workers = add_workers(cluster, 2, cpus=2)
    spec = write_spec(tmp_path / "half.yaml", grid={"train.lr": [1e-3, 2e-3]}, seeds=[0, 1])
    assert launch(cluster, spec, tmp_path / "res", "--gpus-per-trial", "0.5", "--cpus-per-trial", "1") == 0
    nodes = by_node(read_trials(tmp_path / "res" / "half"))
    assert set(nodes) == workers and all(len(spans) == 2 for spans in nodes.values())
    for a, b in nodes.values():  # the two trials on a node held half its GPU each, at the same time
        assert overlap(a, b) > 2.0


def test_each_arm_gets_its_own_resources(cluster, tmp_path, capsys):
    add_workers(cluster, 1, cpus=2)
    spec = write_spec(
        tmp_path / "arms.yaml",
        seeds=[0, 1],
        arms=[{"train.lr": 1e-3, "resources": {"gpu": 1}}, {"train.lr": 2e-3, "resources": {"gpu": 0.5}}],
    )
    with cluster_started_with_ray(cluster.address, "2.9.3"):  # a cluster on another Ray: refused before Ray
        assert launch(cluster, spec, tmp_path / "res") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --address {cluster.address}: the cluster runs Ray 2.9.3")
    assert f"this machine Ray {ray.__version__}" in err and not ray.is_initialized()
    assert launch(cluster, spec, tmp_path / "res") == 0  # the same cluster on our version
    trials = read_trials(tmp_path / "res" / "arms")
    whole, half = ([interval(t["rows"]) for t in trials if t["config"]["train.lr"] == lr] for lr in (1e-3, 2e-3))
    assert len(whole) == len(half) == 2
    assert overlap(*half) > 2.0  # the half-GPU arm's two trials shared the node's one GPU ...
    for a in whole:  # ... and each whole-GPU trial had it alone (interval ends are whole seconds: +-1 s)
        assert all(overlap(a, b) <= 1.0 for b in [*whole, *half] if b is not a)


def test_worker_node_removed_mid_sweep_loses_no_trial(cluster, tmp_path):
    add_workers(cluster, 2, cpus=1)
    spec = write_spec(
        tmp_path / "lose.yaml", grid={"train.lr": [1e-3, 2e-3]}, seeds=[0, 1], base={**TINY["base"], "train.epochs": 6}
    )
    experiment = tmp_path / "res" / "lose"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeps",
            str(spec),
            "--address",
            cluster.address,
            "--storage-path",
            str(tmp_path / "res"),
            "--gpus-per-trial",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        victim = wait_for(lambda: running_with_checkpoint(experiment), 180, "a running trial with a checkpoint")
        node_id = victim["rows"][-1]["node_id"]
        cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == node_id))
        out, _ = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, out[-5000:]
    trials = read_trials(experiment)
    assert len(trials) == 4
    for t in trials:
        assert [row["epoch"] for row in t["rows"]] == [1, 2, 3, 4, 5, 6]  # finished, resumed without repeats
    moved = next(t for t in trials if t["dir"] == victim["dir"])
    assert moved["rows"][-1]["node_id"] != node_id  # finished elsewhere, from its checkpoint
    # Whole-GPU trials reuse processes: the surviving node's GPU ran trial after trial in one process
    # (a fresh process per trial, and per retry, would give at least 5 for 4 trials and 1 resume).
    assert len({row["pid"] for t in trials for row in t["rows"]}) < len(trials)
    assert "4 trials: 4 done, 0 failed" in (experiment / "summary.md").read_text()
