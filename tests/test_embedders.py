"""Tokenisation round trips and the scale-matched embedder LayerNorm."""

import torch

from pare_core.embedders import DenseHead, TargetEmbedder, plan_tokens, tokenize, untokenize


def test_1d_rows_as_tokens_and_padding():
    plan = plan_tokens("1d", (8, 8), 8)  # digits: 8 rows of 8 pixels
    assert (plan.n_tokens, plan.values_per_token) == (8, 8)
    x = torch.arange(2 * 8 * 8, dtype=torch.float).view(2, 8, 8)
    tokens = tokenize(x, plan)
    assert torch.equal(tokens[1, 3], x[1, :, 3])  # token 3 = the 8 channels at position 3
    dna = plan_tokens("1d", (3, 60), 12)
    assert (dna.n_tokens, dna.values_per_token) == (12, 15)
    odd = plan_tokens("1d", (1, 50), 8)  # stride 7, padded to 56
    assert odd.n_tokens == 8 and odd.padded == (56,)
    y = torch.randn(3, 1, 50)
    assert torch.equal(untokenize(tokenize(y, odd), odd, 1, (50,)), y)


def test_2d_patches_round_trip():
    plan = plan_tokens("2d", (1, 28, 28), 16)
    assert plan.grid == (4, 4) and plan.patch == (7, 7) and plan.values_per_token == 49
    x = torch.randn(2, 1, 28, 28)
    tokens = tokenize(x, plan)
    assert torch.equal(tokens[0, 1], x[0, 0, 0:7, 7:14].reshape(-1))
    assert torch.equal(untokenize(tokens, plan, 1, (28, 28)), x)
    odd = plan_tokens("2d", (2, 29, 29), 9)
    z = torch.randn(1, 2, 29, 29)
    assert torch.equal(untokenize(tokenize(z, odd), odd, 2, (29, 29)), z)


def test_embedder_output_has_backbone_token_scale():
    plan = plan_tokens("1d", (8, 8), 8)
    mean, std = torch.full((16,), 0.05), torch.full((16,), 0.02)
    emb = TargetEmbedder(plan, 16, mean, std)
    out = emb(torch.randn(64, 8, 8) * 30)  # raw inputs of a very different scale
    assert torch.allclose(out.mean(), torch.tensor(0.05), atol=5e-3)
    assert torch.allclose(out.std(), torch.tensor(0.02), rtol=0.1)


def test_dense_head_shapes():
    plan = plan_tokens("2d", (1, 29, 29), 9)
    head = DenseHead(plan, 32, 1, (29, 29), (29, 29))
    assert head(torch.randn(2, plan.n_tokens, 32)).shape == (2, 1, 29, 29)
    plan1 = plan_tokens("1d", (1, 64), 8)
    finer = DenseHead(plan1, 32, 1, (64,), (128,))
    assert finer(torch.randn(2, 8, 32)).shape == (2, 1, 128)
