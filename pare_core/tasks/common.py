"""What every loader shares: where data lives, the on-disk cache, and the seeded split protocol.

The split protocol (one place, so every task follows it):
- the **test split is fixed**: the official test set where one exists, otherwise drawn with a constant
  seed; it never depends on the run's seed;
- the **train pool** (``task.n_train`` samples, 0 = the task's default) comes from the rest, also
  drawn with a constant seed (generated tasks simply generate that many samples);
- ``task.max_test`` (0 = all) keeps a fixed subset of the test split, drawn with the constant seed and
  stratified for classification: quick runs (tests, smoke sweeps) that need not score thousands of
  samples. A capped test error is not the task's test error: compare it only with the same cap;
- the **validation split** is carved from the pool with the run's seed (stratified for
  classification), so paired runs of different methods with the same seed see the same split;
- inputs are **standardised with train statistics only** (per channel or per feature, as the task
  says); the statistics travel in ``TaskData.extras["standardise"]``.
Every sample carries an id (its row in the source data, or the key of its generator seed) in
``extras["ids"]``, so tests can check that no sample sits in two splits.

Every loader ends in ``assemble``, which takes the pool and the test split as one mapping
``x_pool, y_pool, ids_pool, x_test, y_test, ids_test``: the layout of the cache files that store an
official split. ``assemble_fixed`` first draws a fixed test split from one table; ``load_generated``
generates (and caches) both splits sample by sample from their own seeds.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from pare_core.cache import cached_arrays, data_root
from pare_core.tasks.base import TaskData, TaskSpec

if TYPE_CHECKING:
    from pare_core.config import TaskConfig

TEST_SEED = 2024  # the constant seed of every drawn (non-official) test split
POOL_SEED = 2025  # the constant seed of every train-pool draw
CACHE_VERSION = 1  # bump to invalidate every cached task file after a change of a generator
SPLIT_CODE = {"pool": 0, "test": 1}  # a generated sample's split, in its seed and in its id
SPLIT_ID_STRIDE = 10**6  # a generated sample's id: SPLIT_CODE * stride + its index in the split
XY_IDS = ("x", "y", "ids")  # the arrays of a split that ``assemble`` reads


class MissingDataError(RuntimeError):
    """A data package (Debian or PyPI) that a task reads is not installed."""


def task(spec: TaskSpec) -> Callable:
    """Attach ``spec`` to a loader, so ``task_spec(name)`` is known without loading any data."""

    def attach(loader: Callable) -> Callable:
        loader.spec = spec
        return loader

    return attach


# -- where data lives (the cache root: pare_core.cache) --------------------------------------------


def search_roots() -> list[Path]:
    """File-system roots searched for Debian package files.

    ``/`` (``apt-get install``) and ``$PARE_DATA/debian`` (``scripts/setup_data.sh`` without root:
    ``dpkg-deb -x``). ``$PARE_DEBIAN_ROOTS`` (``os.pathsep``-separated) replaces both.
    """
    override = os.environ.get("PARE_DEBIAN_ROOTS")
    if override is not None:
        return [Path(p) for p in override.split(os.pathsep) if p]
    return [Path("/"), data_root() / "debian"]


def debian_file(package: str, path: str, task_name: str) -> Path:
    """The first existing ``root/path`` over ``search_roots()``, or an error naming the package."""
    roots = search_roots()
    for root in roots:
        candidate = root / path.lstrip("/")
        if candidate.exists():
            return candidate
    raise MissingDataError(
        f"task {task_name!r} needs the Debian package {package} ({path} was not found under "
        f"{', '.join(str(r) for r in roots)}): install it with `sudo apt-get install {package}`, "
        f"or run scripts/setup_data.sh (without root it unpacks the package under $PARE_DATA/debian)"
    )


def python_module(module: str, pip_name: str, task_name: str) -> Any:
    """Import a data package, or raise an error naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDataError(
            f"task {task_name!r} needs the Python package {pip_name}: pip install {pip_name} ({exc})"
        ) from exc


