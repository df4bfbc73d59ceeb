"""The PaRe gate: score every token, pick which target tokens a source token replaces.

The official code (BIT-DA/PaRe ``src/embedder_mix_PaRe.py:35-42``, ``src/main_PaRe.py:153-244``):
one ``Linear(d, 1)`` + sigmoid per token, the same gate for source and target tokens.

- Warm phase (``mixup_embedding_gate``): Gumbel noise is added to the sigmoid scores; a relaxed
  k-hot (``SubsetOperator``, τ = 0.9) picks the k source tokens and the T − k target tokens to
  *keep*; the other k target positions are overwritten, in index order, by the picked source tokens.
  Straight-through: kept target tokens are multiplied by the keep mask and source tokens by theirs,
  so this is the only phase in which the gate gets a gradient.
- After it (``mixup_embedding_gate_ori``): hard top-k, no noise, no gradient. The k highest-scored
  target positions (in ascending score order) receive the k best source tokens (in descending order).

The two phases overwrite opposite ends of the target ranking (lowest warm, highest after), so the
side is a key of each phase. Our departures are keys too (``gate.noise``, ``gate.straight_through``,
``gate.pairing``; docs/methods.md has the table).

Selections:
- ``topk``: k target tokens (by gate rank) receive k source tokens (the paper);
- ``threshold``: of those, only target tokens whose gate score exceeds t are replaced, each by one of
  the best-picked source tokens (so a row may replace fewer than k, never with an empty slot);
- ``random``: k random target tokens and k random source tokens, ignoring the scores (the ablation);
- ``none``: nothing is replaced.
Every row pairs exactly as many source tokens as target positions it replaces.

k is a Python int, or a 0-d tensor in a captured step (``runtime.capture``): there the curriculum's k
changes every epoch without a new graph, so no shape depends on it. A k-hot is therefore a rank test
(``rank < k``, ties to the lower index) rather than ``topk(k)``, and the relaxed k-hot's k softmax passes
run up to a fixed bound, the passes past k adding exactly nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pare_core.config import GateConfig, GateSelection, choices

Count = int | Tensor  # k: a Python int, or a 0-d long tensor (a captured step)


def clamp_count(k: Count, limit: int) -> Count:
    """``k`` within [0, limit]."""
    return k.clamp(0, limit) if isinstance(k, Tensor) else max(0, min(k, limit))


def known_zero(k: Count) -> bool:
    """Whether k is a Python 0: nothing to pick. A tensor k is never known to be 0 (reading it would
    synchronise with the device); with a 0 in it every k-hot below is empty."""
    return not isinstance(k, Tensor) and k <= 0


class GatingNetwork(nn.Module):
    """Per-token linear gate; returns logits (their sigmoids are the gate scores in [0, 1])."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.proj(tokens).squeeze(-1)


@dataclass
class Selection:
    """Which target positions get which source tokens.

    ``target`` / ``source`` are float masks (1 = replaced / picked) that may carry straight-through
    gradients; ``target_slot`` / ``source_slot`` pair them: the target position with slot j receives
    the source token with slot j (-1 = not involved). Slots 0..c-1 are used on both sides of a row.
    """

    target: Tensor  # (B, T)
    source: Tensor  # (B, Ts)
    target_slot: Tensor  # (B, T) long
    source_slot: Tensor  # (B, Ts) long


@dataclass
class Mix:
    tokens: Tensor  # (B, T, D) mixed token sequence
    replaced: Tensor  # (B, T) float 0/1: which target positions hold a source token
    lam: Tensor  # (B,) fraction of target tokens replaced (the mixed sample's source-label weight)


def gumbel(uniform: Tensor) -> Tensor:
    """Gumbel(0, 1) noise from uniform draws in [0, 1)."""
    return -torch.log(-torch.log(uniform + 1e-20) + 1e-20)


