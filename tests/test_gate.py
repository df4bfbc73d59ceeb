"""Gate selection semantics and the mixing operation (pure tensor code, no backbone)."""

import torch

from pare_core.gate import GatingNetwork, mix_tokens, select, subset_khot


def _logits(batch=4, tokens=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, tokens, generator=g), torch.randn(batch, tokens + 2, generator=g)


def test_topk_replaces_exactly_k_highest_or_lowest():
    target, source = _logits()
    for side in ("high", "low"):
        mt, ms = select(target, source, 3, "topk", side=side)
        assert torch.equal(mt.sum(-1), torch.full((4,), 3.0))
        assert torch.equal(ms.sum(-1), torch.full((4,), 3.0))
        ranked = target if side == "high" else -target
        expected = ranked.topk(3, dim=-1).indices.sort(-1).values
        assert torch.equal(mt.nonzero()[:, 1].view(4, 3), expected)
        assert torch.equal(ms.nonzero()[:, 1].view(4, 3), source.topk(3, dim=-1).indices.sort(-1).values)


def test_threshold_replaces_only_tokens_above_t_and_at_most_k():
    target, source = _logits(batch=64)
    t = 0.6
    mt, ms = select(target, source, 4, "threshold", side="high", threshold=t)
    scores = torch.sigmoid(target)
    assert torch.all(scores[mt.bool()] > t)
    counts = mt.sum(-1)
    assert counts.max() <= 4
    assert torch.equal(counts, torch.minimum((scores > t).sum(-1).float(), torch.tensor(4.0)))
    assert torch.equal(ms.sum(-1), counts)  # one source token per replaced target token
    assert (counts < 4).any() and (counts > 0).any()  # the threshold bites in some rows, not all


def test_random_ignores_scores():
    target, source = _logits(batch=256)
    g = torch.Generator().manual_seed(1)
    mt, ms = select(target, source, 3, "random", generator=g)
    assert torch.equal(mt.sum(-1), torch.full((256,), 3.0))
    # With random selection the replaced tokens are no better than average by gate score;
    # with topk they are the best ones.
    random_mean = target[mt.bool()].mean()
    topk_mask, _ = select(target, source, 3, "topk")
    assert abs(random_mean) < 0.25 < target[topk_mask.bool()].mean()
    # Independence: flipping the scores does not change a random draw with the same generator state.
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(select(target, source, 3, "random", generator=g1)[0], select(-target, -source, 3, "random", generator=g2)[0])


def test_none_replaces_nothing():
    target, source = _logits()
    mt, ms = select(target, source, 5, "none")
    assert mt.sum() == 0 and ms.sum() == 0


def test_mix_places_selected_source_tokens_in_index_order():
    target = torch.arange(6, dtype=torch.float).view(1, 6, 1).repeat(1, 1, 2)
    source = 100 + torch.arange(5, dtype=torch.float).view(1, 5, 1).repeat(1, 1, 2)
    mt = torch.tensor([[0, 1, 0, 0, 1, 0.0]])
    ms = torch.tensor([[0, 0, 1, 1, 0.0]])
    mix = mix_tokens(target, source, mt, ms)
    assert mix.tokens[0, :, 0].tolist() == [0, 102, 2, 3, 103, 5]
    assert mix.replaced.tolist() == [[0, 1, 0, 0, 1, 0]]
    assert torch.allclose(mix.lam, torch.tensor([2 / 6]))


def test_straight_through_reaches_the_gate_and_is_hard_forward():
    torch.manual_seed(0)
    gate = GatingNetwork(8)
    target, source = torch.randn(3, 6, 8), torch.randn(3, 7, 8)
    mt, ms = select(gate(target), gate(source), 2, "topk", side="low", straight_through=True, generator=torch.Generator().manual_seed(0))
    assert set(mt.detach().unique().tolist()) <= {0.0, 1.0} and torch.equal(mt.detach().sum(-1), torch.full((3,), 2.0))
    mix_tokens(target, source, mt, ms).tokens.pow(2).sum().backward()
    assert gate.proj.weight.grad is not None and gate.proj.weight.grad.abs().sum() > 0


def test_subset_khot_counts():
    khot = subset_khot(torch.randn(5, 9), 4, 0.9, torch.Generator().manual_seed(0))
    assert torch.equal(khot.detach().sum(-1), torch.full((5,), 4.0))
