"""Everything a launch depends on, checked before Ray starts: each problem ends the launch in seconds
with one line (``sweeps.options.refuse``, exit 2) instead of a hang or a traceback once trials run.

Why each check exists (what happened without it):

- ``--address`` that nothing answers: ``ray.init`` retries the GCS for minutes (``127.0.0.1:1`` hung
  past 120 s). A TCP connect of :data:`CONNECT_TIMEOUT_S` tells a closed port or a dead host at once.
- ``--address`` of a cluster on another Ray (or Python) version: ``ray.init`` ends in a multi-line
  ``RuntimeError: Version mismatch`` traceback. The versions the cluster started with are in its GCS
  (the cluster metadata Ray's usage library stores); a port that accepts TCP but is no GCS (the
  dashboard's) made Ray's client wait 40 s, so the GCS is asked in a child process with a time limit.
- ``MLFLOW_TRACKING_URI=file://...``: MLflow 3 put the filesystem store in "maintenance mode" and its
  ``FileStore`` raises unless ``MLFLOW_ALLOW_FILE_STORE=true`` (mlflow/store/tracking/file_store.py),
  which surfaced as a traceback inside ``tuner.fit`` after Ray had started. An ``http(s)://`` server
  that does not answer its ``/health`` endpoint (MLflow's tracking server has one) would stall each trial.
- the experiment name becomes a folder under ``--storage-path``: a name with ``/`` or ``..`` would
  write outside it.
- trackers' packages and credentials (``sweeps.trackers.check``) and a storage path that cannot be
  written (``sweeps.storage.unwritable``) have their own homes; they are called from here.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import urlparse

from sweeps import storage, trackers
from sweeps.options import LaunchOptions
from sweeps.spec import Sweep

CONNECT_TIMEOUT_S = 3.0  # a reachable head or server answers a TCP connect well within this
MAX_NAME_CHARS = 200  # under the 255 bytes most filesystems allow for one folder name
RAY_PORT = 6379  # the GCS port ``ray start --head`` uses by default (an address given without one)
RAY_CLIENT_PORT = 10001  # the port of a ``ray://`` address given without one
GCS_ANSWER_S = 20  # the child that asks the GCS: importing Ray (~2 s) and one KV read, on a loaded machine
# The child: prints the cluster metadata ``ray._common.usage.usage_lib.put_cluster_metadata`` stored.
_READ_CLUSTER_METADATA = """
import sys
from ray._common.usage.usage_constants import CLUSTER_METADATA_KEY
from ray._private.ray_constants import KV_NAMESPACE_CLUSTER
from ray._raylet import GcsClient
found = GcsClient(address=sys.argv[1]).internal_kv_get(CLUSTER_METADATA_KEY, namespace=KV_NAMESPACE_CLUSTER)
sys.stdout.write(found.decode() if found else "{}")
"""


def problem(sweep: Sweep, options: LaunchOptions, storage_path: str, experiment: str) -> str | None:
    """The first thing this launch depends on that is not there (one line: the flag or variable, what
    was found, what to do), or None when everything answered. ``storage_path`` and ``experiment`` are
    the launch's resolved folders (``sweeps.driver.run`` derives them once)."""
    checks = (
        lambda: name_problem(sweep.name),
        lambda: address_problem(options.address),
        lambda: version_problem(options.address),
        lambda: _tracker_problem(options.trackers, experiment),
        lambda: storage.unwritable(storage_path),
    )
    for check in checks:
        found = check()
        if found:
            return found
    return None


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be the experiment's folder under ``--storage-path``: it must be one folder name."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return f"--name {name!r} must be a single folder name under --storage-path (no '/', '..' or empty name)"
    if len(name) > MAX_NAME_CHARS:
        return f"--name is {len(name)} characters long: give one of at most {MAX_NAME_CHARS}"
    return None


