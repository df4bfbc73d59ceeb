"""PaRe's source data: labelled samples of the backbone's *pretraining* modality, as input tokens.

PaRe mixes source tokens into target samples (patch replacement), so source samples must already be
in the backbone's input-token space (docs/methods.md; BIT-DA/PaRe ``src/data_loaders_PaRe.py``):

- text backbones: real English sentences (``pare_core.corpora``) through the backbone's own
  word-embedding layer (ORCA/PaRe used CoNLL-2003 text through RoBERTa's embedding layer). Word
  pieces of a class form one stream in seeded sentence order, cut into chunks of ``n_tokens``.
  Position embeddings are not added here: ``Backbone.forward`` adds them to source and target tokens
  alike.
- vision backbones: crops of natural photographs (``pare_core.corpora``), resized to
  ``stride * grid`` pixels and passed through the backbone's pretrained stem / patch embedding (PaRe
  used CIFAR-10 through Swin's patch embedding).

The corpus is cached, so a trial's ``load_source`` takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pare_core.backbones import Backbone, TextBackbone, VisionBackbone, squarest_grid
from pare_core.config import SourceConfig
from pare_core.corpora import PHOTOS, TEXT_PACKAGES, natural_crops

STEM_BATCH = 1024  # crops per stem pass


@dataclass
class SourceData:
    tokens: Tensor  # (N, T_src, token_dim) float32, in the backbone's input-token space
    labels: Tensor  # (N,) int64
    n_classes: int
    class_names: list[str]
    ids: Tensor | None = None  # text: (N, T_src) token ids the tokens were looked up from; vision: None


def load_source(
    backbone: Backbone, cfg: SourceConfig, n_tokens: int, seed: int = 0, grid: tuple[int, int] | None = None
) -> SourceData:
    """Up to ``cfg.size`` class-balanced source samples of ``n_tokens`` tokens each, on CPU.

    ``seed`` picks the samples; the same installed files and seed give the same data. ``grid``
    (vision only) is the token grid, default the squarest factorisation of ``n_tokens``. Text
    sources hold fewer samples than ``cfg.size`` when the corpus has fewer chunks of ``n_tokens``
    word pieces (about 164k word pieces for MiniLM: 5000 samples of up to 32 tokens).
    """
    if isinstance(backbone, TextBackbone):
        return _text_source(backbone, cfg.size, n_tokens, seed)
    if isinstance(backbone, VisionBackbone):
        return _image_source(backbone, cfg.size, grid or squarest_grid(n_tokens), seed)
    raise TypeError(f"no source data for backbone {backbone.name} of modality {backbone.modality!r}")


# -- text ------------------------------------------------------------------------------------------


def _text_source(backbone: TextBackbone, size: int, n_tokens: int, seed: int) -> SourceData:
    rng = np.random.default_rng(seed)
    corpus = backbone.corpus_ids()
    chunks, labels = [], []
    for label, sentences in enumerate(corpus):
        stream = np.concatenate([sentences[i] for i in rng.permutation(len(sentences))])
        available = stream[: len(stream) // n_tokens * n_tokens].reshape(-1, n_tokens)
        quota = size // len(corpus) + (label < size % len(corpus))
        chunks.append(available[:quota])
        labels.append(np.full(len(chunks[-1]), label))
    order = rng.permutation(sum(len(c) for c in chunks))
    ids = torch.from_numpy(np.concatenate(chunks)[order]).long()
    return SourceData(
        tokens=backbone.embed_ids(ids).cpu(),
        labels=torch.from_numpy(np.concatenate(labels)[order]).long(),
        n_classes=len(corpus),
        class_names=list(TEXT_PACKAGES),
        ids=ids,
    )


# -- vision ----------------------------------------------------------------------------------------


def _image_source(backbone: VisionBackbone, size: int, grid: tuple[int, int], seed: int) -> SourceData:
    images, labels = natural_crops(size, (grid[0] * backbone.stride, grid[1] * backbone.stride), seed)
    tokens = torch.cat([backbone.stem(batch).cpu() for batch in images.split(STEM_BATCH)])
    return SourceData(tokens=tokens, labels=labels, n_classes=len(PHOTOS), class_names=list(PHOTOS))
