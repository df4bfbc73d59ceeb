"""Source corpora: labelled text and natural photographs from installed packages, with no model.

PaRe needs labelled samples of the backbone's pretraining modality (``pare_core.sources`` turns them
into the backbone's input tokens; backbones use them for their token statistics):

- text: the prose sentences of the docstrings of eight installed project dependencies, parsed with
  ``ast`` (nothing is imported) and labelled by package (8 classes, like PaRe's 8 text labels). No
  text corpus can be downloaded here (ORCA/PaRe used CoNLL-2003). The sentence list is extracted once
  (about 10 s) and cached under ``$PARE_DATA/sources``, keyed by the packages' versions.
- vision: crops of the colour photographs that scikit-image and scikit-learn ship (label = photo)
  (PaRe used CIFAR-10).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import pathlib
import re
import zlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pare_core.cache import atomic_path, cached_arrays, data_root

# package -> distribution (for its version); all are dependencies of this project
TEXT_PACKAGES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "sklearn": "scikit-learn",
    "torch": "torch",
    "matplotlib": "matplotlib",
    "ray": "ray",
    "aeon": "aeon",
}
SENTENCES_PER_CLASS = 1200  # every package above yields at least this many distinct prose sentences
CORPUS_VERSION = 1  # bump when the extraction rules change
# colour photographs; grey, binary and synthetic images (camera, horse, colorwheel, ...) are left out
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "stereo_motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "china",
    "flower",
)
CROP_FRACTION = (0.1, 0.6)  # crop side as a fraction of the photo's shorter side

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# a capitalised sentence of words and light punctuation: no code, markup, paths, numbers or symbols
_PROSE = re.compile(r"[A-Z][A-Za-z ,;:'()\-]*[a-z]\.")
_WORDS = (8, 40)


# -- text ------------------------------------------------------------------------------------------


def text_corpus_ids(tokenizer: object | None, vocab: int, padding_idx: int | None) -> list[list[np.ndarray]]:
    """Per class, per sentence: the word-piece ids of the cached corpus (no special tokens).

    With the model's own ``tokenizer`` when it has one. Tiny/random configs have none: their words
    (lower-cased letter runs and single punctuation marks) are hashed (CRC-32) into the ``vocab``
    ids above ``padding_idx`` (the padding row is zero at init), which keeps real word frequencies
    and co-occurrences but not a real word-piece vocabulary.
    """
    corpus = text_corpus()
    classes = [corpus[p] for p in TEXT_PACKAGES]
    # what the ids depend on: the sentences, and the tokenizer (its definition as it stands: a call's
    # truncation or padding state in it only costs a memo miss) or the hashed words' table
    definition = tokenizer.backend_tokenizer.to_str() if tokenizer is not None else ""
    key = (_digest(["\n".join(sentences) for sentences in classes]), _digest([definition]), vocab, padding_idx)
    if key not in _IDS_MEMO:
        if tokenizer is not None:
            ids = _tokenized(tokenizer, classes)
        else:
            reserved = (padding_idx or 0) + 1
            ids = [[_hash_ids(s, vocab, reserved) for s in sentences] for sentences in classes]
        for per_class in ids:
            for sentence in per_class:
                sentence.flags.writeable = False  # shared by every later call in this process
        _IDS_MEMO.clear()  # one corpus and tokenizer per process, in practice: keep the last only
        _IDS_MEMO[key] = ids
    return _IDS_MEMO[key]


# text_corpus_ids' last result. A run asks twice (the backbone's token statistics, PaRe's source data), and
# a Ray trial process runs trial after trial (Tune reuses it): reading and splitting the cached ids took
# 0.13 s a call (0.14 s hashing a tiny config's words), about a tenth of a smoke trial.
_IDS_MEMO: dict[tuple, list[list[np.ndarray]]] = {}


def _digest(texts: list[str]) -> str:
    digest = hashlib.sha1()
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()


def _tokenized(tokenizer: object, classes: list[list[str]]) -> list[list[np.ndarray]]:
    """Per class, per sentence: ``tokenizer``'s ids, cached under ``$PARE_DATA/sources``.

    Every trial start needs them (token statistics, source data), and tokenising 9,600 sentences takes
    about 1 s on one CPU thread: more than the whole training of a smoke trial. The cache key is the
    tokenizer's definition (its ``tokenizers`` JSON: vocabulary, normaliser, model) and the
    sentences, so a changed tokenizer or corpus never reads another's ids.
    """
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    for call_state in ("truncation", "padding"):  # set by each call, not a property of the tokenizer
        definition.pop(call_state, None)
    digest = hashlib.sha1(json.dumps(definition, sort_keys=True).encode())
    for sentences in classes:
        digest.update("\n".join(sentences).encode() + b"\0")

    def build() -> dict[str, np.ndarray]:  # per class: the ids end to end, and each sentence's length
        ids = [tokenizer(sentences, add_special_tokens=False)["input_ids"] for sentences in classes]
        return {
            **{f"ids_{c}": np.concatenate([np.asarray(i, np.int64) for i in per]) for c, per in enumerate(ids)},
            **{f"lengths_{c}": np.array([len(i) for i in per], np.int64) for c, per in enumerate(ids)},
        }

    arrays = cached_arrays(data_root() / "sources" / f"token_ids_{digest.hexdigest()[:16]}.npz", build)
    return [np.split(arrays[f"ids_{c}"], np.cumsum(arrays[f"lengths_{c}"])[:-1]) for c in range(len(classes))]


def _hash_ids(sentence: str, vocab: int, reserved: int) -> np.ndarray:
    words = re.findall(r"[a-z]+|[^\sa-z]", sentence.lower())
    return np.array([reserved + zlib.crc32(w.encode()) % (vocab - reserved) for w in words], dtype=np.int64)


def text_corpus() -> dict[str, list[str]]:
    """{package: SENTENCES_PER_CLASS prose sentences from its docstrings}, cached on disk."""
    versions = {pkg: importlib.metadata.version(dist) for pkg, dist in TEXT_PACKAGES.items()}
    path = data_root() / "sources" / f"docstring_sentences_v{CORPUS_VERSION}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached["versions"] == versions:
            return cached["sentences"]
    sentences = {pkg: package_sentences(pkg, SENTENCES_PER_CLASS) for pkg in TEXT_PACKAGES}
    short = {pkg: len(s) for pkg, s in sentences.items() if len(s) < SENTENCES_PER_CLASS}
    if short:
        raise RuntimeError(f"too few docstring sentences (need {SENTENCES_PER_CLASS}): {short}")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"versions": versions, "sentences": sentences}))
    return sentences


def package_sentences(package: str, limit: int) -> list[str]:
    """Up to ``limit`` distinct prose sentences from the docstrings of an installed package.

    Files are read in a fixed pseudo-random order (CRC-32 of their relative path), so the sample
    spreads over the package instead of its alphabetically first modules; test folders are skipped.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"source text needs the package {package!r}: pip install {TEXT_PACKAGES.get(package, package)}"
        )
    root = pathlib.Path(spec.origin).parent
    files = [f for f in root.rglob("*.py") if "tests" not in f.relative_to(root).parts]
    files.sort(key=lambda f: (zlib.crc32(f.relative_to(root).as_posix().encode()), f.as_posix()))
    found: dict[str, None] = {}  # ordered set
    for file in files:
        for doc in _docstrings(file):
            found.update(dict.fromkeys(prose_sentences(doc)))
        if len(found) >= limit:
            break
    return list(found)[:limit]


