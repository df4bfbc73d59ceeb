"""What a trial is, and what produced a results folder.

A trial's **key** is a content hash of what decides its result: its resolved flat config (AUTO values
resolved, keys with no effect dropped, so two spellings of one run share a key), the code version
and the data version. Two trials with one key compute the same thing, so a finished one can stand in
for the other (``sweeps.reuse``); a different commit, or uncommitted edits to the training code,
give a different key, so results of different code are never mixed silently.

**Provenance** is what a reader needs to trust a table months later: commit, uncommitted changes,
package versions, the spec, the command, the host and the device. ``sweep.json`` records it; the tables
and figures analysis writes carry the trials' code version(s) in a footer (``analysis.provenance``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from pare_core.config import EXECUTION_KEYS, TrialConfig, inert_keys, resolve
from pare_core.formatting import MISSING
from pare_core.tasks import task_spec
from pare_core.tasks.common import CACHE_VERSION

TRIAL_KEY = "trial_key"  # the entry of a trial's params.json that holds its key ...
CODE_KEY = "code_version"  # ... and the code version it ran (what provenance footers count)
ARM_KEY = "arm"  # ... and its arm's name, as the spec names it (not part of the key: a rename changes no run)
# A fused trial (sweeps.fused) trains several seeds: their list ("0,1,2") and each seed's own key, in order.
SEEDS_KEY = "seeds"
SEED_KEYS_KEY = "seed_trial_keys"
SWEEP_FILE = "sweep.json"  # in the experiment folder: the resolved sweep a launch ran (``--resume`` reads it)
IDENTITY_KEYS = (TRIAL_KEY, CODE_KEY, ARM_KEY, SEEDS_KEY, SEED_KEYS_KEY)  # params.json entries not in TrialConfig
REPO = Path(__file__).resolve().parents[1]
# What the training code is: the science, the sweep plumbing that runs it, and the pinned dependencies.
# Specs (sweeps/configs) are not code: their effect is the resolved config, already in the key.
CODE_PATHS = ("pare_core", "sweeps", "pyproject.toml", ":(exclude)sweeps/configs")
PACKAGES = ("torch", "ray", "transformers", "timm", "optuna", "numpy")


def _git(repo: Path, *args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


@functools.lru_cache(maxsize=4)
def code_version(repo: Path = REPO) -> dict[str, Any]:
    """``{"commit", "dirty", "diff_hash", "version"}`` of the checkout at ``repo`` (default: the one
    this process runs; computed once per process).

    ``diff_hash`` covers uncommitted changes to the training code and its untracked new files;
    ``version`` is what trial keys use: the commit, plus the diff hash when the tree is dirty.
    Outside a git checkout the commit is ``unknown`` and the hash covers the source files themselves.
    """
    commit = (_git(repo, "rev-parse", "HEAD") or "").strip()
    digest = hashlib.sha256()
    if commit:
        digest.update((_git(repo, "diff", "HEAD", "--binary", "--", *CODE_PATHS) or "").encode())
        for name in (_git(repo, "ls-files", "--others", "--exclude-standard", "--", *CODE_PATHS) or "").split():
            digest.update(name.encode() + (repo / name).read_bytes())
        dirty = digest.hexdigest() != hashlib.sha256().hexdigest()
    else:
        commit, dirty = "unknown", True
        for path in sorted(p for d in ("pare_core", "sweeps") for p in (repo / d).rglob("*.py")):
            digest.update(str(path.relative_to(repo)).encode() + path.read_bytes())
    diff_hash = digest.hexdigest()[:12] if dirty else ""
    return {
        "commit": commit,
        "dirty": dirty,
        "diff_hash": diff_hash,
        "version": commit[:12] + (f"+{diff_hash}" if dirty else ""),
    }


def canonical_config(flat: dict[str, Any]) -> dict[str, Any]:
    """The config that decides the result: AUTO resolved for the trial's task, then the keys with no
    effect (``gate.threshold`` under ``selection=topk``) and execution-only keys dropped."""
    spec = task_spec(flat["task.name"])
    cfg = TrialConfig.from_flat(config_only(flat))
    resolved = resolve(cfg, spec.kind, spec.layout).to_flat()
    drop = inert_keys(resolved) | set(EXECUTION_KEYS)
    return {k: v for k, v in sorted(resolved.items()) if k not in drop}


def config_only(flat: dict[str, Any]) -> dict[str, Any]:
    """A trial's params without its identity entries: what ``TrialConfig.from_flat`` takes."""
    return {k: v for k, v in flat.items() if k not in IDENTITY_KEYS}


def arm_cells(flat: dict[str, Any], keys: Sequence[str]) -> list[Any]:
    """The trial's value of each of ``keys``, or "—" where the key has no effect on it
    (:func:`pare_core.config.inert_keys`: ``gate.threshold`` under ``selection=topk``, ``warm_frac`` under
    ``selection=none``). The key columns of every view of arms (the dry-run plan, summary.md, the analysis
    tables) show these cells, so no view reads a default as if the arm had chosen it."""
    inert = inert_keys(config_only(flat))
    return [MISSING if k in inert else flat.get(k) for k in keys]


def arm_name(flat: dict[str, Any], keys: Sequence[str]) -> str:
    """The trial's arm as the spec names it (``topk_preaudit``); a trial without a named arm (a tuning
    trial) by its values of ``keys`` that act on it (``gate.selection=topk``)."""
    name = flat.get(ARM_KEY)
    if name:
        return str(name)
    return " ".join(f"{k}={v}" for k, v in zip(keys, arm_cells(flat, keys)) if v is not MISSING)


def data_version(task: str) -> str:
    """The task's data: its name and the task cache's version (the loaders' own constants are code)."""
    return f"{task}@cache{CACHE_VERSION}"


def trial_key(flat: dict[str, Any], version: str | None = None) -> str:
    """The trial's content key (16 hex digits) under code ``version`` (default: this checkout's)."""
    payload = {
        "config": canonical_config(flat),
        "code": version or code_version()["version"],
        "data": data_version(flat["task.name"]),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def provenance(spec_file: str, command: str) -> dict[str, Any]:
    """What produced a launch: code, packages, spec, ``command`` (the command line that reruns it), host
    and device."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    spec = Path(spec_file)
    return {
        **{k: v for k, v in code_version().items() if k != "version"},
        "code_version": code_version()["version"],
        "python": platform.python_version(),
        "packages": versions,
        "spec_file": str(spec),
        "spec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest()[:16] if spec.is_file() else None,
        "command": command,
        "host": socket.gethostname(),
        "device": _device(),
    }


GPU_DRIVER_NODES = ("/dev/nvidiactl", "/dev/kfd")  # what NVIDIA's and AMD's (ROCm) kernel drivers create


def _device() -> str:
    """The driver's accelerator. torch (~1.5 CPU-s to import) is asked only where a GPU driver's device
    node exists: a CPU-only driver, a laptop's or a cluster's head, names its processor without it."""
    cpu = f"cpu: {platform.processor() or platform.machine()}"
    if not any(Path(node).exists() for node in GPU_DRIVER_NODES):
        return cpu
    try:
        import torch
    except ImportError:
        return cpu
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}"
    return cpu
