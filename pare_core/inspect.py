"""Look inside a saved PaRe model: which tokens the gate scores high and which it replaces.

Used by ``analysis`` for the gate figure; everything is rebuilt from the trial's flat config and its
checkpoint (no Ray needed).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from pare_core.config import TrialConfig, allowed_keys
from pare_core.gate import select


@torch.no_grad()
def gate_map(
    checkpoint_dir: str | os.PathLike, config: dict[str, Any], sample: int = 0, epoch: int | None = None
) -> dict[str, Any]:
    """Gate scores over token positions of one validation sample, and the tokens the checkpoint's
    gate replaces (hard selection, as after the warm phase) with the curriculum's k at 1-based
    ``epoch`` (default: the checkpoint's last trained epoch; the curriculum often ends at k = 0).

    ``config`` is the trial's flat config (e.g. a Ray ``params.json``); unknown keys are ignored. A fused
    checkpoint (``pare_core.fusion``) shows the gate of the config's ``seed``.
    """
    from pare_core.fusion import seed_state  # torch and the models: imported only when a gate map is drawn
    from pare_core.train import Run, load_checkpoint

    keys = set(allowed_keys())
    cfg = TrialConfig.from_flat({k: v for k, v in config.items() if k in keys})
    run = Run(cfg, resume=seed_state(load_checkpoint(checkpoint_dir), cfg.seed))
    model = run.model
    if not hasattr(model, "gate"):
        raise ValueError(f"method={cfg.method!r} has no gate: allowed methods for a gate map are pare")
    model.eval()
    x = torch.as_tensor(run.data.x_val[sample : sample + 1]).to(run.device)
    tokens = model.embed(x)
    logits = model.gate(tokens)
    run.ctx.epoch = max((epoch if epoch is not None else run.epoch) - 1, 0)
    info = run.method.start_epoch(run.ctx)
    source = run.ctx.source.tokens[:1]
    selection = select(logits, model.gate(source), run.method.k, cfg.gate, warm=False, generator=run.ctx.method_rng)
    return {
        "scores": torch.sigmoid(logits)[0].float().cpu().numpy(),
        "replaced": selection.target[0].cpu().numpy() > 0.5,
        "k": int(info["k"]),
        "epoch": run.ctx.epoch + 1,
        "selection": cfg.gate.selection,
        "threshold": cfg.gate.threshold,
        "grid": run.model.plan.grid,
        "input": np.asarray(run.data.x_val[sample]),
        "task": cfg.task.name,
    }
