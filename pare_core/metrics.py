"""Losses and metrics. Every ``error`` is lower-is-better (the NAS-Bench-360 convention), so one table
holds many tasks: 1 - accuracy, 1 - macro-F1, 1 - AUROC, 1 - mAP, relative L2, nRMSE.

``evaluate`` takes raw model outputs: logits for classification (``(N, n_classes)`` against ``(N,)``
class ids), logits for multilabel targets and binary masks, values for regression fields. Scores for
AUROC/mAP are logits and log-softmax values, never probabilities: softmax saturates to exactly 1.0 for
confident models and would turn a correct ranking into ties.

Degenerate splits raise ``ValueError`` with the reason (AUROC of a split whose targets hold a single
class, mAP without positives, relative errors of all-zero targets) instead of returning NaN.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pare_core.tasks.base import TaskSpec

METRICS = ("accuracy", "macro_f1", "auroc", "map", "rel_l2", "nrmse")


def relative_l2(outputs: Tensor, targets: Tensor) -> Tensor:
    """Mean over samples of ||output - target||_2 / ||target||_2 over the whole sample (FNO, NB360 Darcy)."""
    diff = (outputs - targets).flatten(1).norm(dim=1)
    return (diff / targets.flatten(1).norm(dim=1)).mean()


def normalised_rmse(outputs: Tensor, targets: Tensor) -> Tensor:
    """PDEBench nRMSE: RMSE / RMS of the target, per sample and channel, averaged over both.

    For one output channel this equals ``relative_l2``; with several channels each is normalised
    by its own scale.
    """
    diff = (outputs - targets).flatten(2).norm(dim=2)
    return (diff / targets.flatten(2).norm(dim=2)).mean()


def _per_sample(values: Tensor) -> Tensor:
    """Mean over every dimension but the batch one."""
    return values.flatten(1).mean(dim=1) if values.ndim > 1 else values


def _rel_l2_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    diff = (outputs - targets).flatten(1).norm(dim=1)
    return diff / targets.flatten(1).norm(dim=1).clamp_min(1e-12)


# Per-sample losses, shape (B,): PaRe weights each mixed sample by whether anything was replaced.
SAMPLE_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "ce": lambda out, y: F.cross_entropy(out.float(), y.long(), reduction="none"),
    "bce": lambda out, y: _per_sample(F.binary_cross_entropy_with_logits(out.float(), y.float(), reduction="none")),
    "mse": lambda out, y: _per_sample(F.mse_loss(out.float(), y.float(), reduction="none")),
    "rel_l2": lambda out, y: _rel_l2_loss(out.float(), y.float()),
}


def sample_loss_fn(spec: TaskSpec) -> Callable[[Tensor, Tensor], Tensor]:
    """The training loss of ``spec.loss`` (ce | bce | mse | rel_l2) per sample: ``loss(outputs, targets) -> (B,)``."""
    if spec.loss not in SAMPLE_LOSSES:
        raise ValueError(f"task {spec.name!r} has loss {spec.loss!r}: allowed values are {', '.join(SAMPLE_LOSSES)}")
    return SAMPLE_LOSSES[spec.loss]


def loss_fn(spec: TaskSpec) -> Callable[[Tensor, Tensor], Tensor]:
    """The training loss of ``spec.loss`` averaged over the batch: ``loss(outputs, targets) -> scalar``."""
    per_sample = sample_loss_fn(spec)
    return lambda outputs, targets: per_sample(outputs, targets).mean()


def evaluate(spec: TaskSpec, outputs: Tensor, targets: Tensor) -> dict[str, float]:
    """``{"error": e, spec.metric: m}``; ``e`` is lower-is-better, ``m`` the metric in its own sense."""
    metric = spec.metric
    out = outputs.detach().double().cpu()
    y = targets.detach().cpu()
    if metric in ("rel_l2", "nrmse"):
        y = y.double()
        if (y.flatten(1).norm(dim=1) == 0).any():
            raise ValueError(f"task {spec.name!r}: {metric} is undefined for a sample whose target is all zeros")
        value = float((relative_l2 if metric == "rel_l2" else normalised_rmse)(out, y))
        return {"error": value, metric: value}
    if metric == "accuracy":
        value = float((out.argmax(-1) == y).double().mean())
    elif metric == "macro_f1":
        from sklearn.metrics import f1_score

        value = float(f1_score(y.numpy(), out.argmax(-1).numpy(), average="macro", zero_division=0))
    elif metric in ("auroc", "map"):
        value = _ranking_metric(spec, metric, out.numpy(), y.numpy())
    else:
        raise ValueError(f"task {spec.name!r} has metric {metric!r}: allowed values are {', '.join(METRICS)}")
    return {"error": 1.0 - value, metric: value}


def _ranking_metric(spec: TaskSpec, metric: str, outputs: np.ndarray, targets: np.ndarray) -> float:
    """AUROC or average precision, macro-averaged over the columns where it is defined.

    classification: one-vs-rest per class on log-softmax scores (binary: the logit difference, one
    column); multilabel: per label; dense (masks): all pixels pooled into one column.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    if spec.kind == "classification":
        if outputs.shape[1] == 2:
            scores, truth = (outputs[:, 1] - outputs[:, 0])[:, None], (targets == 1)[:, None]
        else:
            scores = torch.log_softmax(torch.as_tensor(outputs), dim=-1).numpy()
            truth = targets[:, None] == np.arange(outputs.shape[1])[None, :]
    elif spec.kind == "multilabel":
        scores, truth = outputs.reshape(len(outputs), -1), targets.reshape(len(targets), -1) > 0.5
    else:
        scores, truth = outputs.reshape(-1, 1), targets.reshape(-1, 1) > 0.5
    positives = truth.sum(0)
    if metric == "auroc":
        defined = (positives > 0) & (positives < len(truth))
        reason = "the targets hold a single class"
        fn = roc_auc_score
    else:
        defined = positives > 0
        reason = "the targets hold no positive"
        fn = average_precision_score
    if not defined.any():
        raise ValueError(
            f"task {spec.name!r}: {metric} is undefined on this split because {reason} (in every class/label column)"
        )
    return float(np.mean([fn(truth[:, j], scores[:, j]) for j in np.flatnonzero(defined)]))
