"""cluster.yaml's node types under Ray's own autoscaler, on one machine: the fake multi-node provider.

``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=...`` runs Ray's real autoscaler (the
monitor process) with ``FakeMultiNodeProvider``, the provider Ray's autoscaler tests use: "launching a
node" starts another raylet on this machine, with the node type's resources. The config keeps
cluster.yaml's node types, their resources and min/max workers, scaled down to a 2-core machine
(:func:`autoscaling_config`). It names the provider by module (``type: external``) rather than
``type: fake_multinode``, which makes Ray read a defaults file the pip wheel does not ship
(``fake_multi_node/example.yaml``); the provider class is the same.

Everything listens on 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), in a temp dir of its own;
:meth:`FakeCluster.stop` ends exactly the processes whose command line names that dir (never a global
``ray stop``, which would also end other Ray instances on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil
import ray
import yaml
from sweep_results import wait_for

ROOT = Path(__file__).resolve().parents[1]
PROVIDER = "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider"
FAKE_HEAD_TYPE = "ray.head.default"  # the provider tags its head node with this type name
MAX_WORKERS = 2  # fake workers at once: each is a raylet plus trials, on the same 2 cores
OBJECT_STORE = 80 * 1024**2
IDLE_MINUTES = 0.1  # cluster.yaml's 10 minutes, shortened so a test sees idle workers released
# How often the autoscaler looks (Ray's test value), how long a silent node counts as alive, and no
# autoscaler event lines in the sweep drivers' output.
CLUSTER_ENV = {
    "RAY_FAKE_CLUSTER": "1",
    "AUTOSCALER_UPDATE_INTERVAL_S": "1",
    "AUTOSCALER_HEARTBEAT_TIMEOUT_S": "10",
    "RAY_SCHEDULER_EVENTS": "0",
}


def autoscaling_config(cluster: dict[str, Any], gcs_address: str) -> dict[str, Any]:
    """cluster.yaml (parsed) -> the fake provider's config: the same head and worker node types, each
    worker type's CPUs capped at 1 and its max_workers at :data:`MAX_WORKERS` (GPUs and custom resources
    as in cluster.yaml); idle timeout :data:`IDLE_MINUTES`. Cloud-only settings (instances, docker, file
    mounts, setup) have no meaning for fake nodes and are left out."""
    types = cluster["available_node_types"]
    head = types[cluster["head_node_type"]]
    workers = {
        name: {
            "resources": {**t["resources"], "CPU": min(t["resources"]["CPU"], 1), "object_store_memory": OBJECT_STORE},
            "node_config": {},
            "min_workers": t.get("min_workers", 0),
            "max_workers": min(t["max_workers"], MAX_WORKERS),
        }
        for name, t in types.items()
        if name != cluster["head_node_type"]
    }
    return {
        "cluster_name": cluster["cluster_name"],
        "max_workers": min(cluster["max_workers"], MAX_WORKERS),
        "upscaling_speed": cluster["upscaling_speed"],
        "idle_timeout_minutes": IDLE_MINUTES,
        "provider": {
            "type": "external",
            "module": PROVIDER,
            "gcs_address": gcs_address,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            FAKE_HEAD_TYPE: {"resources": head["resources"], "node_config": {}, "max_workers": 0},
            **workers,
        },
        "head_node_type": FAKE_HEAD_TYPE,
        "auth": {},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class FakeCluster:
    """A fake autoscaling cluster from cluster.yaml; the test process is connected to it (``ray.init``)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rayfk", dir="/tmp"))  # short: Unix socket paths live under it
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        self.spec = yaml.safe_load((ROOT / "cluster.yaml").read_text())
        self.config = autoscaling_config(self.spec, self.address)
        (self.dir / "autoscaling.yaml").write_text(yaml.safe_dump(self.config))
        head = self.spec["available_node_types"][self.spec["head_node_type"]]["resources"]
        self.env = {**os.environ, **CLUSTER_ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        started = subprocess.run(
            [
                str(Path(sys.executable).parent / "ray"),
                "start",
                "--head",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                f"--temp-dir={self.dir}",
                f"--num-cpus={head.get('CPU', 0)}",
                f"--num-gpus={head.get('GPU', 0)}",
                f"--object-store-memory={OBJECT_STORE}",
                f"--autoscaling-config={self.dir / 'autoscaling.yaml'}",
                "--include-dashboard=false",
                "--disable-usage-stats",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if started.returncode:
            self.stop()
            raise RuntimeError(f"ray start --head failed: {started.stdout[-2000:]}{started.stderr[-2000:]}")
        ray.init(address=self.address, log_to_driver=False)  # to watch it; its nodes' logs stay in their files

    def gpu_nodes(self) -> dict[str, float]:
        """node id -> GPUs, of the alive nodes that have GPUs (the workers the autoscaler launched)."""
        return {n["NodeID"]: n["Resources"]["GPU"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")}

    def pending_demand(self) -> int:
        """How many placement groups the autoscaler reports as waiting for resources."""
        status = ray.experimental.internal_kv._internal_kv_get("__autoscaling_status")
        report = json.loads(status or "{}").get("load_metrics_report", {})
        return sum(count for _, count in report.get("pg_demand") or [])

    def sweep(self, *argv: str) -> subprocess.Popen:
        """Start a sweep driver on the cluster as ``ray up`` users do (``--address auto``, the address
        from ``RAY_ADDRESS`` as on a head node); in its own process group, so it can be killed whole."""
        return subprocess.Popen(
            [sys.executable, "-m", "sweeps", *argv, "--address", "auto"],
            cwd=ROOT,
            env={**self.env, "RAY_ADDRESS": self.address},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def kill_node(self, node_id: str) -> None:
        """Spot reclaim: the node's raylet and everything under it die at once (SIGKILL)."""
        raylet = next(
            p for p in self._processes() if p.name() == "raylet" and any(node_id in arg for arg in p.cmdline())
        )
        for proc in [*raylet.children(recursive=True), raylet]:
            proc.send_signal(signal.SIGKILL)

    def wait_idle(self, timeout: float) -> None:
        wait_for(lambda: not self.gpu_nodes(), timeout, "idle GPU workers to be released")

    def stop(self) -> None:
        ray.shutdown()
        procs = self._processes()
        for proc in procs:
            proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=5)
        for proc in alive:
            proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _processes(self) -> list[psutil.Process]:
        """This cluster's processes: every one whose command line names its temp dir or its GCS port."""
        out = []
        for proc in psutil.process_iter(["cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if proc.pid != os.getpid() and (str(self.dir) in line or self.address in line):
                out.append(proc)
        return out