def read_rda(path: Path, key: str) -> Any:
    """One object of an R ``.rda`` file (pandas DataFrame for data frames), via ``rdata``."""
    import warnings

    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII." for every factor column
        return rdata.read_rda(str(path))[key]


def cached(name: str, params: dict[str, Any], build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays, stored once as ``$PARE_DATA/tasks/<name>-<hash of params>.npz``.

    The write is atomic (``pare_core.cache.atomic_path``): concurrent trials that miss the cache at
    the same time each write a complete file and readers never see a partial one.
    """
    key = hashlib.sha1(json.dumps({**params, "cache_version": CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    return cached_arrays(data_root() / "tasks" / f"{name}-{key}.npz", build)


# -- splits ----------------------------------------------------------------------------------------


def stratified_pick(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` samples with class proportions as close to ``y``'s as integers allow.

    Largest-remainder quotas (ties broken at random), so it works where sklearn's stratified split
    refuses (fewer picks than classes, classes with a single sample).
    """
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    exact = n * counts / len(y)
    quota = np.floor(exact).astype(int)
    order = rng.permutation(len(classes))
    order = order[np.argsort(-(exact - quota)[order], kind="stable")]
    quota[order[: n - quota.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(inverse == c), q, replace=False) for c, q in enumerate(quota)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def uniform_pick(size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` of ``size`` samples, uniformly without replacement."""
    return np.sort(rng.choice(size, n, replace=False)).astype(np.int64)


def standardise(x_train: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training inputs over ``axes`` (constant features get std 1)."""
    mean = x_train.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = x_train.std(axis=axes, keepdims=True, dtype=np.float64)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def assemble(
    spec: TaskSpec, cfg: TaskConfig, seed: int, splits: Mapping[str, np.ndarray], *, default_n: int, stats: str
) -> TaskData:
    """Cap the pool, carve the validation split with ``seed``, standardise: the protocol above.

    ``splits`` holds ``x_pool, y_pool, ids_pool, x_test, y_test, ids_test`` (further keys are ignored);
    ``stats`` is ``"channel"`` or ``"feature"``.
    """
    n_train, val_frac = cfg.n_train, cfg.val_frac
    x_pool, y_pool, ids_pool = splits["x_pool"], splits["y_pool"], splits["ids_pool"]
    x_test, y_test, ids_test = splits["x_test"], splits["y_test"], splits["ids_test"]
    classification = spec.kind == "classification"
    if 0 < cfg.max_test < len(x_test):  # the same subset for every seed and arm (constant seed)
        rng = np.random.default_rng(TEST_SEED)
        keep = (
            stratified_pick(y_test, cfg.max_test, rng)
            if classification
            else uniform_pick(len(x_test), cfg.max_test, rng)
        )
        x_test, y_test, ids_test = x_test[keep], y_test[keep], ids_test[keep]
    n = n_train or default_n
    if n > len(x_pool):
        raise ValueError(
            f"task.n_train={n} is too large for task {spec.name!r}: at most {len(x_pool)} "
            f"training samples are available (the test split is fixed)"
        )
    if n < len(x_pool):
        rng = np.random.default_rng(POOL_SEED)
        keep = stratified_pick(y_pool, n, rng) if classification else uniform_pick(len(x_pool), n, rng)
        x_pool, y_pool, ids_pool = x_pool[keep], y_pool[keep], ids_pool[keep]
    n_val = int(round(val_frac * n))
    if not 1 <= n_val < n:
        raise ValueError(
            f"task.val_frac={val_frac} gives {n_val} validation samples out of {n} for task "
            f"{spec.name!r}: allowed values leave at least one sample in each of train and val"
        )
    rng = np.random.default_rng(seed)
    val = stratified_pick(y_pool, n_val, rng) if classification else uniform_pick(n, n_val, rng)
    is_val = np.zeros(n, bool)
    is_val[val] = True
    x_train, x_val = x_pool[~is_val], x_pool[is_val]
    axes = (0, *range(2, x_train.ndim)) if stats == "channel" else (0,)
    mean, std = standardise(x_train, axes)

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float32)

    return TaskData(
        spec=spec,
        x_train=scale(x_train),
        y_train=y_pool[~is_val],
        x_val=scale(x_val),
        y_val=y_pool[is_val],
        x_test=scale(x_test),
        y_test=y_test,
        extras={
            "ids": {"train": ids_pool[~is_val], "val": ids_pool[is_val], "test": ids_test},
            "standardise": {"mean": mean, "std": std, "stats": stats},
        },
    )


def fixed_test_split(y: np.ndarray, n_test: int) -> np.ndarray:
    """Boolean mask of a stratified test split drawn with the constant ``TEST_SEED``."""
    is_test = np.zeros(len(y), bool)
    is_test[stratified_pick(y, n_test, np.random.default_rng(TEST_SEED))] = True
    return is_test


def rows_split(x: np.ndarray, y: np.ndarray, is_test: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of one table as ``assemble``'s splits: the test split where ``is_test``, the pool elsewhere;
    ids are the rows."""
    ids = np.arange(len(y))
    pool, test = ~is_test, is_test
    return {
        "x_pool": x[pool],
        "y_pool": y[pool],
        "ids_pool": ids[pool],
        "x_test": x[test],
        "y_test": y[test],
        "ids_test": ids[test],
    }


def assemble_fixed(
    loader: Callable, cfg: TaskConfig, seed: int, x: np.ndarray, y: np.ndarray, n_test: int, default_n: int, stats: str
) -> TaskData:
    """One table without an official split: a constant-seed stratified test set of ``n_test`` rows,
    the train pool from the rest, then ``assemble``."""
    splits = rows_split(x, y, fixed_test_split(y, n_test))
    return assemble(loader.spec, cfg, seed, splits, default_n=default_n, stats=stats)


# -- generated tasks -------------------------------------------------------------------------------


def sample_rng(key: int, split: str, i: int) -> np.random.Generator:
    """The generator of sample ``i`` of ``split`` of the task seeded by ``key``.

    Each sample has its own seed, so the pool and the test split never share one, a larger pool
    extends a smaller one, and a sample does not depend on how many others are generated.
    """
    return np.random.default_rng([key, SPLIT_CODE[split], i])


def sample_ids(split: str, n: int) -> np.ndarray:
    """The ids of the first ``n`` generated samples of ``split``: pool ``0..n-1``, test ``10**6 + i``."""
    return SPLIT_CODE[split] * SPLIT_ID_STRIDE + np.arange(n)


def load_generated(
    loader: Callable,
    cfg: TaskConfig,
    seed: int,
    *,
    generate: Callable[[str, int], dict[str, np.ndarray]],
    params: dict[str, Any],
    pool_size: int,
    test_size: int,
) -> TaskData:
    """A generated task's splits: ``generate(split, n)`` for the pool (``task.n_train`` samples, default
    ``pool_size``) and the test split, each cached under ``params`` (every constant of the generator),
    then ``assemble``d with per-channel statistics (fields and signals).

    ``generate`` returns ``x``, ``y`` and ``ids`` (``sample_ids``); any further per-sample array (cosmic's
    crop positions) follows its samples into ``extras[name]["train" | "val" | "test"]``.
    """
    name, n = loader.spec.name, cfg.n_train or pool_size
    pool = cached(name, {**params, "split": "pool", "n": n}, lambda: generate("pool", n))
    test = cached(name, {**params, "split": "test", "n": test_size}, lambda: generate("test", test_size))
    splits = {f"{key}_{split}": arrays[key] for split, arrays in (("pool", pool), ("test", test)) for key in XY_IDS}
    data = assemble(loader.spec, cfg, seed, splits, default_n=pool_size, stats="channel")
    ids = data.extras["ids"]
    for key in sorted(pool.keys() - set(XY_IDS)):
        data.extras[key] = {
            part: source[key][np.searchsorted(source["ids"], ids[part])]  # task.max_test may keep a subset
            for part, source in (("train", pool), ("val", pool), ("test", test))
        }
    return data
