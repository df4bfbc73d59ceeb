"""Tasks by name (``pare_core.registry.TASKS``): ``task_spec`` (cheap) and ``load_task`` (the data).

Importing this package imports no data library and no torch, so config validation can list task names
in milliseconds. A loader module imports only numpy at import time; its data libraries are imported
when it loads. Every loader carries its ``TaskSpec`` as ``loader.spec`` (``common.task``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pare_core.registry import TASKS, resolve

if TYPE_CHECKING:
    from pare_core.config import TaskConfig
    from pare_core.tasks.base import TaskData, TaskSpec


def _loader(name: str) -> Callable:
    return resolve(TASKS, "task.name", name)


def task_spec(name: str) -> "TaskSpec":
    """The task's spec (shapes, loss, metric, what it stands in for) without loading its data."""
    return _loader(name).spec


def load_task(cfg: "TaskConfig", seed: int) -> "TaskData":
    """The task's splits: test fixed, train pool capped at ``cfg.n_train``, val carved with ``seed``."""
    return _loader(cfg.name)(cfg, seed)


__all__ = ["TASKS", "load_task", "task_spec"]
