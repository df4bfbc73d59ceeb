"""The cross-modal model: target embedder -> pretrained body -> task head.

Methods attach their own modules (PaRe's gate and source head, LSG's graph network) as children of
this module, so one ``state_dict`` checkpoints everything.
"""

from __future__ import annotations

from torch import Tensor, nn

from pare_core.backbones import Backbone
from pare_core.config import TrialConfig
from pare_core.embedders import DenseHead, PooledHead, TargetEmbedder, TokenPlan
from pare_core.tasks.base import TaskSpec


class CrossModalModel(nn.Module):
    def __init__(self, spec: TaskSpec, backbone: Backbone, plan: TokenPlan):
        super().__init__()
        self.spec, self.plan = spec, plan
        mean, std = backbone.token_stats()
        self.embedder = TargetEmbedder(plan, backbone.token_dim, mean, std)
        self.backbone = backbone
        if spec.kind == "dense":
            out_channels, *out_size = spec.output_shape
            self.head: nn.Module = DenseHead(plan, backbone.hidden, out_channels, spec.input_shape[1:], tuple(out_size))
        else:
            self.head = PooledHead(backbone.hidden, spec.n_outputs)

    def embed(self, x: Tensor) -> Tensor:
        return self.embedder(x)

    def encode(self, tokens: Tensor) -> Tensor:
        return self.backbone(tokens, self.plan.grid)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encode(self.embed(x)))


# finetune.body (config.Body) -> the backbone parameter groups (Backbone.parameter_groups) that train.
TRAINED_GROUPS: dict[str, tuple[str, ...]] = {
    "full": ("norm", "position", "other"),
    "frozen": ("norm", "position"),
    "layernorm": ("norm",),
}


def configure_trainable(model: CrossModalModel, cfg: TrialConfig) -> list[dict]:
    """Freeze the body according to ``finetune.body`` and return AdamW parameter groups.

    full: everything trains, the pretrained body at ``finetune.body_lr``;
    frozen: the body's attention/FFN weights are frozen, its norms and position embeddings train
    (FPT-style: Lu et al. 2021, "Pretrained Transformers as Universal Computation Engines"; the regime
    where transfer showed in this project's first experiments, README); layernorm: only the body's norms.
    New modules (embedder, heads, gate, ...) always train at ``train.lr``.
    """
    groups = model.backbone.parameter_groups()
    body_ids = {id(p) for ps in groups.values() for p in ps}
    body_all = {id(p) for p in model.backbone.parameters()}
    new = [p for p in model.parameters() if id(p) not in body_all and p.requires_grad]
    regime = cfg.finetune.body
    trainable_body = TRAINED_GROUPS[regime]
    body_lr = cfg.finetune.body_lr if regime == "full" else cfg.train.lr
    body: list[nn.Parameter] = []
    for name, params in groups.items():
        for p in params:
            p.requires_grad_(name in trainable_body)
            if name in trainable_body:
                body.append(p)
    for p in model.backbone.parameters():  # excluded tables (word embeddings, replaced stem) stay frozen
        if id(p) not in body_ids:
            p.requires_grad_(False)
    return _decay_split(new, cfg.train.lr, cfg.train.weight_decay) + _decay_split(body, body_lr, cfg.train.weight_decay)


def _decay_split(params: list[nn.Parameter], lr: float, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: norms, biases and embeddings' gains are not decayed."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [
        g
        for g in (
            {"params": decay, "lr": lr, "weight_decay": weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
        )
        if g["params"]
    ]
