"""ORCA (Shen et al., "Cross-Modal Fine-Tuning: Align then Refine", ICML 2023).

Stage 1 (align): the target embedder is trained alone to bring embedded target data close to
source data under ``align.objective`` (``pare_core.methods.align``). Stage 2 (refine): ordinary
fine-tuning of embedder, body and head (the training loop; ``finetune.body`` picks the regime), with
the task loss only: after alignment ORCA is plain fine-tuning.
"""

from __future__ import annotations

from pare_core.methods.align import align_embedder
from pare_core.methods.base import Method, TrainContext


class OrcaMethod(Method):
    needs_source = True  # alignment targets are source-modality features

    def before_training(self, ctx: TrainContext) -> dict[str, float]:
        return align_embedder(ctx)
