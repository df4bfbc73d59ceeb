"""Where results live, and whether every node of the cluster can reach it.

Since Ray 2.7 each trial writes its checkpoints straight to ``storage_path`` from whatever node it
runs on (no syncing to the head). A folder on the head's own disk is therefore only usable when all
nodes share that disk: one machine (a laptop, or fake nodes of ``ray.cluster_utils.Cluster``) or a
network filesystem (NFS/EFS/Lustre... mounted at the same path everywhere). Anything else fails at
the first checkpoint, minutes into the sweep; we refuse it at launch instead.

An object store that stops answering for a while (a network blip, a restarting endpoint) must not end
trials: every read and write of a running sweep goes through :func:`filesystem`, whose S3 client keeps
retrying for about 100 s (:data:`S3_TRIES`; tests/test_sweeps_s3.py cuts S3 off for 20 s mid-sweep).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs

# Filesystem types (from /proc/mounts) that are shared between machines.
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "glusterfs", "ceph", "gpfs", "beegfs", "efs", "9p")

# pyarrow's S3 client gives up after 3 tries, within a second: an S3 endpoint that was unreachable for
# 20 s failed the checkpoint upload of every trial running then, and each retry of those trials failed
# again while it lasted. AWS's default strategy waits 25 ms * 2**n before try n+1: 12 tries span ~100 s.
S3_TRIES = 12


def resolve(storage_path: str) -> str:
    """A URI (``s3://``, ``gs://``...) as given; a local path made absolute (Ray requires that)."""
    return storage_path if "://" in storage_path else str(Path(storage_path).expanduser().resolve())


def experiment_dir(storage_path: str, name: str) -> str:
    """The folder of experiment ``name`` under ``--storage-path`` (a URI, or an absolute local path)."""
    return join(resolve(storage_path), name)


def unwritable(storage_path: str) -> str | None:
    """Why results cannot be written under ``storage_path`` (one line), or None if they can.

    Tried for real, before Ray starts: a small file is written there and deleted, with the local folders
    the write created. A folder that cannot be created (``/proc/x``), a missing bucket or wrong
    credentials then end the launch with this line instead of a traceback at the first checkpoint. S3 reads its endpoint, region and credentials from
    the standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...), as Ray's own storage does.
    """
    probe = join(storage_path, f".write-probe-{os.getpid()}")
    created = None if "://" in storage_path else _topmost_missing(Path(storage_path))
    try:  # pyarrow's own impatient client: a dead endpoint is told in a second, not in 100 s
        fs, path = pyarrow.fs.FileSystem.from_uri(probe)
        _write(fs, path, "")
        fs.delete_file(path)
    except (OSError, ValueError, pyarrow.ArrowException) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        return f"--storage-path {storage_path} is not usable: {reason}"
    finally:  # a dry run leaves no folder behind; rmdir only, so another launch's files stay
        folder = Path(storage_path)
        while created is not None and folder != created.parent:
            try:
                folder.rmdir()
            except OSError:  # not empty (another launch writes there now) or never made
                break
            folder = folder.parent
    return None


def _topmost_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None if ``path`` exists)."""
    top = None
    while not path.exists() and path != path.parent:
        top, path = path, path.parent
    return top


def storage_problem(storage_path: str, node_hosts: set[str], mounts: str) -> str | None:
    """Why ``storage_path`` cannot serve a cluster whose nodes run on ``node_hosts``; None if it can.

    ``mounts`` is the text of /proc/mounts (passed in so the rule can be tested with any table).
    """
    if "://" in storage_path or len(node_hosts) <= 1:
        return None
    fstype = _fstype(storage_path, mounts)
    if fstype in NETWORK_FS or fstype.startswith("fuse."):
        return None
    return (
        f"--storage-path {storage_path} is a local folder ({fstype or 'unknown'} filesystem) on this machine, but "
        f"the Ray cluster has nodes on {len(node_hosts)} hosts ({', '.join(sorted(node_hosts))}): trials on other "
        "nodes could not write checkpoints there. Use shared storage reachable from every node: "
        "--storage-path s3://BUCKET/pare (or gs://...), or a folder on NFS/EFS mounted at the same path on "
        "every node (see cluster.yaml)."
    )


def _fstype(path: str, mounts: str) -> str:
    """The filesystem type of the longest mount point containing ``path``."""
    best, fstype = "", ""
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            point = parts[1].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fstype = point, parts[2]
    return fstype


def read_mounts() -> str:
    try:
        return Path("/proc/mounts").read_text()
    except OSError:  # not Linux: no table, so only URIs or single-host clusters pass
        return ""


def join(base: str, *parts: str) -> str:
    """Join a URI or local path without mangling ``s3://`` (``os.path.join`` would be fine locally only)."""
    return "/".join([base.rstrip("/"), *parts])