def draw_noise(
    target_shape: torch.Size,
    source_shape: torch.Size,
    k: Count,
    cfg: GateConfig,
    *,
    warm: bool,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor] | None:
    """The uniform draws ``select`` consumes (target's, then source's), or None when it draws nothing.

    Drawn apart from the selection so a caller can draw each seed's noise from its own generator and
    then select for many seeds at once (``pare_core.fusion``); ``select`` calls it when given no noise.
    """
    k = clamp_count(k, min(target_shape[-1], source_shape[-1]))
    if cfg.selection == "none" or known_zero(k) or not (warm or cfg.selection == "random"):
        return None
    return (
        torch.rand(target_shape, generator=generator, device=device),
        torch.rand(source_shape, generator=generator, device=device),
    )


def subset_khot(
    scores: Tensor, k: Count, tau: float, noise: Tensor, passes: int | None = None
) -> tuple[Tensor, Tensor]:
    """Gumbel top-k with a straight-through estimator (the official ``SubsetOperator``).

    Returns ``(khot, soft)``: the hard k-hot forward with the relaxed k-hot's gradient, and the
    relaxed k-hot itself (k successive softmaxes that each mask out what the previous ones picked).
    ``passes``: how many softmax passes run (default k, which must then be an int); a pass past k is
    multiplied by 0, so it changes neither the mask nor the later passes.
    """
    if known_zero(k):
        return torch.zeros_like(scores), torch.zeros_like(scores)
    perturbed = scores + noise
    soft = torch.zeros_like(perturbed)
    onehot_approx = torch.zeros_like(perturbed)
    for step in range(k if passes is None else passes):
        perturbed = perturbed + torch.log(torch.clamp(1.0 - onehot_approx, min=1e-20))
        onehot_approx = torch.softmax(perturbed / tau, dim=-1)
        if passes is not None:
            onehot_approx = onehot_approx * (step < k)
        soft = soft + onehot_approx
    hard = _hard_khot(soft, k)
    return hard - soft.detach() + soft, soft.detach()


def _hard_khot(order_scores: Tensor, k: Count) -> Tensor:
    """1 at the k highest scores of each row (ties: the lower index first), 0 elsewhere."""
    rank = order_scores.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)
    return (rank < k).to(order_scores.dtype)


def _rank_among(picked: Tensor, key: Tensor) -> Tensor:
    """0 for the picked position with the smallest key in its row, 1 for the next, ...; -1 elsewhere."""
    masked = torch.where(picked, key, torch.full_like(key, float("inf")))
    order = masked.argsort(dim=-1, stable=True)
    ranks = torch.empty_like(order).scatter(-1, order, torch.arange(key.shape[-1], device=key.device).expand_as(order))
    return torch.where(picked, ranks, torch.full_like(ranks, -1))


def _index_key(mask: Tensor) -> Tensor:
    return torch.arange(mask.shape[-1], device=mask.device, dtype=torch.float).expand(mask.shape)


