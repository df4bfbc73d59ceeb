"""Replacement-ratio curriculum: how many target tokens are swapped for source tokens each epoch.

PaRe builds intermediate modalities from easy (mostly source) to hard (pure target): the official
code decays the number of replaced tokens linearly, ``k = int(begin_num - end_num * ep / epochs)``
(BIT-DA/PaRe ``src/main_PaRe.py:192,228``). In ratio terms that is ``start`` at epoch 0, heading
for ``end`` at epoch E, which it never trains: the last epoch still mixes (2D: k = 525 of 3136).
``curriculum.formula`` chooses between that (``official``) and a schedule that reaches ``end`` on
the last epoch and rounds (``endpoints``). Other shapes are ablations; ``constant`` stays at
``start``.
"""

from __future__ import annotations

import math

from pare_core.config import AUTO, CurriculumConfig, Shape, choices

SHAPES = choices(Shape)
_EXP_RATE = 5.0  # curvature of the exp shape: most of the change happens in the first third


def progress(formula: str, epoch: int, epochs: int) -> float:
    """How far along the schedule 0-based ``epoch`` is: ``epoch / E`` (official) or ``epoch / (E - 1)``."""
    span = epochs if formula == "official" else epochs - 1
    return min(max(epoch / span, 0.0), 1.0) if span > 0 else 0.0


def ratio(cfg: CurriculumConfig, epoch: int, epochs: int) -> float:
    """Replaced-token ratio at 0-based ``epoch`` of ``epochs`` (``cfg.end`` already resolved)."""
    if cfg.end == AUTO:
        raise ValueError("curriculum.end is AUTO: resolve the config first (pare_core.config.resolve)")
    p = progress(cfg.formula, epoch, epochs)
    if cfg.shape == "linear":
        frac = p
    elif cfg.shape == "cosine":
        frac = (1.0 - math.cos(math.pi * p)) / 2.0
    elif cfg.shape == "step":
        levels = max(cfg.levels, 1)
        level = min(math.floor(p * levels), levels - 1)
        frac = level / (levels - 1) if levels > 1 else 0.0
    elif cfg.shape == "exp":
        frac = (1.0 - math.exp(-_EXP_RATE * p)) / (1.0 - math.exp(-_EXP_RATE))
    elif cfg.shape == "constant":
        frac = 0.0
    else:
        raise ValueError(f"curriculum.shape={cfg.shape!r} is invalid: allowed values are {', '.join(SHAPES)}")
    return cfg.start + (cfg.end - cfg.start) * frac


def n_replaced(cfg: CurriculumConfig, epoch: int, epochs: int, n_tokens: int) -> int:
    """k at this epoch: ``int(ratio * T)`` as the official code truncates, or rounded (``endpoints``)."""
    value = ratio(cfg, epoch, epochs) * n_tokens
    return int(value + 1e-9) if cfg.formula == "official" else int(round(value))
