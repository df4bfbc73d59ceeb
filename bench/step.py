"""Step time of a training step against a reference step, measured side by side in one process.

Not a test: prints ratios for the closing note / README. The two arms run interleaved (one repeat of
each, then the next), same task, backbone, batch and tokens; the table shows medians over repeats.
PaRe keeps k > 0 in every epoch (constant curriculum), so every PaRe step is a mixing step; the first
half of the epochs is PaRe's Gumbel straight-through warm phase, the rest hard top-k. A phase's first
epoch pays one-off costs (warm-up; with ``runtime.capture``, compiling the phase's graph), so it is left
out of the phase's median when the phase has other epochs. Each arm's whole run (set-up and compiling
included) is timed too: with ``runtime.capture`` the run time against eager's is what capture costs
before it pays (``bench/gpu_report.py`` turns it into a break-even step count).

- default: PaRe / fine-tune, what mixing costs per step.
- ``--structure official``: the official code's PaRe step / ours. The official step embeds the source
  samples every step (BIT-DA/PaRe ``src/main_PaRe.py``, ``train_one_epoch``:
  ``model.embedder_source(x_src)``) and runs in fp32; ours embeds them once, when the source set is
  loaded, and uses bf16 autocast on CUDA (fp32 on CPU). Both make the clean and the mixed pass as two
  backbone passes, clean first. Text backbones only: the official arm looks the picked samples' ids
  (``SourceData.ids``) up in the word-embedding layer each step; vision sources keep no images. (The
  official 1D code mixes precomputed embedding-layer outputs, ``text_xs_32.npy``: embedding every step
  is its 2D code's structure, applied here to the text source. Its per-sample Python loops that write
  the mixed tokens are not modelled: the mixing itself is ours in both arms.)
- ``--bare``: fine-tune / the bare body's forward + backward at the same batch and tokens (every body
  weight frozen, the input tokens requiring grad): how close the training step is to the limit the
  backbone sets.

    python bench/step.py [--repeats 3] [--epochs 4] [--structure official | --bare] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from typing import Callable
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from pare_core import train  # noqa: E402
from pare_core.capture import begin_step, capture  # noqa: E402
from pare_core.config import TrialConfig, parse_sets  # noqa: E402
from pare_core.methods.base import TrainContext  # noqa: E402
from pare_core.methods.pare import PareMethod  # noqa: E402

Epochs = list[tuple[float, bool]]  # per epoch: (ms per optimiser step, PaRe's warm phase)
Timed = tuple[Epochs, float, int]  # the epochs, the whole run's seconds, optimiser steps per epoch


class EmbeddedEachStep:
    """Stands in for ``SourceData.tokens``: indexing it looks the picked samples' ids up in the
    backbone's word-embedding layer, so source tokens are embedded every step, as the official code does."""

    def __init__(self, backbone, ids: Tensor):
        self.backbone, self.ids = backbone, ids
        self.shape = torch.Size((*ids.shape, backbone.token_dim))  # what the tokens tensor would have

    def __getitem__(self, idx: Tensor) -> Tensor:
        return self.backbone.embed_ids(self.ids[idx])


class OfficialStepPare(PareMethod):
    """Our PaRe step with the official code's source handling: source samples embedded every step."""

    def setup(self, ctx: TrainContext) -> None:
        super().setup(ctx)
        if ctx.source.ids is None:
            raise SystemExit(
                f"--structure official is not supported for the vision backbone {ctx.model.backbone.name}: "
                "its source data keeps stem tokens, not the images to embed each step (text backbones only)"
            )
        tokens = EmbeddedEachStep(ctx.model.backbone, ctx.source.ids.to(ctx.device))
        ctx.source = dataclasses.replace(ctx.source, tokens=tokens)


def fit_ms(flat: dict, method: type[PareMethod] | None = None) -> Timed:
    """Milliseconds per optimiser step of a real ``fit``, per epoch; ``method`` replaces the configured class.

    With ``runtime.capture`` every fit compiles afresh, as a trial does in its own process (dynamo's cache
    is reset first; inductor's on-disk cache may still serve a later repeat)."""
    cfg = TrialConfig.from_flat(flat)
    out: Epochs = []
    if cfg.runtime.capture:
        torch._dynamo.reset()

    def report(metrics: dict, _checkpointer) -> None:
        ms = 1000.0 * cfg.train.batch_size / metrics["samples_per_s"]
        out.append((ms, bool(metrics.get("gate_warm", 0.0))))

    with mock.patch.object(train, "build_method", method or train.build_method):
        final = train.fit(cfg, report)
    return out, final["wall_s"], final["optimizer_steps"] // cfg.train.epochs