class PatientS3FileSystem(pyarrow.fs.S3FileSystem):
    """pyarrow's S3 filesystem, retrying :data:`S3_TRIES` times. pyarrow pickles an S3 filesystem without
    its retry strategy, and Ray pickles the sweep's filesystem to every trial; this one is rebuilt with it."""

    def __init__(self, options: dict[str, Any]):
        super().__init__(**options, retry_strategy=pyarrow.fs.AwsDefaultS3RetryStrategy(max_attempts=S3_TRIES))

    def __reduce__(self) -> tuple:
        return PatientS3FileSystem, (super().__reduce__()[1][0],)


def filesystem(uri: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The filesystem and path of a local path or URI, as pyarrow resolves them (region, endpoint and
    credentials from the URI and the AWS variables), an S3 one made patient (:class:`PatientS3FileSystem`)."""
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    if isinstance(fs, pyarrow.fs.S3FileSystem):
        fs = PatientS3FileSystem(fs.__reduce__()[1][0])  # the options pyarrow resolved from the URI
    return fs, path


def write_text(uri: str, text: str) -> None:
    """Write a small text file at a local path or URI; replaced atomically (readers never see half a file)."""
    _write(*filesystem(uri), text)


def _write(fs: pyarrow.fs.FileSystem, path: str, text: str) -> None:
    fs.create_dir(os.path.dirname(path), recursive=True)
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(text.encode())
    fs.move(tmp, path)


def download(uri: str) -> Path:
    """A local copy of the folder at ``uri`` (``s3://...``, ``gs://...``) for readers that need files on
    disk (analysis, figures), fetched through the same filesystems (and AWS variables) as the sweep wrote
    it; in a temporary folder, removed when the process exits."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.Directory:
        raise FileNotFoundError(f"{uri}: no such folder")
    local = Path(tempfile.mkdtemp(prefix="pare-results-")) / Path(path).name
    atexit.register(shutil.rmtree, local.parent, ignore_errors=True)
    pyarrow.fs.copy_files(path, str(local), source_filesystem=fs, destination_filesystem=pyarrow.fs.LocalFileSystem())
    return local


def read_text(uri: str) -> str | None:
    """The file's text, or None if it does not exist."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return f.readall().decode()


LOCK_FILE = ".launch.lock"


class LaunchLocked(RuntimeError):
    """Another launch is writing to the same experiment folder."""


class LaunchLock:
    """One launch at a time per experiment folder on local storage, so two sweeps started at once under
    one name cannot interleave their files. A lock left by a dead process on this host is taken over.
    Object stores have no atomic create-if-absent here, so URIs are not locked (docs/sweeps.md)."""

    def __init__(self, experiment: str):
        self.path = None if "://" in experiment else os.path.join(experiment, LOCK_FILE)

    def __enter__(self) -> "LaunchLock":
        if self.path is None:
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        owner = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if not self._stale():
                    raise LaunchLocked(
                        f"another launch holds {self.path} ({self._owner()}): wait for it to end, or use --name NEW"
                    ) from None
                os.unlink(self.path)
                continue
            with os.fdopen(fd, "w") as out:
                out.write(owner)
            return self
        raise LaunchLocked(f"could not take {self.path}")

    def __exit__(self, *exc: Any) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def _owner(self) -> str:
        try:
            with open(self.path) as f:
                return f.read().strip()
        except OSError:
            return "unknown"

    def _stale(self) -> bool:
        host, _, pid = self._owner().partition(" ")
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
