"""Replacement-ratio curriculum: how many target tokens are swapped for source tokens each epoch.

PaRe builds intermediate modalities from easy (mostly source) to hard (pure target): the official
code decays the number of replaced tokens linearly. Other shapes are ablations. Every shape starts at
``start`` on the first epoch and ends at ``end`` on the last (``constant`` stays at ``start``).
"""

from __future__ import annotations

import math

from pare_core.config import CurriculumConfig

SHAPES = ("linear", "cosine", "step", "exp", "constant")
_EXP_RATE = 5.0  # curvature of the exp shape: most of the change happens in the first third


def ratio(cfg: CurriculumConfig, epoch: int, epochs: int) -> float:
    """Replaced-token ratio at 0-based ``epoch`` of ``epochs``."""
    progress = epoch / (epochs - 1) if epochs > 1 else 0.0
    progress = min(max(progress, 0.0), 1.0)
    start, end = cfg.start, cfg.end
    if cfg.shape == "linear":
        frac = progress
    elif cfg.shape == "cosine":
        frac = (1.0 - math.cos(math.pi * progress)) / 2.0
    elif cfg.shape == "step":
        levels = max(cfg.levels, 1)
        level = min(math.floor(progress * levels), levels - 1)
        frac = level / (levels - 1) if levels > 1 else 0.0
    elif cfg.shape == "exp":
        frac = (1.0 - math.exp(-_EXP_RATE * progress)) / (1.0 - math.exp(-_EXP_RATE))
    elif cfg.shape == "constant":
        frac = 0.0
    else:
        raise ValueError(f"curriculum.shape={cfg.shape!r} is invalid: allowed values are {', '.join(SHAPES)}")
    return start + (end - start) * frac


def n_replaced(cfg: CurriculumConfig, epoch: int, epochs: int, n_tokens: int) -> int:
    """k = round(ratio * n_tokens): the number of target tokens replaced at this epoch."""
    return int(round(ratio(cfg, epoch, epochs) * n_tokens))