def bare_ms(flat: dict) -> Timed:
    """The bare body at the run's batch and tokens: forward + backward, every body weight frozen, the
    input tokens (one real training batch, embedded once) requiring grad; as many steps per epoch as ``fit``.
    With ``runtime.capture`` the body's forward is compiled as the captured step is (``pare_core.capture``)."""
    started = time.perf_counter()
    run = train.Run(TrialConfig.from_flat(flat), resume=None)
    model, cfg = run.model, run.cfg
    model.backbone.requires_grad_(False)
    model.train()  # dropout as in training
    with torch.no_grad():
        tokens = model.embed(run.ctx.x_train[: cfg.train.batch_size])
    tokens.requires_grad_(True)
    encode = capture(model.encode, run.device) if cfg.runtime.capture else model.encode
    out: Epochs = []
    for _ in range(cfg.train.epochs):
        start = time.perf_counter()
        for _ in range(run.steps_per_epoch):
            tokens.grad = None
            if cfg.runtime.capture:
                begin_step()
            with run.autocast():
                features = encode(tokens)
            features.float().sum().backward()
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        out.append((1000.0 * (time.perf_counter() - start) / run.steps_per_epoch, False))
    return out, time.perf_counter() - started, run.steps_per_epoch


def phases(runs: dict[str, list[Epochs]]) -> dict[str, list[int]]:
    """Epoch indices of each phase, from PaRe's warm flags (all one phase without PaRe); a phase's first
    epoch is left out when the phase has other epochs."""
    flags = next(([w for _, w in run] for repeats in runs.values() for run in repeats if any(w for _, w in run)), [])
    n_epochs = len(next(iter(runs.values()))[0])
    flags = flags or [False] * n_epochs
    names = {True: "warm: Gumbel ST", False: "hard top-k"} if any(flags) else {False: "steady"}
    out = {}
    for warm, name in names.items():
        idx = [i for i, w in enumerate(flags) if w == warm]
        idx = idx[1:] if len(idx) > 1 else idx
        if idx:
            span = f"epoch {idx[0] + 1}" if len(idx) == 1 else f"epochs {idx[0] + 1}-{idx[-1] + 1}"
            out[f"{name} ({span})"] = idx
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--set", action="append", default=[])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--structure", choices=("official",), help="the official code's PaRe step / ours")
    mode.add_argument("--bare", action="store_true", help="fine-tune / the bare body's forward + backward")
    args = parser.parse_args()
    base = {"train.epochs": args.epochs, "gate.warm_frac": 0.5, "curriculum.shape": "constant"}
    base.update(parse_sets(args.set))
    pare, finetune = {**base, "method": "pare"}, {**base, "method": "finetune"}
    arms: dict[str, Callable[[], Timed]]  # the numerator first
    if args.structure == "official":
        arms = {
            "official": lambda: fit_ms({**pare, "runtime.bf16": False}, OfficialStepPare),
            "ours": lambda: fit_ms(pare),
        }
        note = (
            "both: clean and mixed batches as two backbone passes, clean first; official: source ids embedded "
            "every step, fp32; ours: source tokens embedded once at load, bf16 autocast on CUDA (fp32 on CPU)"
        )
    elif args.bare:
        arms = {"finetune": lambda: fit_ms(finetune), "bare body": lambda: bare_ms(finetune)}
        note = "bare body: forward + backward of the body alone, body weights frozen, input tokens requiring grad"
    else:
        arms = {"pare": lambda: fit_ms(pare), "finetune": lambda: fit_ms(finetune)}
        note = "pare: clean and mixed batches as two backbone passes, clean first"
    runs: dict[str, list[Epochs]] = {name: [] for name in arms}
    run_s: dict[str, list[float]] = {name: [] for name in arms}
    steps_per_epoch = 0
    for _ in range(args.repeats):
        for name, arm in arms.items():
            epochs, seconds, steps_per_epoch = arm()
            runs[name].append(epochs)
            run_s[name].append(seconds)
    top, bottom = arms
    ms = {
        phase: {name: statistics.median(run[i][0] for run in repeats for i in idx) for name, repeats in runs.items()}
        for phase, idx in phases(runs).items()
    }
    cfg = TrialConfig.from_flat(pare)
    print(
        f"task {cfg.task.name}, backbone {cfg.backbone.name}, body={cfg.finetune.body}, batch {cfg.train.batch_size}, "
        f"curriculum ratio {cfg.curriculum.start}, threads {torch.get_num_threads()}, "
        f"device {train.resolve_device(cfg.runtime.device)}, {args.repeats} repeats interleaved"
    )
    print(note)
    print(f"| phase | {top} ms/step | {bottom} ms/step | ratio {top}/{bottom} |\n|---|---|---|---|")
    for phase, row in ms.items():
        print(f"| {phase} | {row[top]:.1f} | {row[bottom]:.1f} | {row[top] / row[bottom]:.2f} |")
    ratios = {phase: row[top] / row[bottom] for phase, row in ms.items()}
    print(
        json.dumps(
            {
                "ratio": f"{top}/{bottom}",
                "ratios": ratios,
                "ms": ms,
                "run_s": run_s,
                "epochs": args.epochs,
                "steps_per_epoch": steps_per_epoch,
                "overrides": args.set,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