def address_problem(address: str | None) -> str | None:
    """Why the Ray cluster at ``--address`` cannot be joined: nothing accepts a TCP connection there.

    ``auto`` (and no address) is left to Ray, which reads ``RAY_ADDRESS`` or the local cluster file."""
    if address in (None, "auto", "local"):
        return None
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:  # no port given
        host, port = address.removeprefix("ray://"), str(RAY_CLIENT_PORT if client else RAY_PORT)
    if not port.isdigit() or not host:
        return f"--address {address!r} is malformed: give HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:10001 or auto"
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        return (
            f"--address {address}: no Ray cluster answers there ({reason}); start one with `ray start --head` "
            "or fix the address"
        )
    return None


def version_problem(address: str | None) -> str | None:
    """Why this process cannot join the Ray cluster whose GCS is at ``address``: it runs another Ray or
    Python version (Ray's own rule, ``ray._private.utils.check_version_info``), or no GCS answers there.
    Only for a GCS address that accepted a TCP connection (:func:`address_problem`); ``ray://`` (Ray
    Client checks versions itself) and ``auto`` are left to Ray."""
    if address in (None, "auto", "local") or address.startswith("ray://"):
        return None
    gcs = address if ":" in address else f"{address}:{RAY_PORT}"
    try:
        child = subprocess.run(
            [sys.executable, "-c", _READ_CLUSTER_METADATA, gcs], capture_output=True, text=True, timeout=GCS_ANSWER_S
        )
        metadata = json.loads(child.stdout) if child.returncode == 0 else None
    except (subprocess.TimeoutExpired, json.JSONDecodeError):
        metadata = None
    if metadata is None:
        return (
            f"--address {address} accepts connections but no Ray GCS answered within {GCS_ANSWER_S} s: give the "
            f"head's GCS port ({RAY_PORT} unless `ray start --head --port` chose another), not the dashboard's"
        )
    if "ray_version" not in metadata:  # a cluster that never stored its metadata: Ray decides
        return None
    import ray
    from ray._private.utils import check_version_info, compute_version_info

    try:
        check_version_info(metadata, "this machine")
    except RuntimeError:
        ours = compute_version_info()
        return (
            f"--address {address}: the cluster runs Ray {metadata['ray_version']} on Python "
            f"{metadata['python_version']}, this machine Ray {ray.__version__} on Python {ours[1]}: launch from "
            f"a machine with the cluster's versions (the head: `ray attach cluster.yaml`), or install "
            f"ray=={metadata['ray_version']} here"
        )
    return None


def _tracker_problem(names: list[str], experiment: str) -> str | None:
    try:
        trackers.check(names, experiment)
    except trackers.TrackerError as err:
        return str(err)
    return mlflow_problem(trackers.mlflow_uri(experiment)) if "mlflow" in names else None


def mlflow_problem(uri: str) -> str | None:
    """Why the installed MLflow cannot log to ``uri`` (``MLFLOW_TRACKING_URI``): a filesystem store it
    refuses, or a tracking server that does not answer."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE

    scheme = urlparse(uri).scheme
    file_store = scheme in ("", "file") or len(scheme) == 1  # a bare path (or a Windows drive letter)
    if file_store and int(mlflow.__version__.split(".")[0]) >= 3 and not MLFLOW_ALLOW_FILE_STORE.get():
        return (
            f"MLFLOW_TRACKING_URI={uri}: MLflow {mlflow.__version__} refuses the filesystem store (maintenance "
            "mode); use sqlite:///PATH/mlflow.db or a server (http://HOST:5000), or set MLFLOW_ALLOW_FILE_STORE=true"
        )
    if scheme in ("http", "https"):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_S).close()
        except (OSError, urllib.error.URLError) as err:
            reason = " ".join(str(getattr(err, "reason", err)).split()) or type(err).__name__
            return (
                f"MLFLOW_TRACKING_URI={uri}: the MLflow server does not answer ({reason}); start it "
                "(mlflow server) or fix the URI"
            )
    return None
