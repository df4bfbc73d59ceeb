"""ORCA (Shen et al., "Cross-Modal Fine-Tuning: Align then Refine", ICML 2023).

Stage 1 (align): the target embedder is trained alone to bring embedded target data close to
source data under ``align.objective`` (``pare_core.methods.align``). Stage 2 (refine): ordinary
fine-tuning of embedder, body and head (the training loop; ``finetune.body`` picks the regime), with
the task loss only: after alignment ORCA is plain fine-tuning.
"""

from __future__ import annotations

from pare_core.config import TrialConfig
from pare_core.methods.align import align_embedder
from pare_core.methods.base import Method, TrainContext
from pare_core.tasks.base import TaskSpec


class OrcaMethod(Method):
    name = "orca"
    needs_source = True  # alignment targets are source-modality features

    def __init__(self, cfg: TrialConfig, spec: TaskSpec):
        if cfg.align.epochs < 1:
            raise ValueError(f"method='orca' needs align.epochs >= 1 (the official code uses 60), got "
                             f"align.epochs={cfg.align.epochs}: without alignment ORCA is method='finetune'")
        super().__init__(cfg, spec)

    def before_training(self, ctx: TrainContext) -> dict[str, float]:
        return align_embedder(ctx)
