"""Gate selection semantics and the mixing operation (pure tensor code, no backbone)."""

import itertools

import pytest
import torch

from pare_core.config import GateConfig
from pare_core.gate import GatingNetwork, Selection, gumbel, mix_tokens, select, subset_khot

SELECTIONS = ("topk", "threshold", "random", "none")


def _logits(batch=4, tokens=10, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, tokens, generator=g), scale * torch.randn(batch, tokens + 2, generator=g)


def _gate(**keys) -> GateConfig:
    return GateConfig(**keys)


def test_topk_replaces_exactly_k_highest_or_lowest():
    target, source = _logits()
    for side in ("high", "low"):
        sel = select(target, source, 3, _gate(replace_after=side), warm=False)
        assert torch.equal(sel.target.sum(-1), torch.full((4,), 3.0))
        assert torch.equal(sel.source.sum(-1), torch.full((4,), 3.0))
        ranked = target if side == "high" else -target
        expected = ranked.topk(3, dim=-1).indices.sort(-1).values
        assert torch.equal(sel.target.nonzero()[:, 1].view(4, 3), expected)
        assert torch.equal(sel.source.nonzero()[:, 1].view(4, 3), source.topk(3, dim=-1).indices.sort(-1).values)


@pytest.mark.parametrize("selection,warm,form", list(itertools.product(SELECTIONS, (True, False), ("keep", "blend"))))
def test_every_replaced_position_gets_exactly_one_source_token(selection, warm, form):
    """Defect 1 of the fidelity audit: threshold selection in the warm phase wrote zero vectors."""
    target_logits, source_logits = _logits(batch=64, tokens=8, seed=5, scale=2.0)
    cfg = _gate(selection=selection, threshold=0.5, straight_through=form)
    sel = select(target_logits, source_logits, 3, cfg, warm=warm, generator=torch.Generator().manual_seed(1))
    replaced = sel.target_slot >= 0
    assert torch.equal(replaced, sel.target.detach() > 0.5)
    assert torch.equal(sel.source_slot >= 0, sel.source.detach() > 0.5)
    counts = replaced.sum(-1)
    assert torch.equal(counts, (sel.source_slot >= 0).sum(-1))
    for row in range(64):  # slots 0..c-1 on both sides, each once
        c = int(counts[row])
        assert sorted(sel.target_slot[row][replaced[row]].tolist()) == list(range(c))
        assert sorted(sel.source_slot[row][sel.source_slot[row] >= 0].tolist()) == list(range(c))
    # Mixing with distinct non-zero tokens: every replaced position holds one of the row's source tokens.
    dim = 4
    target_tokens = torch.randn(64, 8, dim) + 10.0
    source_tokens = -10.0 - torch.rand(64, 10, dim)
    mix = mix_tokens(target_tokens, source_tokens, sel, form)
    assert torch.all(mix.tokens.abs().sum(-1) > 1.0)  # no zero vectors anywhere
    assert torch.equal(mix.replaced.bool(), replaced)
    assert torch.all(mix.tokens[replaced] < -9.0) and torch.all(mix.tokens[~replaced] > 0.0)
    assert torch.allclose(mix.lam, counts.float() / 8)
    if selection == "threshold":
        assert (counts < 3).any() and (counts > 0).any()  # the threshold bites in some rows, not all
        assert torch.all(torch.sigmoid(target_logits)[replaced] > 0.5)
    if selection == "none":
        assert counts.sum() == 0


def test_after_warm_pairing_is_best_source_onto_lowest_picked_target():
    """Official mixup_embedding_gate_ori: source top-k (descending) onto argsort(target)[-k:] (ascending)."""
    target = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.2]]).logit()
    source = torch.tensor([[0.3, 0.8, 0.6, 0.1]]).logit()
    sel = select(target, source, 3, _gate(), warm=False)
    tokens_t = torch.arange(5.0).view(1, 5, 1)
    tokens_s = 100 + torch.arange(4.0).view(1, 4, 1)
    mix = mix_tokens(tokens_t, tokens_s, sel)
    # targets 2 (0.5), 3 (0.7), 1 (0.9) in ascending score get sources 1 (0.8), 2 (0.6), 0 (0.3)
    assert mix.tokens[0, :, 0].tolist() == [0, 100, 101, 102, 4]
    by_index = mix_tokens(tokens_t, tokens_s, select(target, source, 3, _gate(pairing="index"), warm=False))
    assert by_index.tokens[0, :, 0].tolist() == [0, 100, 101, 102, 4]  # index order: sources 0, 1, 2 onto 1, 2, 3


def test_random_ignores_scores():
    target, source = _logits(batch=256)
    sel = select(target, source, 3, _gate(selection="random"), warm=False, generator=torch.Generator().manual_seed(1))
    assert torch.equal(sel.target.sum(-1), torch.full((256,), 3.0))
    random_mean = target[sel.target.bool()].mean()
    topk = select(target, source, 3, _gate(), warm=False)
    assert abs(random_mean) < 0.25 < target[topk.target.bool()].mean()
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    flipped = select(-target, -source, 3, _gate(selection="random"), warm=False, generator=g2)
    assert torch.equal(
        select(target, source, 3, _gate(selection="random"), warm=False, generator=g1).target, flipped.target
    )


