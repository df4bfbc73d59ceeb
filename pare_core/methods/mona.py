"""MoNA (Ma, Li, Cai, Kang, "Learning Modality Knowledge Alignment for Cross-Modality Transfer", ICML 2024).

The paper frames the modality gap as a mismatch of the conditional P(Y|X) that the source model has
learnt ("modality knowledge") and learns the target embedder with bi-level meta-learning, *before*
fine-tuning, so that fine-tuning on the transformed target data reuses that knowledge instead of
overwriting it; an embedder warm-up and the two-stage schedule are reported to matter. No official
code is public and only the abstract could be read (Ma et al., ICML 2024, arXiv 2406.18864), so the concrete
algorithm below is this module's reading of it. Every choice, and why:

1. **What the meta-stage learns**: the target embedder phi, plus the initial target head h (the
   head is freshly initialised, and without learning its init the simulated fine-tuning would start
   from a random classifier each outer step). The body's pretrained weights theta are not changed by
   this stage; stage 2 (``pare_core.train``) fine-tunes everything as ``finetune.body`` says.
2. **The source model's P(Y|X)**: our bodies have no head for the labelled source data, so the
   source model is the pretrained body + a linear classifier fitted (full-batch L-BFGS, multinomial
   logistic regression) on pooled body features of ``mona.probe_samples`` source samples. It is
   fixed during the stage: it *is* the knowledge to be kept.
3. **Inner loop (simulated fine-tuning)**: ``mona.inner_steps`` plain SGD steps at ``mona.inner_lr``
   on the target loss, on the body parameters that stage 2 will train (the same ``finetune.body``
   regime, via ``configure_trainable``) and the head; second-order (``create_graph=True``), written
   with ``torch.func.functional_call`` so the live modules are never modified.
4. **Outer objective** (minimised over phi and h with Adam at ``mona.outer_lr``), evaluated with the
   adapted parameters theta', h':
   ``L_tgt(theta', h'; query batch) + mona.source_weight * CE(source classifier(g_theta'(x_s)), y_s)``.
   The first term is MAML's: the transformation must make the target task learnable. The second is
   the knowledge term: after fine-tuning on transformed target data, the body must still support the
   source model's P(Y|X) on labelled source data. Its gradient reaches phi only through theta', so
   to first order it rewards target gradients aligned with the source task's (knowledge reused,
   not overwritten). A KL(P_theta || P_theta') term was considered and rejected: it is 0 with zero
   gradient at theta' = theta, so its signal scales with inner_lr^2 and vanishes at sensible rates.
   Support (inner) and query (outer) target batches are drawn independently, as in MAML.
5. **Warm-up**: ``mona.warmup_steps`` Adam steps on the target loss alone (body fixed) before the
   meta steps, so the meta-gradient is not spent on a random embedder/head (the paper's "embedder
   warm-up").
6. **Determinism / noise**: the stage runs in eval mode (no dropout), so the reported
   ``mona/outer_before`` / ``mona/outer_after`` are the outer objective on one fixed draw of
   support, query and source batches, before and after the meta steps (after warm-up), and are
   comparable. Batches use ``ctx.method_rng``.
7. **Cost**: one outer step = (inner_steps + 1) target passes + one source pass through the body,
   with a double backward; the defaults (5 outer steps, batch ``train.batch_size``) take seconds on
   a CPU with MiniLM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from pare_core.methods.base import STAGE_STEPS, Method, TrainContext
from pare_core.model import configure_trainable

# Ridge penalty of the source classifier: the P(Y|X) to keep should be calibrated, not memorised. Held-out
# source CE of a 512-sample fit on MiniLM text features: 1e-4: 2.70, 1e-3: 1.88, 1e-2: 1.56, 1e-1: 1.83.
PROBE_L2 = 1e-2
PROBE_ITERS = 100
BODY, HEAD = "backbone.", "head."


class MonaMethod(Method):
    needs_source = True  # the knowledge term is measured on labelled source data

    def before_training(self, ctx: TrainContext) -> dict[str, float]:
        # The fused attention kernels have no double backward; the math kernel does.
        with sdpa_kernel(SDPBackend.MATH):
            return meta_align(ctx)


@dataclass
class _Batch:
    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor
    source_tokens: Tensor
    source_labels: Tensor


def _draw(ctx: TrainContext) -> _Batch:
    n, b = len(ctx.x_train), ctx.cfg.train.batch_size
    support, query = (torch.randint(n, (b,), generator=ctx.method_rng, device=ctx.device) for _ in range(2))
    src = torch.randint(len(ctx.source.labels), (b,), generator=ctx.method_rng, device=ctx.device)
    return _Batch(
        ctx.x_train[support],
        ctx.y_train[support],
        ctx.x_train[query],
        ctx.y_train[query],
        ctx.source.tokens[src],
        ctx.source.labels[src],
    )


def _part(params: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def target_loss(ctx: TrainContext, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Task loss of the model with ``params`` (``backbone.*`` / ``head.*``) substituted."""
    model = ctx.model
    features = functional_call(model.backbone, _part(params, BODY), (model.embed(x), model.plan.grid))
    return ctx.loss_fn(functional_call(model.head, _part(params, HEAD), (features,)), y)


