"""What Ray Tune costs around the training: two ratios for the closing note and docs/sweeps.md.

1. The smoke gate ablation on local Ray: sweep wall time (Ray start, trials, shutdown) against the
   sum of the trials' own run times; ``wall / (sum / slots)`` is 1.0 for a free scheduler that keeps
   every CPU slot busy.
2. The same small GPU sweep on a fake cluster (``ray.cluster_utils.Cluster``) with 1 and then 3
   fake-GPU worker nodes: wall(1 node) / wall(3 nodes). On a 2-core machine the three "nodes"
   share 2 cores, so this measures scheduling and spreading, not real speed-up.

Not a test (nothing asserted); run by hand:  python bench/sweep_overhead.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ray.cluster_utils import Cluster  # noqa: E402

from sweeps.cli import main  # noqa: E402

CLUSTER_SPEC = {  # 6 short real fits, 1 fake GPU each
    "base": {
        "method": "finetune",
        "task.name": "digits",
        "train.epochs": 3,
        "train.steps_per_epoch": 5,
        "task.n_train": 120,
    },
    "grid": {"train.lr": [1e-3, 2e-3, 3e-3]},
    "seeds": [0, 1],
    "checkpoint_every": 3,
}


def trial_seconds(experiment: Path) -> list[float]:
    """Each trial's own run time (Tune's ``time_total_s`` at its last report)."""
    times = []
    for result in experiment.glob("*/result.json"):
        last = result.read_text().strip().splitlines()[-1]
        times.append(json.loads(last)["time_total_s"])
    return times


def timed(spec: str, argv: list[str]) -> float:
    start = time.perf_counter()
    rc = main(spec, argv=argv)
    if rc != 0:
        raise SystemExit(f"sweep {spec} failed with exit code {rc}")
    return time.perf_counter() - start


def smoke_ratio(root: Path) -> None:
    wall = timed("ablate_gate", ["--smoke-test", "--storage-path", str(root)])
    times = trial_seconds(root / "ablate_gate_smoke")
    slots = min(os.cpu_count() or 1, len(times))  # 1 CPU per trial
    print(
        f"smoke sweep: {len(times)} trials, wall {wall:.1f} s, sum of trial times {sum(times):.1f} s "
        f"(mean {sum(times) / len(times):.1f} s), {slots} parallel slots"
    )
    print(
        f"  overhead ratio wall / (sum / slots) = {wall / (sum(times) / slots):.2f}   "
        f"wall / sum = {wall / sum(times):.2f}"
    )


def cluster_wall(root: Path, workers: int) -> float:
    root.mkdir(parents=True)
    spec = root / f"nodes{workers}.yaml"
    spec.write_text(yaml.safe_dump(CLUSTER_SPEC))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0})
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=1, num_gpus=1)
        cluster.wait_for_nodes()
        return timed(
            str(spec),
            [
                "--address",
                cluster.address,
                "--storage-path",
                str(root),
                "--gpus-per-trial",
                "1",
                "--cpus-per-trial",
                "1",
            ],
        )
    finally:
        cluster.shutdown()


def main_bench() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        smoke_ratio(root / "smoke")
        one, three = cluster_wall(root / "c1", 1), cluster_wall(root / "c3", 3)
        print(
            f"fake cluster, 6 trials x 1 GPU: 1 node {one:.1f} s, 3 nodes {three:.1f} s, "
            f"ratio 1-node / 3-node = {one / three:.2f}  (machine has {os.cpu_count()} cores)"
        )


if __name__ == "__main__":
    main_bench()
