"""Target embedders: raw inputs -> tokens in the backbone's input space, and dense heads back.

The ORCA/PaRe recipe: a 1D conv stack (kernel = stride) or 2D patch projection, then a LayerNorm.
Two lessons from the feasibility experiments (docs/design-notes.md) are built in:
- tokens must be *rich*: 8-16 tokens of several raw values learned, tokens of 1-4 values did not;
  the number of tokens per sample is a config key (``task.tokens``);
- the LayerNorm's gain/bias start at the per-dimension std/mean of the backbone's own input tokens,
  so target tokens have the scale of the tokens the body was pretrained on (unscaled they were ~35x
  the position embeddings and position information was drowned out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class TokenPlan:
    """How one sample is cut into tokens."""

    layout: str  # 1d | 2d
    n_tokens: int
    values_per_token: int
    patch: tuple[int, ...]  # (s,) for 1D, (ph, pw) for 2D
    grid: tuple[int, int]  # token grid; (1, T) for 1D sequences
    padded: tuple[int, ...]  # padded spatial size: (L',) or (H', W')


def plan_tokens(layout: str, input_shape: tuple[int, ...], n_tokens: int) -> TokenPlan:
    """Split ``input_shape`` (C, L) or (C, H, W) into about ``n_tokens`` equal chunks/patches."""
    if n_tokens < 1:
        raise ValueError(f"task.tokens={n_tokens} is invalid: allowed values are >= 1")
    if layout == "1d":
        channels, length = input_shape
        n_tokens = min(n_tokens, length)
        stride = math.ceil(length / n_tokens)
        n_tokens = math.ceil(length / stride)
        return TokenPlan("1d", n_tokens, channels * stride, (stride,), (1, n_tokens), (n_tokens * stride,))
    if layout == "2d":
        channels, height, width = input_shape
        gh, gw = _grid(n_tokens, height, width)
        ph, pw = math.ceil(height / gh), math.ceil(width / gw)
        gh, gw = math.ceil(height / ph), math.ceil(width / pw)
        return TokenPlan("2d", gh * gw, channels * ph * pw, (ph, pw), (gh, gw), (gh * ph, gw * pw))
    raise ValueError(f"layout={layout!r} is invalid: allowed values are 1d, 2d")


def _grid(n_tokens: int, height: int, width: int) -> tuple[int, int]:
    """The factorisation gh*gw = n_tokens whose patches are closest to square."""
    best = (1, n_tokens)
    best_cost = math.inf
    for gh in range(1, n_tokens + 1):
        if n_tokens % gh:
            continue
        gw = n_tokens // gh
        if gh > height or gw > width:
            continue
        cost = abs(math.log((height / gh) / (width / gw)))
        if cost < best_cost:
            best, best_cost = (gh, gw), cost
    return best


def tokenize(x: Tensor, plan: TokenPlan) -> Tensor:
    """(B, C, L) or (B, C, H, W) -> (B, T, values_per_token), zero-padding the tail."""
    if plan.layout == "1d":
        (stride,) = plan.patch
        x = F.pad(x, (0, plan.padded[0] - x.shape[-1]))
        b, c, _ = x.shape
        return x.reshape(b, c, plan.n_tokens, stride).permute(0, 2, 1, 3).reshape(b, plan.n_tokens, c * stride)
    ph, pw = plan.patch
    gh, gw = plan.grid
    x = F.pad(x, (0, plan.padded[1] - x.shape[-1], 0, plan.padded[0] - x.shape[-2]))
    b, c, _, _ = x.shape
    x = x.reshape(b, c, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, gh * gw, c * ph * pw)


def untokenize(tokens: Tensor, plan: TokenPlan, channels: int, out_size: tuple[int, ...]) -> Tensor:
    """Inverse of ``tokenize`` for dense outputs: (B, T, channels*patch) -> (B, channels, *out_size)."""
    b = tokens.shape[0]
    if plan.layout == "1d":
        (stride,) = plan.patch
        x = tokens.reshape(b, plan.n_tokens, channels, stride).permute(0, 2, 1, 3).reshape(b, channels, -1)
        return x[..., : out_size[0]]
    ph, pw = plan.patch
    gh, gw = plan.grid
    x = tokens.reshape(b, gh, gw, channels, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, channels, gh * ph, gw * pw)
    return x[..., : out_size[0], : out_size[1]]


class TargetEmbedder(nn.Module):
    """Linear projection of each raw chunk to the backbone's token size, then a scale-matched LayerNorm."""

    def __init__(self, plan: TokenPlan, token_dim: int, token_mean: Tensor, token_std: Tensor):
        super().__init__()
        self.plan = plan
        self.proj = nn.Linear(plan.values_per_token, token_dim)
        nn.init.xavier_uniform_(self.proj.weight, gain=math.sqrt(2.0))  # the ORCA/PaRe conv init
        nn.init.zeros_(self.proj.bias)
        self.norm = nn.LayerNorm(token_dim)
        with torch.no_grad():
            self.norm.weight.copy_(token_std)
            self.norm.bias.copy_(token_mean)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(tokenize(x, self.plan)))


class DenseHead(nn.Module):
    """One linear map per token to its patch of output values, folded back into the field."""

    def __init__(
        self, plan: TokenPlan, hidden: int, out_channels: int, in_size: tuple[int, ...], out_size: tuple[int, ...]
    ):
        super().__init__()
        self.plan, self.out_channels = plan, out_channels
        self.in_size, self.out_size = tuple(in_size), tuple(out_size)
        self.proj = nn.Linear(hidden, out_channels * math.prod(plan.patch))

    def forward(self, features: Tensor) -> Tensor:
        field = untokenize(self.proj(features), self.plan, self.out_channels, self.in_size)
        if self.out_size != self.in_size:  # e.g. a PDE solution sampled on a finer grid than its input
            mode = "linear" if len(self.out_size) == 1 else "bilinear"
            field = F.interpolate(field, size=self.out_size, mode=mode, align_corners=False)
        return field


class PooledHead(nn.Module):
    """Mean over tokens, then a linear classifier (ORCA/PaRe's adaptive-pool + Linear)."""

    def __init__(self, hidden: int, n_outputs: int):
        super().__init__()
        self.proj = nn.Linear(hidden, n_outputs)

    def forward(self, features: Tensor) -> Tensor:
        return self.proj(features.mean(dim=1))
