"""Where results live, and whether every node of the cluster can reach it.

Since Ray 2.7 each trial writes its checkpoints straight to ``storage_path`` from whatever node it
runs on (no syncing to the head). A folder on the head's own disk is therefore only usable when all
nodes share that disk: one machine (a laptop, or fake nodes of ``ray.cluster_utils.Cluster``) or a
network filesystem (NFS/EFS/Lustre... mounted at the same path everywhere). Anything else fails at
the first checkpoint, minutes into the sweep; we refuse it at launch instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.fs

# Filesystem types (from /proc/mounts) that are shared between machines.
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "glusterfs", "ceph", "gpfs", "beegfs", "efs", "9p")


def resolve(storage_path: str) -> str:
    """A URI (``s3://``, ``gs://``...) as given; a local path made absolute (Ray requires that)."""
    return storage_path if "://" in storage_path else str(Path(storage_path).expanduser().resolve())


def unwritable(storage_path: str) -> str | None:
    """Why results cannot be written under ``storage_path`` (one line), or None if they can.

    Tried for real, before Ray starts: a small file is written there and deleted. A folder that cannot
    be created (``/proc/x``), a missing bucket or wrong credentials then end the launch with this line
    instead of a traceback at the first checkpoint. S3 reads its endpoint, region and credentials from
    the standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...), as Ray's own storage does.
    """
    probe = join(storage_path, f".write-probe-{os.getpid()}")
    try:
        write_text(probe, "")
        fs, path = pyarrow.fs.FileSystem.from_uri(probe)
        fs.delete_file(path)
    except (OSError, ValueError, pyarrow.ArrowException) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        return f"--storage-path {storage_path} is not usable: {reason}"
    return None


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


def write_text(uri: str, text: str) -> None:
    """Write a small text file at a local path or URI; replaced atomically (readers never see half a file)."""
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    fs.create_dir(os.path.dirname(path), recursive=True)
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(text.encode())
    fs.move(tmp, path)


def download(uri: str) -> Path:
    """A local copy of the folder at ``uri`` (``s3://...``, ``gs://...``) for readers that need files on
    disk (analysis, figures), fetched through the same filesystems (and AWS variables) as the sweep wrote
    it; in a temporary folder, removed when the process exits."""
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.Directory:
        raise FileNotFoundError(f"{uri}: no such folder")
    local = Path(tempfile.mkdtemp(prefix="pare-results-")) / Path(path).name
    atexit.register(shutil.rmtree, local.parent, ignore_errors=True)
    pyarrow.fs.copy_files(path, str(local), source_filesystem=fs, destination_filesystem=pyarrow.fs.LocalFileSystem())
    return local


def read_text(uri: str) -> str | None:
    """The file's text, or None if it does not exist."""
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return f.readall().decode()
