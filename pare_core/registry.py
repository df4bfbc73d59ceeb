"""Names that configs may use, without importing torch (so sweeps validate configs in milliseconds).

Each registry maps a name to ``"module:attribute"``; ``resolve`` imports it when a trial needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

METHODS: dict[str, str] = {
    "finetune": "pare_core.methods.finetune:FinetuneMethod",
    "scratch": "pare_core.methods.finetune:ScratchMethod",
    "pare": "pare_core.methods.pare:PareMethod",
    "orca": "pare_core.methods.orca:OrcaMethod",
    "mona": "pare_core.methods.mona:MonaMethod",
}

BACKBONES: dict[str, str] = {
    "minilm": "pare_core.backbones:build_minilm",
    "mpnet": "pare_core.backbones:build_mpnet",
    "efficientnet_lite0": "pare_core.backbones:build_efficientnet_lite0",
    "swin_base": "pare_core.backbones:build_swin_base",
    "roberta_base": "pare_core.backbones:build_roberta_base",
}


def method_names() -> list[str]:
    return list(METHODS)


def backbone_names() -> list[str]:
    return list(BACKBONES)


def task_names() -> list[str]:
    from pare_core.tasks import TASKS

    return list(TASKS)


def resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
