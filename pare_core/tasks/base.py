"""What a task is: a spec (shapes, loss, metric, what it stands in for) and seeded numpy splits.

Tasks return plain numpy arrays; ``pare_core.train`` moves them to the device once (small tasks live
there as tensors). Inputs are channel-first: 1D ``(N, C, L)`` or 2D ``(N, C, H, W)``.
Targets: class ids ``(N,)`` int64 (classification), ``(N, n_labels)`` float 0/1 (multilabel),
``(N, C_out, L)`` / ``(N, C_out, H, W)`` float (dense: fields, masks, PDE solutions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TaskSpec:
    name: str
    modality: str  # e.g. "image", "dna", "ecg", "tabular", "pde", "audio", "satellite"
    kind: str  # classification | multilabel | dense
    layout: str  # 1d | 2d: how inputs are tokenised (1D: conv-stack chunks; 2D: patches)
    input_shape: tuple[int, ...]  # (C, L) or (C, H, W), without the batch dimension
    n_outputs: int  # classes, labels, or output channels of a dense target
    loss: str  # ce | bce | mse | rel_l2
    metric: str  # accuracy | macro_f1 | auroc | map | rel_l2 | nrmse  (error = NAS-Bench-360 convention)
    stands_in_for: str  # the paper task this replaces, e.g. "NB360 DeepSEA"
    default_tokens: int  # rich tokens: 8-16 raw values per token learned; 1-4 did not
    source: str = ""  # where the data comes from (package / generator), for the task table
    output_shape: tuple[int, ...] = ()  # dense targets: (C_out, L) or (C_out, H, W)
    class_names: tuple[str, ...] = ()  # label names (used by the LSG auxiliary loss)


@dataclass
class TaskData:
    spec: TaskSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    extras: dict = field(default_factory=dict)

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.x_train), len(self.x_val), len(self.x_test)
