"""Where cached data lives, and the one way to write a cache file.

Tasks, baselines, source corpora, label embeddings and converted weights are computed once and kept
under ``$PARE_DATA`` (default ``~/.cache/pare``). Trials of a sweep run at the same time and may all
miss the cache at once, so every cache file is written to a temporary name in its folder and renamed
into place: readers see the old file, no file, or the whole new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

DEFAULT_ROOT = "~/.cache/pare"


def data_root() -> Path:
    """``$PARE_DATA`` (``~`` expanded; unset or empty: ``~/.cache/pare``)."""
    return Path(os.environ.get("PARE_DATA") or DEFAULT_ROOT).expanduser()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers such as ``np.savez`` keep the
    name) to write to; on success it replaces ``path`` atomically and is readable by all, as a shared
    cache should be; on failure it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays, stored once at ``path`` (``.npz``, written through ``atomic_path``) and read
    from there from then on: ``path``'s name must say everything the arrays depend on."""
    if path.exists():
        with np.load(path) as stored:
            return {k: stored[k] for k in stored.files}
    arrays = build()
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return arrays
