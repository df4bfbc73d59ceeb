"""Task registry: name -> ``"module:loader"``; ``task_spec`` (cheap) and ``load_task`` (the data).

Importing this package imports no data library and no torch, so config validation can list task names
in milliseconds. A loader module imports only numpy at import time; its data libraries are imported
when it loads. Every loader carries its ``TaskSpec`` as ``loader.spec`` (``common.task``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pare_core.config import TaskConfig
    from pare_core.tasks.base import TaskData, TaskSpec

TASKS: dict[str, str] = {
    "digits": "pare_core.tasks.images:load_digits",
    "dna": "pare_core.tasks.statlog:load_dna",
    "fashion_mnist": "pare_core.tasks.images:load_fashion_mnist",
    "spherical": "pare_core.tasks.images:load_spherical",
    "darcy": "pare_core.tasks.darcy:load_darcy",
    "burgers": "pare_core.tasks.burgers:load_burgers",
    "cosmic": "pare_core.tasks.cosmic:load_cosmic",
    "ecg": "pare_core.tasks.series:load_ecg",
    "satellite": "pare_core.tasks.statlog:load_satellite",
    "motions": "pare_core.tasks.series:load_motions",
    "vowels": "pare_core.tasks.series:load_vowels",
    "spambase": "pare_core.tasks.tabular:load_spambase",
    "vehicle": "pare_core.tasks.tabular:load_vehicle",
    "wdbc": "pare_core.tasks.tabular:load_wdbc",
}


def _loader(name: str) -> Callable:
    if name not in TASKS:
        raise ValueError(f"task.name={name!r} is invalid: allowed values are {', '.join(TASKS)}")
    module, _, attr = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def task_spec(name: str) -> "TaskSpec":
    """The task's spec (shapes, loss, metric, what it stands in for) without loading its data."""
    return _loader(name).spec


def load_task(cfg: "TaskConfig", seed: int) -> "TaskData":
    """The task's splits: test fixed, train pool capped at ``cfg.n_train``, val carved with ``seed``."""
    return _loader(cfg.name)(cfg, seed)


__all__ = ["TASKS", "load_task", "task_spec"]
