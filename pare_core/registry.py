"""The names configs may use, each mapped to ``"module:attribute"``: a leaf that imports nothing of
pare_core (like timm's ``_registry.py``), so config validation lists names in milliseconds and no
module needs a lazy import to reach it. ``resolve`` imports the named object when a run needs it.
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

AUXES: dict[str, str] = {
    "none": "pare_core.methods.base:Aux",
    "lsg": "pare_core.methods.lsg:LsgAux",
}

BACKBONES: dict[str, str] = {
    "minilm": "pare_core.backbones:build_minilm",
    "mpnet": "pare_core.backbones:build_mpnet",
    "efficientnet_lite0": "pare_core.backbones:build_efficientnet_lite0",
    "swin_base": "pare_core.backbones:build_swin_base",
    "roberta_base": "pare_core.backbones:build_roberta_base",
}

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


def resolve(registry: dict[str, str], key: str, name: str) -> Any:
    """The object registered as ``name``; an unknown name fails naming ``key`` and the allowed names."""
    if name not in registry:
        raise ValueError(f"{key}={name!r} is invalid: allowed values are {', '.join(registry)}")
    module, _, attr = registry[name].partition(":")
    return getattr(importlib.import_module(module), attr)