def _docstrings(file: pathlib.Path) -> Iterator[str]:
    try:
        tree = ast.parse(file.read_bytes())
    except (SyntaxError, ValueError):  # files for other Python versions, templates
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield doc


def prose_sentences(doc: str) -> Iterator[str]:
    """Sentences of the plain paragraphs of a docstring: indented blocks (code, parameter lists) and
    underlined section headers (numpydoc) are skipped; the rest must look like an English sentence."""
    for paragraph in re.split(r"\n\s*\n", doc):
        lines = paragraph.splitlines()
        if any(line[:1].isspace() for line in lines) or (len(lines) > 1 and set(lines[1].strip()) <= set("-=~^")):
            continue
        for sentence in _SENTENCE_END.split(" ".join(line.strip() for line in lines)):
            if _PROSE.fullmatch(sentence) and _WORDS[0] <= len(sentence.split()) <= _WORDS[1]:
                yield sentence


# -- vision ----------------------------------------------------------------------------------------


def natural_crops(n: int, size: tuple[int, int], seed: int) -> tuple[Tensor, Tensor]:
    """``n`` random crops (RGB in [0, 1], (n, 3, *size)) of the shipped photos, balanced over photos.

    Each crop covers CROP_FRACTION of the photo's shorter side with the aspect of ``size`` and is
    area-averaged down to ``size`` (RoIAlign with adaptive sampling on the pyramid level where a
    crop is 2-4x its output size), so it looks like a small natural image, not an aliased one.
    """
    from torchvision.ops import roi_align

    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(PHOTOS))
    images = torch.empty(n, 3, *size)
    for label, levels in enumerate(_pyramids()):
        index = np.flatnonzero(labels == label)
        _, height, width = levels[0].shape
        scale = (
            rng.uniform(*CROP_FRACTION, len(index)) * min(height, width) / max(size)
        )  # photo pixels per output pixel
        top, left = rng.uniform(0, height - scale * size[0]), rng.uniform(0, width - scale * size[1])
        boxes = np.stack([left, top, left + scale * size[1], top + scale * size[0]], 1)
        level = np.clip(np.floor(np.log2(scale / 2)), 0, len(levels) - 1).astype(int)
        for lv in np.unique(level):
            at = level == lv
            rois = torch.tensor(np.concatenate([np.zeros((at.sum(), 1)), boxes[at] / 2**lv], 1), dtype=torch.float32)
            images[index[at]] = roi_align(levels[lv][None], rois, output_size=size, sampling_ratio=-1, aligned=True)
    return images, torch.from_numpy(labels).long()


@functools.lru_cache(maxsize=1)
def _pyramids() -> tuple[list[Tensor], ...]:
    """Per photo: the photo and its 2x average-pooled reductions down to 32-64 pixels."""
    pyramids = []
    for photo in _photos():
        levels = [photo]
        while min(levels[-1].shape[-2:]) >= 64:
            levels.append(F.avg_pool2d(levels[-1][None], 2)[0])
        pyramids.append(levels)
    return tuple(pyramids)


def _photos() -> Iterator[Tensor]:
    """The PHOTOS as (3, H, W) float tensors in [0, 1]."""
    import skimage.data
    from sklearn.datasets import load_sample_image

    def load(name: str) -> np.ndarray:
        if name == "stereo_motorcycle":
            return skimage.data.stereo_motorcycle()[0]  # left view
        if name in ("china", "flower"):
            return load_sample_image(f"{name}.jpg")
        return getattr(skimage.data, name)()

    for name in PHOTOS:
        yield torch.from_numpy(np.array(load(name)[..., :3])).permute(2, 0, 1).float() / 255