def source_loss(
    ctx: TrainContext, params: dict[str, Tensor], classifier: nn.Linear, tokens: Tensor, labels: Tensor
) -> Tensor:
    """Cross-entropy of the source model (body with ``params`` + fixed classifier) on source data."""
    features = functional_call(ctx.model.backbone, _part(params, BODY), (tokens,))
    return F.cross_entropy(classifier(features.mean(dim=1)), labels)


def adapt(ctx: TrainContext, params: dict[str, Tensor], x: Tensor, y: Tensor, create_graph: bool) -> dict[str, Tensor]:
    """The inner loop: ``mona.inner_steps`` SGD steps of the body/head parameters on the target loss."""
    for _ in range(ctx.cfg.mona.inner_steps):
        grads = torch.autograd.grad(
            target_loss(ctx, params, x, y), list(params.values()), create_graph=create_graph, allow_unused=True
        )
        params = {k: p if g is None else p - ctx.cfg.mona.inner_lr * g for (k, p), g in zip(params.items(), grads)}
    return params


def outer_objective(
    ctx: TrainContext, params: dict[str, Tensor], classifier: nn.Linear, batch: _Batch, create_graph: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """(total, target term, source term) after adapting on the support batch."""
    adapted = adapt(ctx, params, batch.x_support, batch.y_support, create_graph)
    target = target_loss(ctx, adapted, batch.x_query, batch.y_query)
    source = source_loss(ctx, adapted, classifier, batch.source_tokens, batch.source_labels)
    return target + ctx.cfg.mona.source_weight * source, target, source


def fit_source_classifier(ctx: TrainContext) -> nn.Linear:
    """The source model's head: multinomial logistic regression on pooled pretrained-body features."""
    source, n = ctx.source, ctx.cfg.mona.probe_samples
    with torch.no_grad():
        features = torch.cat(
            [
                ctx.model.backbone(chunk).mean(dim=1).float()
                for chunk in source.tokens[:n].split(ctx.cfg.train.eval_batch_size)
            ]
        )
    labels = source.labels[:n]
    classifier = nn.Linear(features.shape[1], source.n_classes).to(ctx.device)
    optimizer = torch.optim.LBFGS(classifier.parameters(), max_iter=PROBE_ITERS, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(classifier(features), labels) + PROBE_L2 * classifier.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return classifier.requires_grad_(False)


def meta_align(ctx: TrainContext) -> dict[str, float]:
    """Warm-up, then ``mona.epochs`` outer steps; returns the stage's before/after metrics."""
    start = time.perf_counter()
    cfg, model = ctx.cfg.mona, ctx.model
    was_training = model.training
    model.eval()
    configure_trainable(model, ctx.cfg)  # marks the body parameters stage 2 trains: the inner loop adapts those
    params = {BODY + k: p for k, p in model.backbone.named_parameters() if p.requires_grad}
    params |= {HEAD + k: p for k, p in model.head.named_parameters()}
    learned = [*model.embedder.parameters(), *model.head.parameters()]
    optimizer = torch.optim.Adam(learned, lr=cfg.outer_lr)

    def step(loss: Tensor) -> None:
        for p, g in zip(learned, torch.autograd.grad(loss, learned)):
            p.grad = g
        optimizer.step()

    for _ in range(cfg.warmup_steps):
        batch = _draw(ctx)
        step(target_loss(ctx, params, batch.x_query, batch.y_query))
    classifier = fit_source_classifier(ctx)
    fixed = _draw(ctx)
    before = [v.item() for v in outer_objective(ctx, params, classifier, fixed, create_graph=False)]
    for _ in range(cfg.epochs):
        step(outer_objective(ctx, params, classifier, _draw(ctx), create_graph=True)[0])
    after = [v.item() for v in outer_objective(ctx, params, classifier, fixed, create_graph=False)]
    optimizer.zero_grad(set_to_none=True)
    model.train(was_training)
    # Warm-up and outer steps are supervised optimiser steps on target labels: charged to the budget.
    metrics = {"mona/s": time.perf_counter() - start, STAGE_STEPS: float(cfg.warmup_steps + cfg.epochs)}
    for when, values in (("before", before), ("after", after)):
        metrics.update({f"mona/{name}_{when}": v for name, v in zip(("outer", "target", "source"), values)})
    return metrics
