"""PaRe: gated patch replacement with an easy-to-hard curriculum (Cai et al., ICML 2024).

Each step, a gate scores target and source tokens; k target tokens (k from the curriculum) are
overwritten by source tokens, giving an intermediate-modality sample x_mix. The loss is

    l(f(x), y) + w * mean_i r_i [(1 - lam_i) l(f(x_mix_i), y_i) + lam_i CE(f_src(x_mix_i), y_src_i)]

with lam_i the share of sample i's tokens replaced (k / T in the official code) and w = 1 (2D
classification), 0.1 (1D), 0.3 (dense) as there. ``r_i`` is 1 when sample i had anything replaced
and 0 otherwise: a sample with nothing replaced contributes no mixed term, in every arm, so
``gate.selection=none`` is exactly the objective without replacement and a threshold that nothing
passes is the same objective too (docs/methods.md).

As in the official code, the clean and mixed batches are two backbone passes, the clean one first:
one concatenated pass would be faster on a GPU, but the clean samples' dropout masks would then
depend on whether the arm mixes (each dropout layer draws for the whole batch), and on BatchNorm
bodies mixed samples would enter the clean batch's statistics. The mixed pass is normalised by its
own batch statistics and leaves BatchNorm running statistics alone, so evaluation normalises with
statistics of target data only. Unlike the official code, source tokens are embedded once, when the
source set is loaded, not every step.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pare_core import curriculum
from pare_core.gate import GatingNetwork, draw_noise, mix_tokens, select
from pare_core.methods.align import align_embedder
from pare_core.methods.base import Method, StepOut, TrainContext

PROBE_SAMPLES = 64  # training samples whose gate scores are tracked across epochs


def joint_soft_label_loss(
    target_logits: Tensor, source_logits: Tensor, y: Tensor, y_src: Tensor, lam: Tensor
) -> Tensor:
    """``multilabel``: one (C + C_src)-way soft label [(1 - lam) on y, lam on y_src] per sample, (B,)
    (the official FocalLoss with lam)."""
    logits = torch.cat([target_logits, source_logits], dim=-1)
    n_target = target_logits.shape[-1]
    soft = torch.zeros_like(logits).scatter(-1, y.unsqueeze(-1), (1.0 - lam).unsqueeze(-1).to(logits.dtype))
    soft = soft.scatter(-1, (y_src + n_target).unsqueeze(-1), lam.unsqueeze(-1).to(logits.dtype))
    return -(soft * F.log_softmax(logits, dim=-1)).sum(-1)


@contextlib.contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise by the batch's own statistics but leave the running ones as they are."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


class PareMethod(Method):
    needs_source = True

    def setup(self, ctx: TrainContext) -> None:
        cfg, model = self.cfg, ctx.model
        if cfg.mix.cls_method == "multilabel" and self.spec.kind != "classification":
            raise ValueError(
                f"mix.cls_method='multilabel' is invalid for the {self.spec.kind} task "
                f"{self.spec.name!r}: allowed values for it are twocls"
            )
        model.gate = GatingNetwork(model.backbone.token_dim)
        model.source_head = nn.Linear(model.backbone.hidden, ctx.source.n_classes)
        frac = cfg.gate.warm_frac
        self.warm_epochs = max(1, round(frac * cfg.train.epochs)) if frac > 0 else 0
        self.probe = ctx.x_train[:PROBE_SAMPLES]
        self.last_probe_scores: np.ndarray | None = None
        self.k = 0
        self.warm = False
        self.mixes = False  # k > 0 this epoch; the loss branches on it, never on k itself (runtime.capture)
        # A captured step reads this epoch's k from a tensor, so a new k needs no new graph; its warm
        # phase runs the relaxed k-hots' passes for the warm epochs' lowest and highest k (pare_core.gate).
        self.count: Tensor | None = None
        self.warm_k_range: tuple[int, int] | None = None
        if cfg.runtime.capture:
            self.count = torch.zeros((), dtype=torch.long, device=ctx.device)
            n_tokens, epochs = model.plan.n_tokens, cfg.train.epochs
            warm_ks = [self._n_replaced(epoch, n_tokens) for epoch in range(min(self.warm_epochs, epochs))]
            self.warm_k_range = (min(warm_ks), max(warm_ks)) if warm_ks else None

    def before_training(self, ctx: TrainContext) -> dict[str, float]:
        """ORCA + PaRe: with ``align.epochs > 0`` ORCA's alignment stage runs first (the official PaRe
        code skips it with ``align_method: srcinit``; any other value re-enables it)."""
        return align_embedder(ctx) if self.cfg.align.epochs > 0 else {}

    def start_epoch(self, ctx: TrainContext) -> dict[str, float]:
        n_tokens = ctx.model.plan.n_tokens
        self.k = self._n_replaced(ctx.epoch, n_tokens)
        self.mixes = self.k > 0
        if self.count is not None:
            self.count.fill_(self.k)
        self.warm = ctx.epoch < self.warm_epochs
        return {"ratio": self.k / n_tokens, "k": float(self.k), "gate_warm": float(self.warm)}

    def _n_replaced(self, epoch: int, n_tokens: int) -> int:
        """k at 0-based ``epoch``: the curriculum's, 0 with ``gate.selection=none``."""
        if self.cfg.gate.selection == "none":
            return 0
        return curriculum.n_replaced(self.cfg.curriculum, epoch, self.cfg.train.epochs, n_tokens)

    @torch.no_grad()
    def end_epoch(self, ctx: TrainContext) -> dict[str, float]:
        """How the gate's scores moved: their spread across a sample's tokens and how stable their
        ranking is from one epoch to the next, on a fixed probe of training samples. A gate that has
        learned nothing shows a flat spread and a ranking that does not settle."""
        model = ctx.model
        scores = torch.sigmoid(model.gate(model.embed(self.probe)).float()).cpu().numpy()
        out = {
            "gate_score_std": float(scores.std(axis=1).mean()),
            "gate_score_range": float((scores.max(axis=1) - scores.min(axis=1)).mean()),
            "gate_rank_tau": float("nan"),
        }
        if self.last_probe_scores is not None:
            from scipy.stats import kendalltau  # not at module level: scipy.stats costs ~0.5 s of every trial's start

            taus = [kendalltau(a, b).statistic for a, b in zip(self.last_probe_scores, scores)]
            out["gate_rank_tau"] = float(np.nanmean(taus)) if not np.all(np.isnan(taus)) else float("nan")
        self.last_probe_scores = scores
        return out

    def state_dict(self) -> dict[str, Tensor]:
        return {} if self.last_probe_scores is None else {"last_probe_scores": torch.from_numpy(self.last_probe_scores)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if "last_probe_scores" in state:
            self.last_probe_scores = state["last_probe_scores"].numpy()

    def n_mixed(self, batch_size: int) -> int:
        """Mixed copies are made of the first n samples (the batch is already a random draw); the paper mixes all."""
        return max(1, math.ceil(self.cfg.mix.batch_frac * batch_size))

    def draw(self, ctx: TrainContext, x: Tensor) -> dict[str, Tensor]:
        if self.k == 0:
            return {}
        n_mix, source, model = self.n_mixed(x.shape[0]), ctx.source, ctx.model
        idx = torch.randint(len(source.labels), (n_mix,), generator=ctx.method_rng, device=ctx.device)
        draws = {"source_tokens": source.tokens[idx], "source_labels": source.labels[idx]}
        noise = draw_noise(
            (n_mix, model.plan.n_tokens),
            (n_mix, source.tokens.shape[1]),
            self.k,
            self.cfg.gate,
            warm=self.warm,
            generator=ctx.method_rng,
            device=ctx.device,
        )
        if noise is not None:
            draws["target_noise"], draws["source_noise"] = noise
        return draws

    def loss(self, ctx: TrainContext, x: Tensor, y: Tensor, draws: dict[str, Tensor]) -> StepOut:
        cfg, model = self.cfg, ctx.model
        tokens = model.embed(x)
        target_logits = model.gate(tokens)
        features = model.encode(tokens)  # the clean pass first: its dropout masks are the same in every arm
        clean = ctx.loss_fn(model.head(features), y)
        stats = {"gate_mean": torch.sigmoid(target_logits.detach()).mean()}
        if not self.mixes:  # nothing to replace: no mixed pass (selection=none, or the curriculum reached 0)
            stats["gate_selected_frac"] = torch.zeros_like(stats["gate_mean"])
            return StepOut(clean, features, stats)

        n_mix = self.n_mixed(x.shape[0])
        src_tokens, y_src = draws["source_tokens"], draws["source_labels"]
        noise = (draws["target_noise"], draws["source_noise"]) if "target_noise" in draws else None
        k = self.k if self.count is None else self.count
        selection = select(
            target_logits[:n_mix],
            model.gate(src_tokens),
            k,
            cfg.gate,
            warm=self.warm,
            noise=noise,
            k_range=self.warm_k_range,
        )
        mix = mix_tokens(tokens[:n_mix], src_tokens, selection, cfg.gate.straight_through)
        with frozen_running_stats(model.backbone):
            mixed = model.encode(mix.tokens)
        source_logits = model.source_head(mixed.mean(dim=1))
        y_mix, lam = y[:n_mix], mix.lam
        if cfg.mix.cls_method == "multilabel":
            per_sample = joint_soft_label_loss(model.head(mixed), source_logits, y_mix, y_src, lam)
        else:
            per_sample = (1.0 - lam) * ctx.sample_loss_fn(model.head(mixed), y_mix) + lam * F.cross_entropy(
                source_logits.float(), y_src, reduction="none"
            )
        anything_replaced = (mix.replaced.sum(-1) > 0).to(per_sample.dtype)
        loss = clean + cfg.mix.weight * (anything_replaced * per_sample).mean()
        stats["gate_selected_frac"] = mix.replaced.mean()
        return StepOut(loss, features, stats)
