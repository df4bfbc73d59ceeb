"""Source data: real sentences / photo crops in the backbone's input-token space, deterministic."""

import re
from collections import Counter

import numpy as np
import pytest
import torch

from pare_core.backbones import build_backbone
from pare_core.config import BackboneConfig, SourceConfig
from pare_core.corpora import (
    PHOTOS,
    TEXT_PACKAGES,
    natural_crops,
    package_sentences,
    prose_sentences,
    text_corpus,
    text_corpus_ids,
)
from pare_core.sources import load_source


@pytest.fixture(scope="module")
def minilm():
    return build_backbone(BackboneConfig(name="minilm"))


@pytest.fixture(scope="module")
def effnet():
    return build_backbone(BackboneConfig(name="efficientnet_lite0"))


def test_text_source_shapes_labels_and_tokens(minilm):
    source = load_source(minilm, SourceConfig(size=400), n_tokens=12, seed=0)
    assert source.tokens.shape == (400, 12, minilm.token_dim) and source.tokens.dtype == torch.float32
    assert source.labels.dtype == torch.int64
    assert source.n_classes == len(source.class_names) == len(TEXT_PACKAGES) == 8
    assert torch.bincount(source.labels, minlength=8).tolist() == [50] * 8
    assert torch.equal(source.tokens, minilm.embed_ids(source.ids))  # word embeddings only, no positions


def test_text_source_is_real_english(minilm):
    """Decoded chunks read as English: whole words, and 'the' about as frequent as in prose (~5%)."""
    source = load_source(minilm, SourceConfig(size=200), n_tokens=16, seed=0)
    words = " ".join(minilm.tokenizer.decode(chunk) for chunk in source.ids).split()
    counts = Counter(words)
    assert counts["the"] / len(words) > 0.03
    assert sum(counts[w] for w in ("of", "a", "to", "is", "and", "in")) / len(words) > 0.05
    assert sum(bool(re.fullmatch(r"[a-z]+[.,]?", w)) for w in words) / len(words) > 0.8


def test_text_source_is_deterministic_per_seed(minilm):
    cfg = SourceConfig(size=80)
    first, again, other = (load_source(minilm, cfg, 10, seed=s) for s in (0, 0, 1))
    assert torch.equal(first.ids, again.ids) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.ids, other.ids)


def test_text_source_caps_samples_at_the_corpus_size(minilm):
    source = load_source(minilm, SourceConfig(size=5000), n_tokens=64, seed=0)
    assert 1000 < len(source.labels) < 5000
    assert len(torch.unique(source.ids, dim=0)) == len(source.ids)  # chunks never repeat


def test_corpus_is_balanced_prose_from_each_package():
    corpus = text_corpus()
    assert list(corpus) == list(TEXT_PACKAGES)
    assert len({len(s) for s in corpus.values()}) == 1
    sentences = [s for per_package in corpus.values() for s in per_package]
    assert all(s[0].isupper() and s.endswith(".") for s in sentences)
    assert len(set(sentences)) > 0.95 * len(sentences)


def test_prose_sentences_skip_code_parameters_and_headers():
    doc = """Return the sum of the array elements over a given axis.

    Parameters
    ----------
    a : array_like
        Elements to sum, see the notes for the rules that apply here.

    Examples
    --------
    >>> np.sum([0.5, 1.5])
    2.0

    The result is computed in the dtype of the input unless another is given. See x = f(y) for code."""
    from inspect import cleandoc

    assert list(prose_sentences(cleandoc(doc))) == [
        "Return the sum of the array elements over a given axis.",
        "The result is computed in the dtype of the input unless another is given.",
    ]


def test_package_sentences_are_deterministic():
    assert package_sentences("optuna", 50) == package_sentences("optuna", 50)
    assert len(package_sentences("optuna", 50)) == 50


def test_corpus_ids_are_built_once_per_process_and_read_only():
    first = text_corpus_ids(None, 1000, 0)
    assert text_corpus_ids(None, 1000, 0) is first  # a run asks twice, a reused trial process again
    with pytest.raises(ValueError, match="read-only"):
        first[0][0][0] = 1  # shared by every caller: none may change it
    other = text_corpus_ids(None, 500, 0)  # another table: not the remembered ids
    assert (
        max(int(s.max()) for per_class in other for s in per_class)
        < 500
        <= max(int(s.max()) for per_class in first for s in per_class)
    )


