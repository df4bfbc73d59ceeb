"""ORCA's alignment stage (Shen et al., ICML 2023): train the target embedder so embedded target data
looks like source data to the pretrained body, before any fine-tuning.

Used by ``method=orca`` and, with ``align.epochs > 0``, by ``method=pare`` (ORCA + PaRe). It follows
the official ``embedder.get_tgt_model`` (sjunhongshen/ORCA ``src/embedder.py``; docs/methods.md):

- features: token-averaged embedder outputs (target) and token-averaged source tokens, both in the
  body's input-token space;
- target groups: the classes, or k-means pseudo-labels (``align.clusters``, official k = 10) of the
  flattened targets for multilabel and dense tasks (the official ``infer_labels``);
- loss: sum over groups c of (class frequency w_c) x distance(source set, target group c), with up
  to ``align.max_samples`` target samples of each group drawn afresh every epoch;
- optimisation: gradients accumulate over all groups and the optimiser steps once per epoch (Adam at
  ``align.lr``; the official StepLR: x0.2 at epochs 20/40/60). Only the embedder trains. The
  defaults are the official ones: 60 epochs for ORCA, lr 10 x the task lr when that is <= 1e-3.

Distances (``align.objective``):
- ``otdd``: the OT dataset distance (Alvarez-Melis & Fusi 2020) with p = 2, solved exactly with POT.
  Ground cost between labelled points: ``||x - x'||^2 + W2^2(P_y, P_y')``, where the label term is the
  exact squared 2-Wasserstein distance between the class-conditional feature sets (``ot.emd2``).
  As in ORCA each target group is one single-label dataset, so the label term is the distance from
  each source class to the group. Approximation vs. the official call (Microsoft ``otdd``,
  ``entreg=0.1``, debiased Sinkhorn outer problem): the outer problem here is exact network-simplex
  OT, which needs no debiasing (the exact OT of a set with itself is 0). The value returned is the
  OT cost (squared units), and gradients flow through both the outer plan and the label distances.
- ``mmd``: Gaussian multi-kernel MMD (5 kernels, bandwidth multiplier 2, base bandwidth the mean
  pairwise squared distance, detached), against as many random source samples as the group has
  target samples, exactly as the official ``MMD_loss``.
- ``l2``: the mean Euclidean distance between target and source features. The official ``l2`` pairs
  each target feature with a random source feature, batch by batch; this is the expectation that
  estimator samples, computed over all pairs.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from pare_core.config import Objective, choices
from pare_core.methods.base import STAGE_STEPS, TrainContext

MMD_KERNELS = 5  # official MMD_loss(kernel_num=5, kernel_mul=2.0)
MMD_MUL = 2.0
LR_MILESTONES = (20, 40, 60)  # official no_warmup_scheduler: StepLR x0.2 at these embedder epochs
LR_GAMMA = 0.2
EMD_MAX_ITER = 1_000_000  # network simplex iterations; POT's default 1e5 stops early on 5000 x 128 problems


# -- distances ---------------------------------------------------------------------------------


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """(n, d), (m, d) -> (n, m) squared Euclidean distances (clamped at 0; finite gradients at 0)."""
    return (a.square().sum(1, keepdim=True) + b.square().sum(1) - 2.0 * a @ b.T).clamp_min(0.0)


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)


def exact_ot(cost: Tensor) -> Tensor:
    """Exact OT cost between uniform weights for a cost matrix; differentiable in ``cost`` (POT).

    POT is imported here, not at module level: it pulls in scikit-learn and scipy.stats (about 2 s), and
    every PaRe trial imports this module while only trials with an alignment stage use it."""
    import ot

    n, m = cost.shape
    return ot.emd2(_uniform(n, cost), _uniform(m, cost), cost, numItermax=EMD_MAX_ITER)


def otdd_distance(src_x: Tensor, src_y: Tensor, tgt_x: Tensor, tgt_y: Tensor | None = None) -> Tensor:
    """OT dataset distance (p = 2, exact inner and outer OT) between two labelled feature sets.

    ``tgt_y=None``: the target is one single-label set (ORCA's per-group call).
    """
    tgt_y = torch.zeros(len(tgt_x), dtype=torch.long, device=tgt_x.device) if tgt_y is None else tgt_y
    src_classes, src_index = torch.unique(src_y, return_inverse=True)
    tgt_classes, tgt_index = torch.unique(tgt_y, return_inverse=True)
    label_cost = torch.stack(
        [
            torch.stack([exact_ot(squared_distances(src_x[src_y == a], tgt_x[tgt_y == b])) for b in tgt_classes])
            for a in src_classes
        ]
    )
    cost = squared_distances(src_x, tgt_x) + label_cost[src_index][:, tgt_index]
    return exact_ot(cost)


def mmd_distance(src_x: Tensor, tgt_x: Tensor) -> Tensor:
    """Gaussian multi-kernel MMD^2 (biased estimator, the official ``MMD_loss`` for any set sizes)."""
    total = torch.cat([src_x, tgt_x])
    d2 = squared_distances(total, total)
    n = len(total)
    bandwidth = d2.detach().sum() / (n * n - n) / MMD_MUL ** (MMD_KERNELS // 2)
    kernel = sum(torch.exp(-d2 / (bandwidth * MMD_MUL**i)) for i in range(MMD_KERNELS))
    ns = len(src_x)
    return kernel[:ns, :ns].mean() + kernel[ns:, ns:].mean() - kernel[:ns, ns:].mean() - kernel[ns:, :ns].mean()


def l2_distance(src_x: Tensor, tgt_x: Tensor) -> Tensor:
    """Mean Euclidean distance over all (target, source) pairs."""
    return squared_distances(tgt_x, src_x).add(1e-12).sqrt().mean()


def distance(objective: str, src_x: Tensor, src_y: Tensor, tgt_x: Tensor, generator: torch.Generator) -> Tensor:
    """The ``align.objective`` distance between the source set and one target group's features."""
    if objective == "otdd":
        return otdd_distance(src_x, src_y, tgt_x)
    if objective == "mmd":
        pick = torch.randint(len(src_x), (len(tgt_x),), generator=generator, device=src_x.device)
        return mmd_distance(src_x[pick], tgt_x)
    if objective == "l2":
        return l2_distance(src_x, tgt_x)
    raise ValueError(f"align.objective={objective!r} is invalid: allowed values are {', '.join(choices(Objective))}")


# -- target groups -----------------------------------------------------------------------------


def target_groups(kind: str, y: Tensor, clusters: int, seed: int) -> list[Tensor]:
    """Indices of each target group: one per class, or per k-means cluster of the flattened targets
    (multilabel / dense; sklearn ``KMeans``, seeded). Empty groups are dropped."""
    if kind == "classification":
        labels = y.long()
    else:
        from sklearn.cluster import KMeans

        flat = y.reshape(len(y), -1).float().cpu().numpy()
        k = min(clusters, len(np.unique(flat, axis=0)))
        labels = torch.as_tensor(KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(flat), device=y.device)
    return [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]


# -- the stage ---------------------------------------------------------------------------------


def _group_losses(
    ctx: TrainContext, src_x: Tensor, picks: list[Tensor], weights: list[float], generator: torch.Generator
):
    """Yield w_c * distance(source, embedded group c) for each group with at least 2 samples."""
    for idx, w in zip(picks, weights):
        if len(idx) > 1:  # official: a single sample is skipped
            feats = ctx.model.embed(ctx.x_train[idx]).float().mean(dim=1)
            yield w * distance(ctx.cfg.align.objective, src_x, ctx.source.labels, feats, generator)


def _sample(groups: list[Tensor], max_samples: int, generator: torch.Generator) -> list[Tensor]:
    """Up to ``max_samples`` random members of each group."""
    out = []
    for g in groups:
        order = torch.randperm(len(g), generator=generator, device=g.device)
        out.append(g[order[:max_samples]])
    return out


def align_embedder(ctx: TrainContext) -> dict[str, float]:
    """Run ``align.epochs`` epochs of alignment on ``ctx.model.embedder``.

    Returns ``align/before`` and ``align/after``: the weighted objective on one fixed draw of target
    samples (and, for MMD, source samples) before and after, so the two numbers are comparable;
    plus ``align/s``, the stage's wall time, and the resolved ``align/epochs`` and ``align/lr``.
    """
    cfg = ctx.cfg.align
    epochs, lr = cfg.epochs, cfg.lr  # AUTO already resolved (pare_core.config.resolve)
    if ctx.source is None:
        raise ValueError(f"align.epochs={epochs} needs source data, but method={ctx.cfg.method!r} loads none")
    start = time.perf_counter()
    src_x = ctx.source.tokens.float().mean(dim=1)
    groups = target_groups(ctx.spec.kind, ctx.y_train, cfg.clusters, ctx.cfg.seed)
    weights = [len(g) / len(ctx.y_train) for g in groups]

    def measure() -> float:
        fixed = torch.Generator(device=ctx.device)
        fixed.manual_seed(ctx.cfg.seed)
        with torch.no_grad():
            picks = _sample(groups, cfg.max_samples, fixed)
            return float(sum(_group_losses(ctx, src_x, picks, weights, fixed)))

    before = measure()
    params = list(ctx.model.embedder.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(LR_MILESTONES), gamma=LR_GAMMA)
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        for loss in _group_losses(
            ctx, src_x, _sample(groups, cfg.max_samples, ctx.method_rng), weights, ctx.method_rng
        ):
            loss.backward()  # per group: one group's graph in memory at a time
        optimizer.step()
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return {
        "align/before": before,
        "align/after": measure(),
        "align/s": time.perf_counter() - start,
        "align/epochs": float(epochs),
        "align/lr": lr,
        STAGE_STEPS: float(epochs),
    }  # one step per epoch
