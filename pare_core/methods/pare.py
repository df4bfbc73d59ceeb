"""PaRe: gated patch replacement with an easy-to-hard curriculum (Cai et al., ICML 2024).

Each step, a gate scores target and source tokens; k target tokens (k from the curriculum) are
overwritten by k source tokens, giving an intermediate-modality sample x_mix. The loss is

    l(f(x), y) + w * [(1 - lam) * l(f(x_mix), y) + lam * CE(f_src(x_mix), y_src)],   lam = k / T

with w = 1 (2D classification), 0.1 (1D), 0.3 (dense) in the official code. Unlike the official
code, which runs the clean and mixed batches as two backbone passes plus a source-embedder pass,
the clean and mixed batches share one forward on a concatenated batch, and source tokens are
embedded once when the source set is loaded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pare_core import curriculum
from pare_core.config import AUTO
from pare_core.gate import GatingNetwork, mix_tokens, select
from pare_core.methods.align import align_embedder, align_epochs
from pare_core.methods.base import Method, StepOut, TrainContext


def mixed_loss(clean: Tensor, mix_target: Tensor, mix_source: Tensor, lam: Tensor | float, weight: float) -> Tensor:
    """The PaRe objective (``twocls``: source label through the source head)."""
    return clean + weight * ((1.0 - lam) * mix_target + lam * mix_source)


def joint_soft_label_loss(target_logits: Tensor, source_logits: Tensor, y: Tensor, y_src: Tensor, lam: Tensor | float) -> Tensor:
    """``multilabel``: one (C + C_src)-way soft label [(1 - lam) on y, lam on y_src] (official FocalLoss with lam)."""
    logits = torch.cat([target_logits, source_logits], dim=-1)
    n_target = target_logits.shape[-1]
    soft = torch.zeros_like(logits)
    soft.scatter_(-1, y.unsqueeze(-1), 1.0 - lam)
    soft.scatter_(-1, (y_src + n_target).unsqueeze(-1), lam)
    return -(soft * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def paper_mix_weight(kind: str, layout: str) -> float:
    if kind == "dense":
        return 0.3
    return 1.0 if layout == "2d" else 0.1


def paper_warm_epochs(layout: str) -> int:
    return 10 if layout == "2d" else 5


class PareMethod(Method):
    name = "pare"
    needs_source = True

    def setup(self, ctx: TrainContext) -> None:
        cfg, model = self.cfg, ctx.model
        if cfg.mix.cls_method == "multilabel" and self.spec.kind != "classification":
            raise ValueError(f"mix.cls_method='multilabel' is invalid for the {self.spec.kind} task "
                             f"{self.spec.name!r}: allowed values for it are twocls")
        model.gate = GatingNetwork(model.backbone.token_dim)
        model.source_head = nn.Linear(model.backbone.hidden, ctx.source.n_classes)
        self.weight = cfg.mix.weight if cfg.mix.weight != AUTO else paper_mix_weight(self.spec.kind, self.spec.layout)
        self.warm_epochs = cfg.gate.warm_epochs if cfg.gate.warm_epochs != AUTO else paper_warm_epochs(self.spec.layout)
        self.k = 0
        self.warm = False

    def before_training(self, ctx: TrainContext) -> dict[str, float]:
        """ORCA + PaRe: with ``align.epochs > 0`` ORCA's alignment stage runs first (the official PaRe
        code skips it with ``align_method: srcinit``; any other value re-enables it)."""
        return align_embedder(ctx) if align_epochs(self.cfg) > 0 else {}

    def start_epoch(self, ctx: TrainContext) -> dict[str, float]:
        n_tokens = ctx.model.plan.n_tokens
        self.k = curriculum.n_replaced(self.cfg.curriculum, ctx.epoch, self.cfg.train.epochs, n_tokens)
        if self.cfg.gate.selection == "none":
            self.k = 0
        self.warm = ctx.epoch < self.warm_epochs
        return {"ratio": self.k / n_tokens, "k": float(self.k)}

    def training_loss(self, ctx: TrainContext, x: Tensor, y: Tensor) -> StepOut:
        cfg, model = self.cfg, ctx.model
        tokens = model.embed(x)
        target_logits = model.gate(tokens)
        stats = {"gate_mean": torch.sigmoid(target_logits.detach()).mean()}
        if self.k == 0:  # nothing to replace: no mixed pass (selection=none, or the curriculum reached 0)
            features = model.encode(tokens)
            stats["gate_selected_frac"] = torch.zeros((), device=x.device)
            return StepOut(ctx.loss_fn(model.head(features), y), features, stats)

        # Mixed copies of the first n_mix samples (the batch is already a random draw); the paper mixes all.
        n_mix = max(1, math.ceil(cfg.mix.batch_frac * x.shape[0]))
        source = ctx.source
        idx = torch.randint(len(source.labels), (n_mix,), generator=ctx.generator, device=ctx.device)
        src_tokens, y_src = source.tokens[idx], source.labels[idx]
        gate_cfg = cfg.gate
        target_mask, source_mask = select(
            target_logits[:n_mix], model.gate(src_tokens), self.k, gate_cfg.selection,
            side=gate_cfg.replace_warm if self.warm else gate_cfg.replace_after,
            threshold=gate_cfg.threshold,
            straight_through=self.warm,
            tau=gate_cfg.tau,
            generator=ctx.generator,
        )
        mix = mix_tokens(tokens[:n_mix], src_tokens, target_mask, source_mask)
        features, mixed = model.encode(torch.cat([tokens, mix.tokens])).split([x.shape[0], n_mix])
        lam = mix.lam.mean()  # = k / T for topk and random; the batch mean for threshold
        clean = ctx.loss_fn(model.head(features), y)
        source_logits = model.source_head(mixed.mean(dim=1))
        y_mix = y[:n_mix]
        if cfg.mix.cls_method == "multilabel":
            loss = clean + self.weight * joint_soft_label_loss(model.head(mixed), source_logits, y_mix, y_src, lam)
        else:
            loss = mixed_loss(clean, ctx.loss_fn(model.head(mixed), y_mix), F.cross_entropy(source_logits, y_src), lam, self.weight)
        stats["gate_selected_frac"] = mix.replaced.mean()
        return StepOut(loss, features, stats)
