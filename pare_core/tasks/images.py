"""Image tasks: scikit-learn digits (the default task), Debian Fashion-MNIST, and Fashion-MNIST on the sphere.

Digits are presented as a 1D sequence of image rows (8 tokens x 8 pixels): rows as tokens learned in
the feasibility experiments, 2x2 patches (4 values per token) did not (docs/design-notes.md).
"""

from __future__ import annotations

import numpy as np

from pare_core.config import TaskConfig
from pare_core.tasks.base import TaskData, TaskSpec
from pare_core.tasks.common import (
    POOL_SEED,
    TEST_SEED,
    assemble,
    cached,
    debian_file,
    rows_split,
    sample_rng,
    stratified_pick,
    task,
)

DIGITS_POOL = 500  # the prototype's stratified pool; the other 1297 images are the test split


@task(
    TaskSpec(
        name="digits",
        modality="image",
        kind="classification",
        layout="1d",
        input_shape=(8, 8),
        n_outputs=10,
        loss="ce",
        metric="accuracy",
        stands_in_for="ORCA OpenML 28 optdigits / small-image classification",
        default_tokens=8,
        source="scikit-learn load_digits (UCI optdigits test part, 1797 images)",
        class_names=("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    )
)
def load_digits(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:  # cached: importing scikit-learn costs every trial ~1 s
        from sklearn.datasets import load_digits as sklearn_digits

        images, labels = sklearn_digits(return_X_y=True)
        x = images.reshape(-1, 8, 8).transpose(0, 2, 1).astype(np.float32)  # (N, C=pixels of a row, L=rows)
        return {"x": x, "y": labels.astype(np.int64)}

    arrays = cached("digits", {"source": "sklearn load_digits"}, build)
    x, y = arrays["x"], arrays["y"]
    in_pool = np.zeros(len(y), bool)
    in_pool[stratified_pick(y, DIGITS_POOL, np.random.default_rng(TEST_SEED))] = True
    return assemble(load_digits.spec, cfg, seed, rows_split(x, y, ~in_pool), default_n=DIGITS_POOL, stats="feature")


# -- Fashion-MNIST (Debian dataset-fashion-mnist) ----------------------------------------------------

FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
FASHION_POOL, FASHION_TEST = 2000, 2000
FASHION_TRAIN_ROWS = 60_000  # test ids are offset by this, so ids never collide across official splits


def _idx_file(name: str, task_name: str, offset: int) -> np.ndarray:
    import gzip

    path = debian_file(FASHION_PACKAGE, f"{FASHION_DIR}/{name}", task_name)
    with gzip.open(path) as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def fashion_subset(n_pool: int, n_test: int, task_name: str) -> dict[str, np.ndarray]:
    """Stratified constant-seed draws: ``n_pool`` images of the official train split, ``n_test`` of its test split.

    Images are (N, 28, 28) uint8, ids are rows of the official train split (test: 60000 + row).
    """

    def build() -> dict[str, np.ndarray]:
        out = {}
        for split, prefix, n, seed, offset in (
            ("pool", "train", n_pool, POOL_SEED, 0),
            ("test", "t10k", n_test, TEST_SEED, FASHION_TRAIN_ROWS),
        ):
            images = _idx_file(f"{prefix}-images-idx3-ubyte.gz", task_name, 16).reshape(-1, 28, 28)
            labels = _idx_file(f"{prefix}-labels-idx1-ubyte.gz", task_name, 8).astype(np.int64)
            rows = stratified_pick(labels, n, np.random.default_rng(seed))
            out.update({f"x_{split}": images[rows], f"y_{split}": labels[rows], f"ids_{split}": rows + offset})
        return out

    return cached("fashion_mnist", {"pool": n_pool, "test": n_test}, build)


@task(
    TaskSpec(
        name="fashion_mnist",
        modality="image",
        kind="classification",
        layout="2d",
        input_shape=(1, 28, 28),
        n_outputs=10,
        loss="ce",
        metric="accuracy",
        stands_in_for="NB360 CIFAR-100 (2D image classification)",
        default_tokens=16,
        source="Debian dataset-fashion-mnist (Zalando, OpenML 40996)",
        class_names=FASHION_CLASSES,
    )
)
def load_fashion_mnist(cfg: TaskConfig, seed: int) -> TaskData:
    data = fashion_subset(cfg.n_train or FASHION_POOL, FASHION_TEST, "fashion_mnist")
    images = {f"x_{split}": data[f"x_{split}"][:, None].astype(np.float32) for split in ("pool", "test")}
    return assemble(load_fashion_mnist.spec, cfg, seed, {**data, **images}, default_n=FASHION_POOL, stats="channel")


# -- Spherical: Fashion-MNIST projected onto the sphere -------------------------------------------------

SPHERE_BANDWIDTH = 30  # 2b x 2b = 60 x 60 equiangular grid, NB360 Spherical's size
SPHERICAL_KEY = 14_142
SPHERICAL_POOL, SPHERICAL_TEST = 2000, 1000


def equiangular_grid(bandwidth: int) -> np.ndarray:
    """(2b, 2b, 3) unit vectors of the Driscoll-Healy grid: colatitude pi(2j+1)/4b, longitude pi k/b."""
    theta = np.pi * (2 * np.arange(2 * bandwidth) + 1) / (4 * bandwidth)
    phi = np.pi * np.arange(2 * bandwidth) / bandwidth
    t, p = np.meshgrid(theta, phi, indexing="ij")
    return np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix uniform on SO(3) (normalised Gaussian quaternion)."""
    w, x, y, z = (q := rng.standard_normal(4)) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def project_to_sphere(image: np.ndarray, rotation: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sample a square image, placed on the sphere, at the rotated grid points (S2CNN's spherical MNIST).

    The image lies in the plane of a stereographic projection from the north pole, spanning [-1, 1]^2
    (its inscribed disc is the southern hemisphere); each grid point, rotated by ``rotation``, is
    projected to that plane and the image is interpolated there (bilinear; zero off the image).
    """
    from scipy.ndimage import map_coordinates

    points = grid @ rotation  # rows are R^T p: the grid seen from the image's frame
    with np.errstate(divide="ignore", invalid="ignore"):
        plane = points[..., :2] / (1.0 - points[..., 2:3])
    size = image.shape[0]
    rows = (1.0 - plane[..., 1]) / 2.0 * size - 0.5
    cols = (plane[..., 0] + 1.0) / 2.0 * size - 0.5
    finite = np.isfinite(rows) & np.isfinite(cols)
    coords = np.where(finite, np.stack([rows, cols]), -10.0)  # the north pole itself maps off the image
    return map_coordinates(image.astype(np.float64), coords, order=1, mode="constant", cval=0.0)


def spherical_images(images: np.ndarray, split: str) -> np.ndarray:
    """Project each image with its own rotation, from seed (SPHERICAL_KEY, split, i)."""
    grid = equiangular_grid(SPHERE_BANDWIDTH)
    out = np.empty((len(images), 1, 2 * SPHERE_BANDWIDTH, 2 * SPHERE_BANDWIDTH), np.float32)
    for i, image in enumerate(images):
        out[i, 0] = project_to_sphere(image, random_rotation(sample_rng(SPHERICAL_KEY, split, i)), grid)
    return out


@task(
    TaskSpec(
        name="spherical",
        modality="spherical",
        kind="classification",
        layout="2d",
        input_shape=(1, 2 * SPHERE_BANDWIDTH, 2 * SPHERE_BANDWIDTH),
        n_outputs=10,
        loss="ce",
        metric="accuracy",
        stands_in_for="NB360 Spherical (CIFAR-100 projected on the sphere)",
        default_tokens=16,
        source="Debian dataset-fashion-mnist, projected onto a 60x60 equiangular sphere grid with random rotations",
        class_names=FASHION_CLASSES,
    )
)
def load_spherical(cfg: TaskConfig, seed: int) -> TaskData:
    n = cfg.n_train or SPHERICAL_POOL
    source = fashion_subset(n, SPHERICAL_TEST, "spherical")

    def build() -> dict[str, np.ndarray]:
        return {"pool": spherical_images(source["x_pool"], "pool"), "test": spherical_images(source["x_test"], "test")}

    sphere = cached(
        "spherical", {"pool": n, "test": SPHERICAL_TEST, "key": SPHERICAL_KEY, "bandwidth": SPHERE_BANDWIDTH}, build
    )
    splits = {**source, "x_pool": sphere["pool"], "x_test": sphere["test"]}
    return assemble(load_spherical.spec, cfg, seed, splits, default_n=SPHERICAL_POOL, stats="channel")
