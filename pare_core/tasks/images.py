"""Image tasks: scikit-learn digits (the default task) and Debian Fashion-MNIST.

Digits are presented as a 1D sequence of image rows (8 tokens x 8 pixels): rows as tokens learned in
the prototype, 2x2 patches (4 values per token) did not (reference/prototype.md).
"""

from __future__ import annotations

import numpy as np

from pare_core.config import TaskConfig
from pare_core.tasks.base import TaskData, TaskSpec
from pare_core.tasks.common import TEST_SEED, assemble, stratified_pick, task

DIGITS_POOL = 500  # the prototype's stratified pool; the other 1297 images are the test split


@task(TaskSpec(
    name="digits", modality="image", kind="classification", layout="1d", input_shape=(8, 8), n_outputs=10,
    loss="ce", metric="accuracy", stands_in_for="ORCA OpenML 28 optdigits / small-image classification",
    default_tokens=8, source="scikit-learn load_digits (UCI optdigits test part, 1797 images)",
    class_names=("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
))
def load_digits(cfg: TaskConfig, seed: int) -> TaskData:
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = sklearn_digits(return_X_y=True)
    x = images.reshape(-1, 8, 8).transpose(0, 2, 1).astype(np.float32)  # (N, C=pixels of a row, L=rows)
    y = labels.astype(np.int64)
    ids = np.arange(len(y))
    in_pool = np.zeros(len(y), bool)
    in_pool[stratified_pick(y, DIGITS_POOL, np.random.default_rng(TEST_SEED))] = True
    return assemble(load_digits.spec, cfg.n_train, cfg.val_frac, seed, default_n=DIGITS_POOL, stats="feature",
                    pool=(x[in_pool], y[in_pool], ids[in_pool]), test=(x[~in_pool], y[~in_pool], ids[~in_pool]))
