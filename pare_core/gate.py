"""The PaRe gate: score every token, pick which target tokens a source token replaces.

Official code (methods.md §1.2): one ``Linear(d, 1)`` + sigmoid per token, the same gate for source
and target tokens. In a warm phase a Gumbel top-k with a straight-through estimator lets gradients
reach the gate; afterwards hard top-k is used and the gate gets no gradient. The two phases of the
official code overwrite opposite ends of the target ranking (lowest scores warm, highest after), so
the side is a key of each phase.

Selections (the design card's "gate thresholds"):
- ``topk``: exactly k target tokens (by gate rank) receive the k best-scoring source tokens;
- ``threshold``: only target tokens whose gate score exceeds t are replaceable, at most k of them;
- ``random``: k random target tokens and k random source tokens, ignoring the scores (the ablation);
- ``none``: nothing is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


class GatingNetwork(nn.Module):
    """Per-token linear gate; returns logits (sigmoid of them are the gate scores in [0, 1])."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.proj(tokens).squeeze(-1)


@dataclass
class Mix:
    tokens: Tensor  # (B, T, D) mixed token sequence
    replaced: Tensor  # (B, T) float 0/1: which target positions hold a source token
    lam: Tensor  # (B,) fraction of target tokens replaced (the mixed sample's source-label weight)


def subset_khot(logits: Tensor, k: int, tau: float, generator: torch.Generator | None = None) -> Tensor:
    """Gumbel top-k with a straight-through estimator: hard k-hot forward, relaxed k-hot backward.

    The relaxed k-hot is k successive softmaxes that each mask out what the previous ones picked
    (the SubsetOperator of the official code, τ = 0.9 there).
    """
    if k <= 0:
        return torch.zeros_like(logits)
    noise = -torch.log(-torch.log(torch.rand(logits.shape, generator=generator, device=logits.device) + 1e-20) + 1e-20)
    scores = logits + noise
    soft = torch.zeros_like(scores)
    onehot_approx = torch.zeros_like(scores)
    for _ in range(k):
        mask = torch.clamp(1.0 - onehot_approx, min=1e-20)
        scores = scores + torch.log(mask)
        onehot_approx = torch.softmax(scores / tau, dim=-1)
        soft = soft + onehot_approx
    hard = torch.zeros_like(soft).scatter_(-1, soft.topk(k, dim=-1).indices, 1.0)
    return hard - soft.detach() + soft


def _hard_khot(order_scores: Tensor, k: int) -> Tensor:
    if k <= 0:
        return torch.zeros_like(order_scores)
    return torch.zeros_like(order_scores).scatter_(-1, order_scores.topk(k, dim=-1).indices, 1.0)


def select(
    target_logits: Tensor,
    source_logits: Tensor,
    k: int,
    selection: str,
    *,
    side: str = "high",
    threshold: float = 0.5,
    straight_through: bool = False,
    tau: float = 0.9,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Return (target_mask (B, T), source_mask (B, Ts)): float k-hot masks with equal counts per row.

    With ``straight_through`` the masks carry gradients to the gate logits (warm phase).
    """
    batch, n_target = target_logits.shape
    k = max(0, min(k, n_target, source_logits.shape[1]))
    if selection == "none" or k == 0:
        return torch.zeros_like(target_logits), torch.zeros_like(source_logits)
    if selection == "random":
        rand_t = torch.rand(target_logits.shape, generator=generator, device=target_logits.device)
        rand_s = torch.rand(source_logits.shape, generator=generator, device=source_logits.device)
        return _hard_khot(rand_t, k), _hard_khot(rand_s, k)
    if selection not in ("topk", "threshold"):
        raise ValueError(f"gate.selection={selection!r} is invalid: allowed values are topk, threshold, random, none")

    ranked = target_logits if side == "high" else -target_logits
    if straight_through:
        target_mask = subset_khot(ranked, k, tau, generator)
        source_mask = subset_khot(source_logits, k, tau, generator)
    else:
        target_mask = _hard_khot(ranked.detach(), k)
        source_mask = _hard_khot(source_logits.detach(), k)
    if selection == "threshold":
        # Only tokens whose gate score exceeds t are replaceable; keep the count of source picks equal.
        eligible = (torch.sigmoid(target_logits.detach()) > threshold).to(target_mask.dtype)
        target_mask = target_mask * eligible
        counts = target_mask.detach().sum(-1, keepdim=True)  # (B, 1) <= k
        source_rank = _rank(source_logits.detach())
        source_mask = source_mask * (source_rank < counts).to(source_mask.dtype)
    return target_mask, source_mask


def _rank(scores: Tensor) -> Tensor:
    """0 for the highest score in each row, 1 for the next, ..."""
    order = scores.argsort(dim=-1, descending=True)
    return torch.empty_like(order).scatter_(-1, order, torch.arange(scores.shape[-1], device=scores.device).expand_as(order))


def mix_tokens(target: Tensor, source: Tensor, target_mask: Tensor, source_mask: Tensor) -> Mix:
    """Overwrite the selected target positions with the selected source tokens, both in index order.

    Masks may carry straight-through gradients: the mixed tokens are ``target*(1-m_t) + src*m_t``
    with source tokens scaled by their own mask values, as in the official code.
    """
    hard_t = target_mask.detach() > 0.5
    hard_s = source_mask.detach() > 0.5
    slot_t = hard_t.long().cumsum(-1) - 1  # j-th replaced target position -> slot j
    slot_s = hard_s.long().cumsum(-1) - 1
    n_target = target.shape[1]
    # Source tokens (scaled by their mask) moved into slot order; unselected ones go to a dump slot.
    dump = torch.full_like(slot_s, n_target)
    dest = torch.where(hard_s, slot_s.clamp(max=n_target - 1), dump)
    slots = target.new_zeros(target.shape[0], n_target + 1, target.shape[2])
    slots.scatter_(1, dest.unsqueeze(-1).expand(-1, -1, target.shape[2]), source * source_mask.unsqueeze(-1))
    gathered = slots.gather(1, slot_t.clamp(min=0).unsqueeze(-1).expand(-1, -1, target.shape[2]))
    m = target_mask.unsqueeze(-1)
    tokens = target * (1.0 - m) + gathered * m
    replaced = hard_t.to(target.dtype)
    return Mix(tokens=tokens, replaced=replaced, lam=replaced.mean(-1))
