"""The contract between the training loop and a method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from pare_core.config import TrialConfig
from pare_core.model import CrossModalModel
from pare_core.registry import AUXES, METHODS, resolve
from pare_core.sources import SourceData
from pare_core.tasks.base import TaskSpec


@dataclass
class TrainContext:
    """Everything a method may touch; tensors already live on ``device``."""

    cfg: TrialConfig
    spec: TaskSpec
    model: CrossModalModel
    device: torch.device
    method_rng: torch.Generator  # the method's own draws (source picks, Gumbel noise, random positions)
    loss_fn: Callable[[Tensor, Tensor], Tensor]  # the task loss, averaged over the batch
    sample_loss_fn: Callable[[Tensor, Tensor], Tensor]  # the task loss of each sample, (B,)
    x_train: Tensor
    y_train: Tensor
    source: SourceData | None = None
    epoch: int = 0  # 0-based epoch being trained


@dataclass
class StepOut:
    loss: Tensor
    features: Tensor  # (B, T, hidden) clean features (auxiliary losses use them)
    stats: dict[str, Tensor] = field(default_factory=dict)  # per-step scalars averaged per epoch


# A step's fp32 loss and stats from (x, y, draws): ``Run._step_loss``, or it compiled (``runtime.capture``).
StepLoss = Callable[[Tensor, Tensor, dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]

STAGE_STEPS = "stage/steps"  # supervised optimiser steps a stage before fine-tuning took (budget accounting)


class Method:
    """Plain fine-tuning of the pretrained model; subclasses change the loss or add a stage."""

    pretrained = True  # scratch: same architecture, random init
    needs_source = False  # PaRe/ORCA/MoNA use labelled source-modality data

    def __init__(self, cfg: TrialConfig, spec: TaskSpec):
        self.cfg, self.spec = cfg, spec

    def setup(self, ctx: TrainContext) -> None:
        """Attach extra modules to ``ctx.model`` (before the optimizer is built)."""

    def before_training(self, ctx: TrainContext) -> dict[str, float]:
        """A stage before fine-tuning (ORCA alignment, MoNA meta-learning); returns metrics to log."""
        return {}

    def start_epoch(self, ctx: TrainContext) -> dict[str, float]:
        """Per-epoch state (e.g. the curriculum's ratio and k), reported with the epoch's metrics."""
        return {}

    def end_epoch(self, ctx: TrainContext) -> dict[str, float]:
        """Metrics measured after an epoch's last step (e.g. how the gate's scores moved)."""
        return {}

    def state_dict(self) -> dict[str, Tensor]:
        """State kept across epochs outside the model (checkpointed with it)."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def draw(self, ctx: TrainContext, x: Tensor) -> dict[str, Tensor]:
        """The step's random draws from ``ctx.method_rng`` (and the source samples they pick).

        Kept apart from :meth:`loss` so that seeds trained together (``pare_core.fusion``) each draw
        from their own stream, then compute their losses in one batched call."""
        return {}

    def loss(self, ctx: TrainContext, x: Tensor, y: Tensor, draws: dict[str, Tensor]) -> StepOut:
        """The step's loss: a function of the model's parameters, the batch and the draws alone."""
        features = ctx.model.encode(ctx.model.embed(x))
        return StepOut(ctx.loss_fn(ctx.model.head(features), y), features)


class Aux:
    """An auxiliary loss added to any method's loss (``aux=lsg``); ``aux=none`` adds nothing."""

    def __init__(self, cfg: TrialConfig, spec: TaskSpec):
        self.cfg, self.spec = cfg, spec

    def setup(self, ctx: TrainContext) -> None:
        """Attach extra modules to ``ctx.model`` (before the optimizer is built)."""

    def loss(self, ctx: TrainContext, features: Tensor, y: Tensor) -> Tensor | None:
        return None


def build_method(cfg: TrialConfig, spec: TaskSpec) -> Method:
    return resolve(METHODS, "method", cfg.method)(cfg, spec)


def build_aux(cfg: TrialConfig, spec: TaskSpec) -> Aux:
    return resolve(AUXES, "aux", cfg.aux)(cfg, spec)