def test_noise_on_scores_makes_the_warm_pick_near_random():
    """Official SubsetOperator adds Gumbel noise to sigmoid scores in [0, 1]; on logits the pick follows them."""
    target, source = _logits(batch=2000, tokens=8, seed=123, scale=4.0)  # seed unlike the noise generator's
    top3 = torch.zeros_like(target).scatter_(-1, (-target).topk(3, dim=-1).indices, 1.0)  # lowest 3: replaced warm
    overlap = {}
    for noise in ("scores", "logits"):
        sel = select(target, source, 3, _gate(noise=noise), warm=True, generator=torch.Generator().manual_seed(0))
        overlap[noise] = float((sel.target.detach() * top3).sum() / top3.sum())
    assert overlap["scores"] < 0.6 < 0.8 < overlap["logits"]  # random would be 3/8


def test_keep_form_gives_the_target_mask_gradient_only_through_kept_tokens():
    torch.manual_seed(0)
    target_tokens, source_tokens = torch.randn(3, 6, 8), torch.randn(3, 7, 8)
    grads = {}
    for form in ("keep", "blend"):
        logits = torch.randn(3, 6, requires_grad=True)
        sel = select(
            logits,
            torch.randn(3, 7),
            2,
            _gate(straight_through=form),
            warm=True,
            generator=torch.Generator().manual_seed(0),
        )
        assert set(sel.target.detach().unique().tolist()) <= {0.0, 1.0}
        sel.target.retain_grad()
        mix_tokens(target_tokens, source_tokens, sel, form).tokens.pow(2).sum().backward()
        grads[form] = (sel.target.grad, sel.target_slot >= 0)
    keep_grad, replaced = grads["keep"]
    assert torch.all(keep_grad[replaced] == 0) and keep_grad[~replaced].abs().sum() > 0
    blend_grad, replaced = grads["blend"]
    assert blend_grad[replaced].abs().sum() > 0


def test_straight_through_reaches_the_gate():
    torch.manual_seed(0)
    gate = GatingNetwork(8)
    target, source = torch.randn(3, 6, 8), torch.randn(3, 7, 8)
    for form in ("keep", "blend"):
        gate.zero_grad()
        sel = select(
            gate(target),
            gate(source),
            2,
            _gate(straight_through=form),
            warm=True,
            generator=torch.Generator().manual_seed(0),
        )
        mix_tokens(target, source, sel, form).tokens.pow(2).sum().backward()
        assert gate.proj.weight.grad is not None and gate.proj.weight.grad.abs().sum() > 0


def test_hard_phase_gives_the_gate_no_gradient():
    gate = GatingNetwork(8)
    target, source = torch.randn(3, 6, 8), torch.randn(3, 7, 8)
    sel = select(gate(target), gate(source), 2, _gate(), warm=False)
    assert not sel.target.requires_grad and not sel.source.requires_grad


def test_subset_khot_counts():
    scores = torch.randn(5, 9)
    khot, soft = subset_khot(
        scores, 4, 0.9, gumbel(torch.rand(scores.shape, generator=torch.Generator().manual_seed(0)))
    )
    assert torch.equal(khot.detach().sum(-1), torch.full((5,), 4.0))
    assert torch.allclose(soft.sum(-1), torch.full((5,), 4.0), atol=1e-5)


def test_empty_selection_has_no_slots():
    sel = select(*_logits(), 0, _gate(), warm=True)
    assert isinstance(sel, Selection) and (sel.target_slot < 0).all() and (sel.source_slot < 0).all()


@pytest.mark.parametrize("selection,warm,form", list(itertools.product(SELECTIONS, (True, False), ("keep", "blend"))))
def test_a_tensor_k_selects_and_differentiates_as_the_int(selection, warm, form):
    """A captured step reads k from a tensor and runs the relaxed k-hots' passes for the warm phase's
    widest k range (runtime.capture): the selection and the gate's gradient are the int k's."""
    target_logits, source_logits = _logits(batch=16, tokens=8, seed=3, scale=2.0)
    cfg = _gate(selection=selection, threshold=0.5, straight_through=form)
    noise = (torch.rand(16, 8, generator=torch.Generator().manual_seed(2)), torch.rand(16, 10))
    results = []
    for k, k_range in ((3, None), (torch.tensor(3), (1, 6))):
        target, source = target_logits.clone().requires_grad_(), source_logits.clone().requires_grad_()
        sel = select(target, source, k, cfg, warm=warm, noise=noise, k_range=k_range)
        mixed = mix_tokens(
            torch.randn(16, 8, 4, generator=torch.Generator().manual_seed(0)), torch.ones(16, 10, 4), sel, form
        )
        if mixed.tokens.requires_grad:
            mixed.tokens.square().sum().backward()
        results.append((sel, mixed.tokens.detach(), target.grad, source.grad))
    (sel_int, tokens_int, *grads_int), (sel_t, tokens_t, *grads_t) = results
    for name in ("target", "source", "target_slot", "source_slot"):
        assert torch.equal(getattr(sel_int, name).detach(), getattr(sel_t, name).detach()), name
    assert torch.equal(tokens_int, tokens_t)
    for a, b in zip(grads_int, grads_t):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-6)
    if warm and selection in ("topk", "threshold"):
        assert grads_int[0] is not None and grads_int[0].abs().sum() > 0  # the comparison has a gradient to compare