def select(
    target_logits: Tensor,
    source_logits: Tensor,
    k: Count,
    cfg: GateConfig,
    *,
    warm: bool,
    generator: torch.Generator | None = None,
    noise: tuple[Tensor, Tensor] | None = None,
    k_range: tuple[int, int] | None = None,
) -> Selection:
    """Pick up to k target positions per row and as many source tokens to put there.

    ``warm``: the Gumbel straight-through phase (masks carry gradients to the gate logits).
    ``noise``: the uniform draws from :func:`draw_noise`; drawn here from ``generator`` when not given.
    ``k_range``: with a tensor k in the warm phase, the lowest and highest k it holds (the relaxed
    k-hots' pass counts).
    """
    n_target = target_logits.shape[1]
    limit = min(n_target, source_logits.shape[1])
    k = clamp_count(k, limit)
    if noise is None:
        noise = draw_noise(
            target_logits.shape,
            source_logits.shape,
            k,
            cfg,
            warm=warm,
            generator=generator,
            device=target_logits.device,
        )
    if cfg.selection == "none" or known_zero(k):
        t, s = torch.zeros_like(target_logits), torch.zeros_like(source_logits)
        return Selection(t, s, t.long() - 1, s.long() - 1)
    if cfg.selection == "random":
        t, s = _hard_khot(noise[0], k), _hard_khot(noise[1], k)
        return Selection(t, s, _rank_among(t > 0.5, _index_key(t)), _rank_among(s > 0.5, _index_key(s)))

    if cfg.noise == "scores":
        target_scores, source_scores = torch.sigmoid(target_logits), torch.sigmoid(source_logits)
    else:
        target_scores, source_scores = target_logits, source_logits
    side = cfg.replace_warm if warm else cfg.replace_after
    replace_rank = target_scores if side == "high" else -target_scores  # higher = replaced first
    if warm:
        low, high = (
            (None, None) if k_range is None else (clamp_count(k_range[0], limit), clamp_count(k_range[1], limit))
        )
        if cfg.straight_through == "keep":  # official: a relaxed (T - k)-hot of the tokens to keep
            keep_passes = None if low is None else n_target - low
            keep, _ = subset_khot(-replace_rank, n_target - k, cfg.tau, gumbel(noise[0]), keep_passes)
            target = 1.0 - keep
        else:
            target, _ = subset_khot(replace_rank, k, cfg.tau, gumbel(noise[0]), high)
        source, source_strength = subset_khot(source_scores, k, cfg.tau, gumbel(noise[1]), high)
    else:
        target = _hard_khot(replace_rank.detach(), k)
        source, source_strength = _hard_khot(source_scores.detach(), k), source_scores.detach()

    if cfg.selection == "threshold":
        eligible = (torch.sigmoid(target_logits.detach()) > cfg.threshold).to(target.dtype)
        target = target * eligible
        count = (target.detach() > 0.5).sum(-1, keepdim=True)
        best_first = _rank_among(source.detach() > 0.5, -source_strength)
        source = source * (best_first < count).to(source.dtype)
    elif cfg.selection != "topk":
        raise ValueError(
            f"gate.selection={cfg.selection!r} is invalid: allowed values are {', '.join(choices(GateSelection))}"
        )

    picked_t, picked_s = target.detach() > 0.5, source.detach() > 0.5
    if warm or cfg.pairing == "index":
        return Selection(
            target, source, _rank_among(picked_t, _index_key(target)), _rank_among(picked_s, _index_key(source))
        )
    # official after the warm phase: best source token onto the least-ranked of the picked targets
    return Selection(
        target, source, _rank_among(picked_t, replace_rank.detach()), _rank_among(picked_s, -source_scores.detach())
    )


def mix_tokens(target: Tensor, source: Tensor, sel: Selection, straight_through: str = "keep") -> Mix:
    """Overwrite the selected target positions with their paired source tokens.

    Source tokens are scaled by their (straight-through) mask. ``keep`` (official): replaced
    positions hold only the source token and kept ones ``target * (1 - m)``, so the target mask's
    gradient comes from kept tokens alone; ``blend``: ``target * (1 - m) + paired_source * m``
    everywhere (zero where nothing is paired).
    """
    batch, n_target, dim = target.shape
    replaced = sel.target_slot >= 0
    # Source tokens moved into slot order; unpaired ones go to a dump slot that nothing reads.
    dest = torch.where(sel.source_slot >= 0, sel.source_slot, torch.full_like(sel.source_slot, n_target))
    slots = target.new_zeros(batch, n_target + 1, dim)
    slots = slots.scatter(1, dest.unsqueeze(-1).expand(-1, -1, dim), source * sel.source.unsqueeze(-1))
    read = torch.where(replaced, sel.target_slot, torch.full_like(sel.target_slot, n_target))
    paired = slots.gather(1, read.unsqueeze(-1).expand(-1, -1, dim)) * replaced.unsqueeze(-1)
    m = sel.target.unsqueeze(-1)
    kept = target * (1.0 - m)
    if straight_through == "keep":
        tokens = torch.where(replaced.unsqueeze(-1), paired, kept)
    else:
        tokens = kept + paired * m
    flags = replaced.to(target.dtype)
    return Mix(tokens=tokens, replaced=flags, lam=flags.mean(-1))
