"""Cosmic-ray detection on a real Hubble image: the NB360 Cosmic stand-in (per-pixel mask, 1 - AUROC).

NB360's Cosmic task (deepCR) labels cosmic-ray hits in HST frames. Here the sky is real: 32 x 32
crops of ``skimage.data.hubble_deep_field()`` (HST, grey = mean of RGB, scaled to [0, 1]), with its
stars and galaxies, which a detector must not flag. Cosmic rays are injected with a known mask: a
Poisson(4) number of hits per crop, each a straight track (length 0 with probability 0.3, else
exponential with mean 4 px, at most 12) at a random angle, drawn by bilinear splatting at half-pixel
steps, so a track is 1-2 px wide and sharp, unlike the telescope-blurred sources. Peak amplitudes are
log-normal (median 0.2, ~15 sigma of the image noise). Target: pixels where the injected signal
exceeds 3 sigma of the image noise (robust MAD of the image minus its 3x3 median).

Pool crops come from the left 750 columns of the image and test crops from the right 250, so no test
pixel of sky was seen in training (validation crops, carved from the pool, may overlap training
crops). Each crop is rotated by a random multiple of 90 degrees and maybe mirrored. Sample i of a split
comes from seed ``(COSMIC_KEY, split, i)``; ``extras["crops"]`` holds each crop's (row, column).
"""

from __future__ import annotations

import numpy as np

from pare_core.config import TaskConfig
from pare_core.tasks.base import TaskData, TaskSpec
from pare_core.tasks.common import load_generated, python_module, sample_ids, sample_rng, task

COSMIC_KEY = 16_180
SIZE = 32
TEST_COLUMN = 750  # pool crops lie left of it, test crops right of it
HITS_PER_CROP, POINT_LIKE, MEAN_LENGTH, MAX_LENGTH = 4.0, 0.3, 4.0, 12.0
AMPLITUDE_MEDIAN, AMPLITUDE_LOG_SIGMA, MASK_SIGMAS = 0.2, 0.7, 3.0
TEST, POOL = 300, 1000


def sky() -> tuple[np.ndarray, float]:
    """The Hubble Deep Field in grey, [0, 1], and its robust noise sigma."""
    from scipy.ndimage import median_filter

    data = python_module("skimage.data", "scikit-image", "cosmic")
    image = data.hubble_deep_field().astype(np.float64).mean(axis=-1) / 255.0
    residual = image - median_filter(image, size=3)
    return image, float(1.4826 * np.median(np.abs(residual - np.median(residual))))


def cosmic_rays(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size) image of injected cosmic-ray signal (zero where no ray hit)."""
    signal = np.zeros((size + 1, size + 1))  # one spare row/column for the bilinear splat
    for _ in range(rng.poisson(HITS_PER_CROP)):
        length = 0.0 if rng.random() < POINT_LIKE else min(rng.exponential(MEAN_LENGTH), MAX_LENGTH)
        angle = rng.uniform(0, np.pi)
        amplitude = AMPLITUDE_MEDIAN * np.exp(AMPLITUDE_LOG_SIGMA * rng.standard_normal())
        centre = rng.uniform(0, size - 1, size=2)
        steps = np.linspace(-length / 2, length / 2, max(1, int(2 * length) + 1))
        rows = np.clip(centre[0] + steps * np.sin(angle), 0, size - 1)
        cols = np.clip(centre[1] + steps * np.cos(angle), 0, size - 1)
        weight = amplitude * (0.5 if length > 0 else 1.0)  # half-pixel steps: ~amplitude per pixel crossed
        r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
        fr, fc = rows - r0, cols - c0
        for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            np.add.at(signal, (r0 + dr, c0 + dc), weight * w)
    return signal[:size, :size]


def generate(split: str, n: int) -> dict[str, np.ndarray]:
    """``n`` (crop + rays, ray mask) pairs from the split's part of the sky."""
    image, sigma = sky()
    lo, hi = (0, TEST_COLUMN) if split == "pool" else (TEST_COLUMN, image.shape[1])
    x = np.empty((n, 1, SIZE, SIZE), np.float32)
    y = np.empty((n, 1, SIZE, SIZE), np.float32)
    crops = np.empty((n, 2), np.int64)
    for i in range(n):
        rng = sample_rng(COSMIC_KEY, split, i)
        top, left = rng.integers(0, image.shape[0] - SIZE + 1), rng.integers(lo, hi - SIZE + 1)
        crop = np.rot90(image[top : top + SIZE, left : left + SIZE], k=rng.integers(4))
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        rays = cosmic_rays(rng, SIZE)
        x[i, 0], y[i, 0], crops[i] = crop + rays, rays > MASK_SIGMAS * sigma, (top, left)
    return {"x": x, "y": y, "ids": sample_ids(split, n), "crops": crops}


@task(
    TaskSpec(
        name="cosmic",
        modality="astronomy",
        kind="dense",
        layout="2d",
        input_shape=(1, SIZE, SIZE),
        n_outputs=1,
        loss="bce",
        metric="auroc",
        stands_in_for="NB360 Cosmic (deepCR cosmic-ray masks)",
        default_tokens=16,
        source="scikit-image hubble_deep_field (real HST image) + injected cosmic rays with known masks",
        output_shape=(1, SIZE, SIZE),
    )
)
def load_cosmic(cfg: TaskConfig, seed: int) -> TaskData:
    params = {"size": SIZE, "key": COSMIC_KEY, "test_column": TEST_COLUMN}
    return load_generated(load_cosmic, cfg, seed, generate=generate, params=params, pool_size=POOL, test_size=TEST)
