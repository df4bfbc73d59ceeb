"""Tabular tasks with exact local copies of ORCA's OpenML ids, scored by 1 - AUROC.

- ``spambase`` (OpenML 44; Debian r-cran-kernlab ``spam``): 57 word/character frequencies and
  capital-run lengths, log1p-transformed (heavy-tailed counts), 8 tokens of 8 features.
- ``vehicle`` (OpenML 54; Debian r-cran-mlbench ``Vehicle``): 18 silhouette features, 4 classes,
  4 tokens of 5 features.
- ``wdbc`` (OpenML 1510; scikit-learn ``load_breast_cancer``): 10 cell-nucleus measurements, each as
  mean, standard error and worst value: channels = (mean, se, worst), positions = measurements, so a
  token of 2 positions holds 6 related values.
Each has a fixed stratified test split (constant seed) and a train pool from the rest; every feature
is standardised with train statistics.
"""

from __future__ import annotations

import numpy as np

from pare_core.config import TaskConfig
from pare_core.tasks.base import TaskData, TaskSpec
from pare_core.tasks.common import assemble_fixed, cached, debian_file, read_rda, task
from pare_core.tasks.statlog import mlbench_frame

KERNLAB = "r-cran-kernlab"
KERNLAB_DATA = "/usr/lib/R/site-library/kernlab/data"


@task(
    TaskSpec(
        name="spambase",
        modality="tabular",
        kind="classification",
        layout="1d",
        input_shape=(1, 57),
        n_outputs=2,
        loss="ce",
        metric="auroc",
        stands_in_for="ORCA OpenML 44 (spambase)",
        default_tokens=8,
        source="Debian r-cran-kernlab spam.rda (UCI Spambase, 4601 e-mails)",
        class_names=("not spam", "spam"),
    )
)
def load_spambase(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:
        frame = read_rda(debian_file(KERNLAB, f"{KERNLAB_DATA}/spam.rda", "spambase"), "spam")
        values = frame.drop(columns="type").to_numpy(dtype=np.float64)
        return {
            "x": np.log1p(values).astype(np.float32)[:, None, :],
            "y": (frame["type"] == "spam").to_numpy().astype(np.int64),
        }

    arrays = cached("spambase", {"source": "kernlab spam.rda", "transform": "log1p"}, build)
    return assemble_fixed(
        load_spambase, cfg, seed, arrays["x"], arrays["y"], n_test=1000, default_n=1000, stats="feature"
    )


VEHICLES = ("bus", "opel", "saab", "van")


@task(
    TaskSpec(
        name="vehicle",
        modality="tabular",
        kind="classification",
        layout="1d",
        input_shape=(1, 18),
        n_outputs=4,
        loss="ce",
        metric="auroc",
        stands_in_for="ORCA OpenML 54 (vehicle)",
        default_tokens=4,
        source="Debian r-cran-mlbench Vehicle.rda (StatLog vehicle silhouettes, 846)",
        class_names=VEHICLES,
    )
)
def load_vehicle(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:
        frame = mlbench_frame("Vehicle", "vehicle")
        if tuple(frame["Class"].cat.categories) != VEHICLES:
            raise ValueError(f"unexpected Vehicle classes {tuple(frame['Class'].cat.categories)}")
        return {
            "x": frame.drop(columns="Class").to_numpy(dtype=np.float32)[:, None, :],
            "y": frame["Class"].cat.codes.to_numpy().astype(np.int64),
        }

    arrays = cached("vehicle", {"source": "mlbench Vehicle.rda"}, build)
    return assemble_fixed(load_vehicle, cfg, seed, arrays["x"], arrays["y"], n_test=346, default_n=500, stats="feature")


@task(
    TaskSpec(
        name="wdbc",
        modality="tabular",
        kind="classification",
        layout="1d",
        input_shape=(3, 10),
        n_outputs=2,
        loss="ce",
        metric="auroc",
        stands_in_for="ORCA OpenML 1510 (wdbc)",
        default_tokens=5,
        source="scikit-learn load_breast_cancer (UCI WDBC, 569)",
        class_names=("malignant", "benign"),
    )
)
def load_wdbc(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:  # cached: importing scikit-learn costs every trial ~1 s
        from sklearn.datasets import load_breast_cancer

        values, labels = load_breast_cancer(return_X_y=True)
        x = values.reshape(-1, 3, 10).astype(np.float32)  # columns: 10 means, 10 standard errors, 10 worst values
        return {"x": x, "y": labels.astype(np.int64)}

    arrays = cached("wdbc", {"source": "sklearn load_breast_cancer"}, build)
    return assemble_fixed(load_wdbc, cfg, seed, arrays["x"], arrays["y"], n_test=169, default_n=400, stats="feature")
