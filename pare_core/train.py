"""``fit(cfg, report)``: one training run, the same call from a test, a notebook, the CLI or a Ray trial.

Budgets are in optimiser steps (an epoch is ``train.steps_per_epoch`` steps, default one pass):
warm-up then cosine decay, per step. Validation runs every epoch; the test split is evaluated once,
after the last epoch, and never used for selection. Small datasets live on the device as tensors and
the loop does not synchronise with the host inside an epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from pare_core.backbones import build_backbone
from pare_core.capture import begin_step, capture
from pare_core.config import TrialConfig, resolve
from pare_core.embedders import plan_tokens
from pare_core.methods import Method, TrainContext, build_aux, build_method
from pare_core.methods.base import STAGE_STEPS, StepLoss
from pare_core.metrics import evaluate, loss_fn, sample_loss_fn
from pare_core.model import CrossModalModel, configure_trainable
from pare_core.sources import load_source
from pare_core.tasks import load_task
from pare_core.tasks.base import TaskData

STATE_FILE = "state.pt"
EpochCallback = Callable[[dict[str, Any], "Checkpointer"], None]  # report(metrics, checkpointer), once per epoch
# Independent random streams of one seed. Data order depends on the seed and epoch alone, the body's
# dropout on the seed and step alone, so two arms with the same seed see the same batches and masks for
# the whole run whatever their methods draw; each method draws from its own stream.
DATA_STREAM, METHOD_STREAM, BODY_STREAM = 0, 1, 2


def stream_seed(seed: int, stream: int, *position: int) -> int:
    """A seed for ``stream`` at ``position`` (e.g. epoch), independent of every other stream and position."""
    return int(np.random.SeedSequence([seed, stream, *position]).generate_state(1, dtype=np.uint64)[0] >> 1)


class NonFiniteLossError(FloatingPointError):
    pass


class Checkpointer:
    """Saves everything needed to continue a run bit-for-bit: model, optimizer, scheduler, epoch, RNG.

    Frozen parameters are left out (for the default frozen MiniLM body, 90 of the model's 91 MB): a
    resumed run rebuilds them from the same config (pretrained weights or a seeded initialisation),
    and ``Run`` refuses a checkpoint that lacks anything else."""

    def __init__(self, run: "Run"):
        self._run = run

    def state_dict(self) -> dict[str, Any]:
        run = self._run
        state = {
            "model": {k: v for k, v in run.model.state_dict().items() if k not in run.frozen},
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "epoch": run.epoch,
            "rng_torch": torch.get_rng_state(),
            "rng_method": run.ctx.method_rng.get_state(),
            "method": run.method.state_dict(),
            "stage_steps": run.stage_steps,
            "wall_s": run.wall_s(),
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        return state

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / STATE_FILE
        torch.save(self.state_dict(), path)
        return path


def load_checkpoint(directory: str | os.PathLike) -> dict[str, Any]:
    """Load a saved state with ``weights_only=True`` (no pickled code runs)."""
    return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "runtime.device='cuda' is invalid on this machine (no CUDA device): allowed values are auto, cpu"
        )
    return torch.device(name)


def fit(
    cfg: TrialConfig, report: EpochCallback | None = None, resume: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Train ``cfg`` to the end and return the last epoch's metrics (with ``test_error``).

    ``report(metrics, checkpointer)`` is called after every epoch; ``checkpointer.save(dir)`` writes
    the state that ``fit(cfg, resume=dir)`` continues from.
    """
    cfg.validate()
    run = Run(cfg, resume)
    return run.train(report)


class Run:
    """One run's objects (data, model, method, optimiser) built from a config, and, with ``resume``, restored
    from a checkpoint (a folder, or a state already loaded: a fused run's seed). ``fit`` trains it;
    ``pare_core.inspect`` rebuilds a finished run from its checkpoint to look at its gate without training."""

    def __init__(self, cfg: TrialConfig, resume: str | os.PathLike | dict[str, Any] | None):
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        self.cfg = cfg
        self.device = resolve_device(cfg.runtime.device)
        self.resumed = resume is not None
        self.started = time.perf_counter()
        self.wall_offset = 0.0  # wall time of the run before a resume
        torch.manual_seed(cfg.seed)
        self.data: TaskData = load_task(cfg.task, cfg.seed)
        spec = self.data.spec
        self.cfg = cfg = resolve(cfg, spec.kind, spec.layout)
        self.method: Method = build_method(cfg, spec)
        backbone = build_backbone(cfg.backbone, pretrained=self.method.pretrained)
        plan = plan_tokens(spec.layout, spec.input_shape, cfg.task.tokens or spec.default_tokens)
        self.model = CrossModalModel(spec, backbone, plan).to(self.device)
        source = None
        if self.method.needs_source:
            source = load_source(
                backbone,
                cfg.source,
                cfg.source.tokens or plan.n_tokens,
                seed=cfg.seed,
                grid=plan.grid if backbone.spatial and not cfg.source.tokens else None,
            )
            source = dataclasses.replace(
                source, tokens=source.tokens.to(self.device), labels=source.labels.to(self.device)
            )
        method_rng = torch.Generator(device=self.device)
        method_rng.manual_seed(stream_seed(cfg.seed, METHOD_STREAM))
        x_train, y_train = (torch.as_tensor(a).to(self.device) for a in (self.data.x_train, self.data.y_train))
        self.ctx = TrainContext(
            cfg,
            spec,
            self.model,
            self.device,
            method_rng,
            loss_fn(spec),
            sample_loss_fn(spec),
            x_train,
            y_train,
            source,
        )
        self.method.setup(self.ctx)
        self.aux = build_aux(cfg, spec)
        self.aux.setup(self.ctx)
        self.model.to(self.device)
        self.stage_metrics: dict[str, float] = {}
        if not self.resumed:
            self.stage_metrics = self.method.before_training(self.ctx)
        self.stage_steps = int(self.stage_metrics.get(STAGE_STEPS, 0))
        self.captured = cfg.runtime.capture  # pare_core.capture
        # A captured CUDA step runs AdamW as one kernel, not a launch per tensor (pare_core.capture).
        fused = True if self.captured and self.device.type == "cuda" else None
        self.optimizer = torch.optim.AdamW(configure_trainable(self.model, cfg), fused=fused)
        self.frozen = {name for name, p in self.model.named_parameters() if not p.requires_grad}
        n_train = len(x_train)
        self.steps_per_epoch = cfg.train.steps_per_epoch or math.ceil(n_train / cfg.train.batch_size)
        total = self.steps_per_epoch * cfg.train.epochs
        warmup = int(cfg.train.warmup_frac * total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: _warmup_cosine(step, warmup, total)
        )
        self.epoch = 0
        if cfg.runtime.compile:
            self.model.backbone.forward = torch.compile(self.model.backbone.forward)
        self.step_loss: StepLoss = capture(self._step_loss, self.device) if self.captured else self._step_loss
        self.forward: Callable[[torch.Tensor], torch.Tensor] = (
            capture(self.model, self.device) if self.captured else self.model
        )
        if resume is not None:
            self._restore(resume if isinstance(resume, dict) else load_checkpoint(resume))

    def _restore(self, state: dict[str, Any]) -> None:
        missing, unexpected = self.model.load_state_dict(state["model"], strict=False)
        if set(missing) - self.frozen or unexpected:
            raise RuntimeError(
                f"the checkpoint does not fit this run's model: missing {sorted(set(missing) - self.frozen)[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        if "optimizer" in state:  # a fused run's seeds share one optimiser, saved apart (pare_core.fusion)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        torch.set_rng_state(state["rng_torch"])
        self.ctx.method_rng.set_state(state["rng_method"])
        self.method.load_state_dict(state["method"])
        self.stage_steps = int(state["stage_steps"])
        self.wall_offset = float(state["wall_s"])
        self.started = time.perf_counter()
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])

    # -- the loop ------------------------------------------------------------------------------
    def train(self, report: EpochCallback | None, until: int | None = None) -> dict[str, Any]:
        """Train to the last epoch, or only to epoch ``until`` of the full schedule (the cost probe times
        a run's first epochs with its curriculum and gate phases as the whole run has them)."""
        checkpointer = Checkpointer(self)
        metrics: dict[str, Any] = {}
        while self.epoch < (until or self.cfg.train.epochs):
            self.check_injected_failure()
            metrics = self.finish_epoch(self._train_epoch())
            if report is not None:
                report(metrics, checkpointer)
        return metrics

    def check_injected_failure(self) -> None:
        if self.cfg.runtime.fail_at_epoch == self.epoch + 1 and not self.resumed:
            raise RuntimeError(f"injected failure at epoch {self.epoch + 1} (runtime.fail_at_epoch)")

    def finish_epoch(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """After an epoch's last step: count it, then add the method's, validation and (last epoch) test metrics."""
        self.epoch += 1
        metrics.update(self.method.end_epoch(self.ctx))
        metrics.update(self._evaluate("val", self.data.x_val, self.data.y_val))
        if self.epoch == 1:
            metrics.update(self.stage_metrics)
        if self.epoch == self.cfg.train.epochs:
            metrics.update(self.final_metrics())
        metrics["optimizer_steps"] = self.stage_steps + self.epoch * self.steps_per_epoch
        metrics["wall_s"] = self.wall_s()
        return metrics

    def _train_epoch(self) -> dict[str, Any]:
        cfg, ctx, model = self.cfg, self.ctx, self.model
        ctx.epoch = self.epoch
        epoch_info = self.method.start_epoch(ctx)
        model.train()
        batch = cfg.train.batch_size
        order, order_hash = self.batch_order()
        order = order.to(self.device)
        sums: dict[str, torch.Tensor] = {}
        loss_sum = torch.zeros((), device=self.device)
        first_bad = torch.full((), -1, device=self.device, dtype=torch.long)
        start = time.perf_counter()
        for step in range(self.steps_per_epoch):
            idx = order[step * batch : (step + 1) * batch]
            x, y = ctx.x_train[idx], ctx.y_train[idx]
            torch.manual_seed(stream_seed(cfg.seed, BODY_STREAM, self.epoch, step))  # dropout masks
            draws = self.method.draw(ctx, x)
            if self.captured:
                begin_step()
            loss, stats = self.step_loss(x, y, draws)
            bad = ~torch.isfinite(loss)
            first_bad = torch.where(bad & (first_bad < 0), torch.full_like(first_bad, step), first_bad)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.detach()
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value.detach().float()
        bad_step = int(first_bad)  # the epoch's one host synchronisation
        if bad_step >= 0:
            raise self.non_finite_error(bad_step)
        return self.epoch_metrics(order_hash, epoch_info, loss_sum, sums, time.perf_counter() - start)

    def _step_loss(
        self, x: torch.Tensor, y: torch.Tensor, draws: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's fp32 loss (the method's and the auxiliary one) and its stats, from the batch and the
        step's draws alone: what ``runtime.capture`` compiles, and with it the backward."""
        with self.autocast():
            out = self.method.loss(self.ctx, x, y, draws)
            aux_loss = self.aux.loss(self.ctx, out.features, y)
        loss = out.loss.float() if aux_loss is None else out.loss.float() + aux_loss.float()
        return loss, out.stats

    def autocast(self) -> torch.autocast:
        """bf16 autocast on CUDA with ``runtime.bf16``; off elsewhere."""
        return torch.autocast(
            "cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda" and self.cfg.runtime.bf16
        )

    def non_finite_error(self, step: int) -> NonFiniteLossError:
        return NonFiniteLossError(
            f"non-finite training loss at epoch {self.epoch + 1}, step {step + 1} "
            f"(global step {self.epoch * self.steps_per_epoch + step + 1})"
        )

    def epoch_metrics(
        self,
        order_hash: int,
        epoch_info: dict[str, float],
        loss_sum: torch.Tensor,
        sums: dict[str, torch.Tensor],
        train_s: float,
    ) -> dict[str, Any]:
        """An epoch's training metrics from its step sums; ``batch_order_hash`` fingerprints the epoch's
        batches (arms paired by seed share it)."""
        metrics = {
            "epoch": self.epoch + 1,
            "train_loss": float(loss_sum) / self.steps_per_epoch,
            "batch_order_hash": order_hash,
        }
        metrics.update(epoch_info)
        metrics.update({key: float(value) / self.steps_per_epoch for key, value in sums.items()})
        metrics["samples_per_s"] = self.steps_per_epoch * self.cfg.train.batch_size / train_s
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        metrics["epoch_s"] = train_s
        return metrics

    def batch_order(self) -> tuple[torch.Tensor, int]:
        """This epoch's sample order and its fingerprint."""
        order = self._batch_order(self.steps_per_epoch * self.cfg.train.batch_size)
        return order, int.from_bytes(hashlib.blake2b(order.numpy().tobytes(), digest_size=6).digest(), "big")

    def _batch_order(self, n_samples: int) -> torch.Tensor:
        """Concatenated random permutations: every batch is full, every sample is seen once per pass.

        Drawn on the CPU from the seed and epoch alone (the data stream), so it is the same in every
        arm and on every device, and a resumed run needs no state to continue it."""
        n = len(self.ctx.x_train)
        rng = torch.Generator().manual_seed(stream_seed(self.cfg.seed, DATA_STREAM, self.epoch))
        perms = [torch.randperm(n, generator=rng) for _ in range(math.ceil(n_samples / n))]
        return torch.cat(perms)[:n_samples]

    def wall_s(self) -> float:
        """Wall-clock seconds of the run so far, set-up and stages included, across resumes."""
        return self.wall_offset + time.perf_counter() - self.started

    @torch.no_grad()
    def predict(self, x) -> torch.Tensor:
        """The model's fp32 outputs, in chunks of ``train.eval_batch_size``. A captured run pads the last
        chunk with copies of its last sample (one static shape; in eval mode samples do not interact)."""
        self.model.eval()
        x = torch.as_tensor(x)
        size = self.cfg.train.eval_batch_size
        outputs = []
        for chunk in x.split(size):
            n = len(chunk)
            if self.captured:
                chunk = torch.cat([chunk, chunk[-1:].expand(size - n, *chunk.shape[1:])])
                begin_step()
            with self.autocast():
                out = self.forward(chunk.to(self.device))[:n]
            outputs.append(out.to(torch.float32, copy=True))  # a CUDA graph's output is overwritten by its next replay
        return torch.cat(outputs)

    def _evaluate(self, split: str, x, y) -> dict[str, float]:
        start = time.perf_counter()
        result = evaluate(self.data.spec, self.predict(x).cpu(), torch.as_tensor(y))
        out = {f"{split}_{name}": value for name, value in result.items()}
        out[f"{split}_s"] = time.perf_counter() - start
        return out

    def final_metrics(self) -> dict[str, float]:
        from pare_core.tasks.baselines import baselines

        out = self._evaluate("test", self.data.x_test, self.data.y_test)
        out.update({f"baseline/{name}": value for name, value in baselines(self.data).items()})
        return out


def _warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