def test_tiny_text_backbone_hashes_words_into_its_vocabulary():
    tiny = build_backbone(BackboneConfig(name="roberta_base", tiny=True))
    assert tiny.tokenizer is None
    ids = torch.from_numpy(np.concatenate([s for per_class in tiny.corpus_ids() for s in per_class]))
    vocab, padding = tiny.input_layer().num_embeddings, tiny.input_layer().padding_idx
    assert ids.min() > padding and ids.max() < vocab
    source = load_source(tiny, SourceConfig(size=40), n_tokens=8, seed=0)
    assert source.tokens.shape == (40, 8, tiny.token_dim)
    assert torch.equal(source.tokens, tiny.embed_ids(source.ids))


def test_image_source_shapes_labels_and_tokens(effnet):
    source = load_source(effnet, SourceConfig(size=90), n_tokens=8, seed=0)
    assert source.tokens.shape == (90, 8, effnet.token_dim) and source.tokens.dtype == torch.float32
    assert source.class_names == list(PHOTOS) and source.n_classes == len(PHOTOS)
    assert torch.bincount(source.labels).tolist() == [10] * len(PHOTOS)
    crops, labels = natural_crops(90, (2 * effnet.stride, 4 * effnet.stride), seed=0)
    assert torch.equal(labels, source.labels)
    assert torch.allclose(effnet.stem(crops), source.tokens)


def test_image_source_follows_the_grid_and_the_seed(effnet):
    cfg = SourceConfig(size=18)
    first, again, other = (load_source(effnet, cfg, 16, seed=s) for s in (0, 0, 1))
    assert torch.equal(first.tokens, again.tokens)
    assert not torch.allclose(first.tokens, other.tokens)
    row = load_source(effnet, cfg, 16, seed=0, grid=(1, 16))
    assert row.tokens.shape == first.tokens.shape and not torch.allclose(row.tokens, first.tokens)


def test_swin_source_uses_its_patch_embedding():
    swin = build_backbone(BackboneConfig(name="swin_base", tiny=True))
    source = load_source(swin, SourceConfig(size=18), n_tokens=16, seed=0)
    assert source.tokens.shape == (18, 16, swin.token_dim)
    crops, _ = natural_crops(18, (4 * swin.stride, 4 * swin.stride), seed=0)
    assert torch.allclose(swin.stem(crops), source.tokens)


def test_natural_crops_are_varied_photo_pixels():
    crops, labels = natural_crops(36, (16, 16), seed=3)
    assert crops.shape == (36, 3, 16, 16)
    assert 0 <= crops.min() and crops.max() <= 1
    assert (crops.flatten(1).std(1) > 0.01).float().mean() > 0.9  # not flat borders or padding
    assert len(torch.unique(crops.flatten(1), dim=0)) == 36
    assert torch.bincount(labels).tolist() == [4] * len(PHOTOS)


def test_corpus_cache_is_rebuilt_when_package_versions_change(tmp_path, monkeypatch):
    import json

    from pare_core import corpora

    monkeypatch.setenv("PARE_DATA", str(tmp_path))
    monkeypatch.setattr(corpora, "SENTENCES_PER_CLASS", 40)  # a short extraction; the real one takes ~8 s
    cache = tmp_path / "sources" / "docstring_sentences_v1.json"
    cache.parent.mkdir()
    cache.write_text(json.dumps({"versions": {"numpy": "0.0"}, "sentences": {"numpy": ["Stale."]}}))
    corpus = text_corpus()
    assert list(corpus) == list(TEXT_PACKAGES) and "Stale." not in corpus["numpy"]
    assert all(len(s) == 40 for s in corpus.values())
    assert json.loads(cache.read_text())["sentences"] == corpus
    assert text_corpus() == corpus  # read back from the refreshed cache


def test_token_ids_are_cached_per_tokenizer_and_corpus(minilm, tmp_path, monkeypatch):
    import numpy as np

    from pare_core import corpora

    corpus = text_corpus()  # read from the real cache before PARE_DATA moves
    monkeypatch.setenv("PARE_DATA", str(tmp_path))
    classes = [corpus[p][:50] for p in TEXT_PACKAGES]
    first = corpora._tokenized(minilm.tokenizer, classes)
    direct = [minilm.tokenizer(c, add_special_tokens=False)["input_ids"] for c in classes]
    assert [[list(i) for i in per] for per in first] == direct
    [cached] = (tmp_path / "sources").glob("token_ids_*.npz")
    again = corpora._tokenized(minilm.tokenizer, classes)  # read back
    assert all(np.array_equal(a, b) and a.dtype == np.int64 for x, y in zip(first, again) for a, b in zip(x, y))
    corpora._tokenized(minilm.tokenizer, [c[:-1] for c in classes])  # another corpus: its own file
    assert len(list((tmp_path / "sources").glob("token_ids_*.npz"))) == 2 and cached.exists()
