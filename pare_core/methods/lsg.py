"""``aux=lsg``: label-semantic guidance from a graph over the task's label names, for any method.

Label names (``TaskSpec.class_names``: digits' "zero".."nine", ...) are embedded once by MiniLM
(mean-pooled over word pieces, as sentence-transformers does), whatever the target backbone: the
names are text, and MiniLM is the text model every install has. Their cosine similarities, negative
ones clipped to 0, weight the graph's edges. Label names of one task are all alike to a sentence
encoder (digit names have pairwise cosines of 0.4-0.8), so a plainly normalised dense graph
over-smooths: after two propagations every class gets nearly the same prototype and the auxiliary
scores cannot separate the classes (a test checks this). The adjacency is therefore ML-GCN's
re-weighted one (Chen et al., CVPR 2019): each node keeps 1 - p of itself and takes p = 0.2 from its
neighbours, in proportion to similarity.

A 2-layer GCN maps the label embeddings to one prototype per class in the body's feature space. The
auxiliary loss scores the mean-pooled clean features of the primary model against the prototypes
(cosine similarity x a learned scale, plus a learned bias) and applies the task's label form:
softmax cross-entropy for classification, binary cross-entropy per label for multilabel tasks.
Gradients flow into both the GCN and the primary model, so semantically related classes get related
prototypes and the features are pulled towards them. The loss is ``lsg.weight`` x that term.

Dense tasks have no label names; a task without them raises a ValueError naming ``aux`` and the task.
"""

from __future__ import annotations

import functools
import hashlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pare_core.backbones import build_minilm
from pare_core.cache import atomic_path, data_root
from pare_core.config import BackboneConfig, TrialConfig
from pare_core.methods.base import Aux, TrainContext
from pare_core.tasks.base import TaskSpec

INIT_SCALE = 10.0  # initial logit scale of the cosine scores (temperature 0.1)
NEIGHBOUR_SHARE = 0.2  # ML-GCN's re-weighting p: the share of a node's update that comes from its neighbours
CACHE_VERSION = 1


@functools.lru_cache(maxsize=8)
def label_embeddings(names: tuple[str, ...]) -> Tensor:
    """(len(names), 384) MiniLM sentence embeddings of the names, float32 on CPU, cached on disk.

    Loading runs under ``fork_rng`` so a cache miss draws nothing from the global RNG: a trial's
    initialisation does not depend on whether an earlier trial filled the cache.
    """
    key = hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]
    path = data_root() / "lsg" / f"minilm_v{CACHE_VERSION}_{key}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    with torch.random.fork_rng(devices=[]):
        minilm = build_minilm(BackboneConfig(name="minilm"))
    batch = minilm.tokenizer(list(names), padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = minilm.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    emb = (hidden * mask).sum(1) / mask.sum(1)
    with atomic_path(path) as tmp:
        torch.save(emb, tmp)
    return emb


def normalized_adjacency(embeddings: Tensor, neighbour_share: float = NEIGHBOUR_SHARE) -> Tensor:
    """ML-GCN's re-weighted adjacency: each node keeps ``1 - p`` of itself and spreads ``p`` over its
    neighbours in proportion to their cosine similarity (negative similarities clipped to 0); a node
    without neighbours keeps all of itself. Rows sum to 1."""
    unit = F.normalize(embeddings, dim=-1)
    eye = torch.eye(len(embeddings), dtype=unit.dtype, device=unit.device)
    similarity = (unit @ unit.T).clamp_min(0.0) * (1 - eye)
    total = similarity.sum(1, keepdim=True)
    share = torch.where(total > 0, torch.full_like(total, neighbour_share), torch.zeros_like(total))
    return share * similarity / total.clamp_min(1e-12) + (1 - share) * eye


class LabelGraph(nn.Module):
    """2-layer GCN over label nodes -> class prototypes in the body's feature space, and the scores."""

    def __init__(self, embeddings: Tensor, hidden: int):
        super().__init__()
        self.register_buffer("nodes", embeddings.clone())
        self.register_buffer("adjacency", normalized_adjacency(embeddings))
        self.layer1 = nn.Linear(embeddings.shape[1], hidden)
        self.layer2 = nn.Linear(hidden, hidden)
        self.log_scale = nn.Parameter(torch.tensor(math.log(INIT_SCALE)))
        self.bias = nn.Parameter(torch.zeros(()))

    def prototypes(self) -> Tensor:
        h = F.relu(self.adjacency @ self.layer1(self.nodes))
        return self.adjacency @ self.layer2(h)

    def forward(self, pooled: Tensor) -> Tensor:
        """(B, hidden) features -> (B, C) logits."""
        cosine = F.normalize(pooled, dim=-1) @ F.normalize(self.prototypes(), dim=-1).T
        return self.log_scale.exp() * cosine + self.bias


class LsgAux(Aux):
    def __init__(self, cfg: TrialConfig, spec: TaskSpec):
        if spec.kind == "dense" or not spec.class_names:
            raise ValueError(
                f"aux='lsg' needs label names, but task {spec.name!r} ({spec.kind}) has none: "
                "allowed values of aux for it are none"
            )
        if len(spec.class_names) != spec.n_outputs:
            raise ValueError(
                f"aux='lsg': task {spec.name!r} names {len(spec.class_names)} labels but has {spec.n_outputs} outputs"
            )
        super().__init__(cfg, spec)

    def setup(self, ctx: TrainContext) -> None:
        embeddings = label_embeddings(tuple(self.spec.class_names))
        ctx.model.label_graph = LabelGraph(embeddings, ctx.model.backbone.hidden).to(ctx.device)

    def loss(self, ctx: TrainContext, features: Tensor, y: Tensor) -> Tensor:
        logits = ctx.model.label_graph(features.float().mean(dim=1))
        if self.spec.kind == "multilabel":
            term = F.binary_cross_entropy_with_logits(logits, y.float())
        else:
            term = F.cross_entropy(logits, y)
        return self.cfg.lsg.weight * term
