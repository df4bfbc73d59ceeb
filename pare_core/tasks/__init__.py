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
