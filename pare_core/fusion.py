"""Fused seeds: the seeds of one arm trained as one run, for throughput.

An ablation is arms x seeds of one small model, and a step of that model is too small to keep a GPU
busy. Horizontal fusion (HFTA: Wang et al., MLSys 2021, https://arxiv.org/abs/2102.02344) trains
same-shaped runs as one stacked model. Here each seed is first built as its own :class:`Run` (its val
split, source set, initialisation and method stream). Every parameter that trains, or that differs
between seeds (scratch's random body), is then stacked along a leading seed dimension, and each seed's
module holds its slice as a view. Parameters that are the same in every seed (the frozen pretrained
body) are shared, not copied. A step computes every seed's loss in one ``torch.func.vmap`` call, so the
frozen body's matrix products run as one larger product.

Equivalence with separate runs is the contract (``tests/test_fusion.py``):

- data order, val split, source picks and gate noise are each seed's own, drawn per seed outside the
  batched call and in the order a separate run draws them (``Method.draw``);
- dropout: a separate run reseeds the global generator every step (``train.BODY_STREAM``) and its
  dropout layers draw their masks from it. Here each seed has its own generator, reseeded the same way,
  and :class:`SeedDropout` draws the masks from it in the same order, with the same shapes and the same
  kernel (``bernoulli_``). On CPU these are the same masks. On CUDA a separate run uses the fused
  Philox dropout kernel instead, so the masks differ (same distribution);
- AdamW is elementwise and the gradient clip is per seed; a seed whose loss is non-finite fails alone
  at the end of that epoch, as a separate run would, and the others go on.

Batched matrix products sum in a different order, so metrics agree within float tolerance, not bit
for bit.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.overrides import TorchFunctionMode

from pare_core.config import TrialConfig, resolve_align_epochs
from pare_core.train import BODY_STREAM, STATE_FILE, Checkpointer, Run, load_checkpoint, stream_seed

FUSABLE_METHODS = ("finetune", "scratch", "pare")
# BERT-family text encoders: their only random ops are dropout and SDPA's attention dropout, which
# SeedDropout reproduces per seed. The vision bodies are not fused: EfficientNet's BatchNorm updates
# running statistics in place (per-seed buffers under vmap), and Swin under vmap is untested here.
FUSABLE_BACKBONES = ("minilm", "mpnet", "roberta_base")

# The profiler range around one fused step (forward, backward, optimiser), so a trace shows what the
# seeds' step costs apart from the per-seed work around it; tests/test_fusion.py counts its matrix products.
FUSED_STEP = "fused_step"

SeedResult = dict[str, Any] | BaseException  # an epoch's metrics for one seed, or what failed it
FusedCallback = Callable[[dict[int, SeedResult], "FusedCheckpointer"], None]


def fusion_blocker(cfg: TrialConfig) -> str | None:
    """Why the seeds of ``cfg`` cannot train fused (a sentence for ``--dry-run``), or None if they can."""
    if cfg.method not in FUSABLE_METHODS:
        return (
            f"method={cfg.method} trains a stage of its own before fine-tuning (ORCA alignment, MoNA "
            f"meta-learning); fused methods: {', '.join(FUSABLE_METHODS)}"
        )
    if resolve_align_epochs(cfg.method, cfg.align.epochs) > 0:
        return "align.epochs > 0 runs ORCA's alignment stage first, which is not fused"
    if cfg.aux != "none":
        return f"aux={cfg.aux} is not fused (its graph loss is per run); fused: aux=none"
    if cfg.backbone.name not in FUSABLE_BACKBONES:
        return f"backbone.name={cfg.backbone.name} is not fused; fused backbones: {', '.join(FUSABLE_BACKBONES)}"
    if cfg.runtime.compile:
        return "runtime.compile=true is not fused (torch.compile of a vmapped step is untested)"
    if cfg.runtime.capture:
        return (
            "runtime.capture=true is not fused (a captured step compiles one seed's loss; capturing the "
            "vmapped step of stacked seeds is untested)"
        )
    return None


def fit_seeds(
    cfg: TrialConfig,
    seeds: list[int],
    report: FusedCallback | None = None,
    resume: str | os.PathLike | None = None,
) -> dict[int, SeedResult]:
    """Train ``cfg`` once per seed in ``seeds``, fused; ``cfg.seed`` is ignored.

    ``report(results, checkpointer)`` is called after every epoch. ``results[seed]`` holds the metrics
    ``fit`` would report for that seed, or the exception that failed the seed in this epoch; a failed
    seed then drops out of later results. ``checkpointer.save(dir)`` writes the state that
    ``fit_seeds(cfg, seeds, resume=dir)`` continues from. Returns the last results; raises the first
    seed's error if every seed failed.
    """
    blocker = fusion_blocker(cfg.validate())
    if blocker:
        raise ValueError(f"these seeds cannot be fused: {blocker}")
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds={seeds} is invalid: fused seeds must be distinct and at least one")
    state = None if resume is None else load_checkpoint(resume)
    return FusedRun(cfg, seeds, state).train(report)


def seed_state(state: dict[str, Any], seed: int) -> dict[str, Any]:
    """One seed's run state from a checkpoint, fused (``FusedCheckpointer``) or not: what ``Run`` restores
    (a fused seed's state has no optimiser of its own; ``Run`` keeps a fresh one)."""
    if "runs" not in state:
        return state
    if seed not in state["seeds"]:
        raise ValueError(f"seed={seed} is not in this fused checkpoint: allowed values are {state['seeds']}")
    return state["runs"][state["seeds"].index(seed)]


class SeedDropout(TorchFunctionMode):
    """Inside a vmapped step: each seed's dropout masks drawn from that seed's generator.

    ``generators[i]`` belongs to the seed at position i of the vmapped dimension. Masks are drawn as
    ``F.dropout`` and SDPA's attention dropout draw them (``bernoulli_(1 - p)`` over the input's shape,
    scaled by ``1 / (1 - p)``) and then placed as a batched tensor at the step's vmap level.
    """

    def __init__(self, generators: list[torch.Generator]):
        super().__init__()
        self.generators = generators

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.dropout:
            return self._dropout(*args, **kwargs)
        if func is F.scaled_dot_product_attention:
            return self._attention(*args, **kwargs)
        if func in (F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout):
            raise NotImplementedError(f"{func.__name__} is not fused (SeedDropout reproduces F.dropout only)")
        return func(*args, **kwargs)

    def _masks(self, like: Tensor, p: float) -> Tensor:
        level = torch._C._functorch.maybe_get_level(like)  # private: functorch has no public API for this
        if level < 1:
            raise RuntimeError("SeedDropout needs an input batched over seeds (inside the fused step's vmap)")
        masks = torch.stack(
            [
                torch.empty(like.shape, dtype=like.dtype, device=like.device).bernoulli_(1 - p, generator=g).div_(1 - p)
                for g in self.generators
            ]
        )
        return torch._C._functorch._add_batch_dim(masks, 0, level)

    def _dropout(self, input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
        if not training or p == 0:
            return input
        return input * self._masks(input, p)

    def _attention(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """Attention as SDPA's math kernel computes it on CPU, with this seed's dropout mask."""
        if is_causal or kwargs:
            raise NotImplementedError(f"fused attention: is_causal and {sorted(kwargs)} are not supported")
        weights = (query @ key.transpose(-2, -1)) * (scale or 1.0 / math.sqrt(query.shape[-1]))
        if attn_mask is not None:
            weights = (
                weights.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else weights + attn_mask
            )
        weights = torch.softmax(weights, dim=-1)
        if dropout_p > 0:
            weights = weights * self._masks(weights, dropout_p)
        return weights @ value


class _SeedStep(nn.Module):
    """One seed's loss as a module call, so ``functional_call`` can hand it that seed's parameters."""

    def __init__(self, run: Run):
        super().__init__()
        self.model = run.model
        self.run = run

    def forward(self, x: Tensor, y: Tensor, draws: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.run.method.loss(self.run.ctx, x, y, draws)
        return out.loss, out.stats


class FusedRun:
    """The seeds' :class:`Run` objects, their parameters stacked, and one optimiser over the stacks."""

    def __init__(self, cfg: TrialConfig, seeds: list[int], state: dict[str, Any] | None):
        self.seeds = list(seeds)
        per_seed = state["runs"] if state else [None] * len(seeds)
        self.runs = [Run(TrialConfig.from_flat({**cfg.to_flat(), "seed": s}), st) for s, st in zip(seeds, per_seed)]
        self.lead = self.runs[0]  # its modules run every seed's step, with each seed's parameters swapped in
        self.stacked, shared = self._stack()
        self.seed_step = _SeedStep(self.lead)
        self.shared = {f"model.{k}": v for k, v in shared.items()}  # named as in seed_step, built once
        self.failed: dict[int, str] = dict(state["failed"]) if state else {}  # seed -> "Type: message"
        lead_names = {id(p): name for name, p in self.lead.model.named_parameters()}
        groups = [
            {
                **{k: v for k, v in group.items() if k != "params"},
                "params": [self.stacked[lead_names[id(p)]] for p in group["params"]],
            }
            for group in self.lead.optimizer.param_groups
        ]
        self.optimizer = torch.optim.AdamW(groups)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lead.scheduler.lr_lambdas)
        if state:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        for run in self.runs:  # every seed reports the fused optimiser's learning rate
            run.optimizer, run.scheduler = self.optimizer, self.scheduler
        self.generators = [torch.Generator(device=self.lead.device) for _ in seeds]
        self.step = vmap(self._seed_loss, in_dims=(0, 0, 0, 0), randomness="same")

    def _stack(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Stack what trains or differs across seeds (each seed's module keeps a view of its slice);
        share the rest (each seed's module points at the lead's tensor)."""
        named = [dict(run.model.named_parameters()) | dict(run.model.named_buffers()) for run in self.runs]
        stacked: dict[str, Tensor] = {}
        shared: dict[str, Tensor] = {}
        for name, lead in named[0].items():
            tensors = [n[name] for n in named]
            trains = isinstance(lead, nn.Parameter) and lead.requires_grad
            if trains or any(not torch.equal(lead, t) for t in tensors[1:]):
                stack = torch.stack([t.detach() for t in tensors]).requires_grad_(trains)
                stacked[name] = stack
                for i, t in enumerate(tensors):
                    t.data = stack.detach()[i]
            else:
                shared[name] = lead
                for t in tensors[1:]:
                    t.data = lead.data
        return stacked, shared

    def _seed_loss(self, params: dict[str, Tensor], x: Tensor, y: Tensor, draws: dict[str, Tensor]):
        tensors = {f"model.{k}": v for k, v in params.items()} | self.shared
        return functional_call(self.seed_step, tensors, (x, y, draws))

    @property
    def live(self) -> list[int]:
        return [i for i, seed in enumerate(self.seeds) if seed not in self.failed]

    def train(self, report: FusedCallback | None) -> dict[int, SeedResult]:
        lead, checkpointer = self.lead, FusedCheckpointer(self)
        results: dict[int, SeedResult] = {}
        while lead.epoch < lead.cfg.train.epochs and self.live:
            lead.check_injected_failure()
            results = self._train_epoch()
            if report is not None:
                report(results, checkpointer)
        if not self.live:
            raise next(r for r in results.values() if isinstance(r, BaseException))
        return results

    def _train_epoch(self) -> dict[int, SeedResult]:
        runs, lead, cfg = self.runs, self.lead, self.lead.cfg
        epoch_info, orders, hashes = [], [], []
        for run in runs:
            run.ctx.epoch = run.epoch
            epoch_info.append(run.method.start_epoch(run.ctx))
            run.model.train()
            order, order_hash = run.batch_order()
            orders.append(order.to(lead.device))
            hashes.append(order_hash)
        batch, n = cfg.train.batch_size, len(runs)
        live = torch.zeros(n, dtype=torch.bool, device=lead.device)
        live[self.live] = True
        loss_sum = torch.zeros(n, device=lead.device)
        sums: dict[str, Tensor] = {}
        first_bad = torch.full((n,), -1, device=lead.device, dtype=torch.long)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=lead.device.type == "cuda" and cfg.runtime.bf16)
        start = time.perf_counter()
        for step in range(lead.steps_per_epoch):
            idx = [order[step * batch : (step + 1) * batch] for order in orders]
            xs = [run.ctx.x_train[i] for run, i in zip(runs, idx)]
            y = torch.stack([run.ctx.y_train[i] for run, i in zip(runs, idx)])
            for generator, seed in zip(self.generators, self.seeds):
                generator.manual_seed(stream_seed(seed, BODY_STREAM, lead.epoch, step))
            per_seed = [run.method.draw(run.ctx, x) for run, x in zip(runs, xs)]
            draws = {key: torch.stack([d[key] for d in per_seed]) for key in per_seed[0]}
            with torch.profiler.record_function(FUSED_STEP):
                with autocast, SeedDropout(self.generators):
                    losses, stats = self.step(self.stacked, torch.stack(xs), y, draws)
                losses = losses.float()
                bad = live & ~torch.isfinite(losses)
                first_bad = torch.where(bad & (first_bad < 0), torch.full_like(first_bad, step), first_bad)
                self.optimizer.zero_grad(set_to_none=True)
                torch.where(live & ~bad, losses, torch.zeros_like(losses)).sum().backward()
                if cfg.train.clip > 0:
                    self._clip(cfg.train.clip)
                self.optimizer.step()
                self.scheduler.step()
            loss_sum += losses.detach()
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value.detach().float()
        train_s = time.perf_counter() - start
        bad_steps = first_bad.tolist()  # the epoch's one host synchronisation
        results: dict[int, SeedResult] = {}
        for i, (run, seed) in enumerate(zip(runs, self.seeds)):
            if not live[i] or bad_steps[i] >= 0:
                if live[i]:
                    results[seed] = run.non_finite_error(bad_steps[i])
                    self.failed[seed] = f"{type(results[seed]).__name__}: {results[seed]}"
                run.epoch += 1  # a failed seed keeps pace, so every seed's checkpoint holds the same epoch
                continue
            metrics = run.epoch_metrics(
                hashes[i], epoch_info[i], loss_sum[i], {k: v[i] for k, v in sums.items()}, train_s
            )
            metrics["samples_per_s"] *= n  # every seed's samples went through in train_s
            metrics["fused_seeds"] = n
            results[seed] = run.finish_epoch(metrics)
        return results

    def _clip(self, max_norm: float) -> None:
        """``clip_grad_norm_`` per seed: each seed's gradient norm over all its parameters."""
        grads = [p.grad for p in self.stacked.values() if p.grad is not None]
        norms = torch.stack([g.flatten(1).float().square().sum(1) for g in grads]).sum(0).sqrt()
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.ndim - 1)).to(g.dtype))


class FusedCheckpointer:
    """Saves every seed's run state (as ``Checkpointer`` does for one run) and the fused optimiser."""

    def __init__(self, fused: FusedRun):
        self._fused = fused

    @property
    def failed(self) -> dict[int, str]:
        """The seeds failed so far, before a resume too, each with ``"Type: message"``; saved with the state."""
        return dict(self._fused.failed)

    def state_dict(self) -> dict[str, Any]:
        fused = self._fused
        runs = []
        for run in fused.runs:
            state = Checkpointer(run).state_dict()
            del state["optimizer"], state["scheduler"]  # the fused optimiser's, saved once below
            state["model"] = {k: v.clone() for k, v in state["model"].items()}  # views would save the whole stack
            runs.append(state)
        return {
            "seeds": list(fused.seeds),
            "runs": runs,
            "failed": dict(fused.failed),
            "optimizer": fused.optimizer.state_dict(),
            "scheduler": fused.scheduler.state_dict(),
        }

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / STATE_FILE
        torch.save(self.state_dict(), path)
        return path
