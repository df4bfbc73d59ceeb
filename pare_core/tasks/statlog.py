"""StatLog sets from Debian ``r-cran-mlbench`` (read with ``rdata``, no R needed): DNA splice, Satellite.

Both have a natural token structure: DNA is 60 bases x 3 indicator bits (C=3, L=60; 12 tokens of 5
bases = 15 values, where pretrained MiniLM beat scratch by ~11 points in the feasibility experiments,
docs/design-notes.md), Satellite is
a 3x3 pixel neighbourhood x 4 spectral bands (C=4 bands, L=9 pixels).
"""

from __future__ import annotations

import numpy as np

from pare_core.config import TaskConfig
from pare_core.tasks.base import TaskData, TaskSpec
from pare_core.tasks.common import assemble_fixed, cached, debian_file, read_rda, task

MLBENCH = "r-cran-mlbench"
MLBENCH_DATA = "/usr/lib/R/site-library/mlbench/data"


def mlbench_frame(name: str, task_name: str):
    """An mlbench data frame (pandas), e.g. ``"DNA"`` from ``DNA.rda``."""
    return read_rda(debian_file(MLBENCH, f"{MLBENCH_DATA}/{name}.rda", task_name), name)


@task(
    TaskSpec(
        name="dna",
        modality="dna",
        kind="classification",
        layout="1d",
        input_shape=(3, 60),
        n_outputs=3,
        loss="ce",
        metric="accuracy",
        stands_in_for="NB360 DeepSEA (genomics)",
        default_tokens=12,
        source="Debian r-cran-mlbench DNA.rda (StatLog splice junctions, 3186 sequences)",
        class_names=("exon intron boundary", "intron exon boundary", "neither"),
    )
)
def load_dna(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:
        frame = mlbench_frame("DNA", "dna")
        bits = frame.drop(columns="Class").to_numpy(dtype=np.float32)  # (N, 180), 3 consecutive bits per base
        return {
            "x": bits.reshape(-1, 60, 3).transpose(0, 2, 1).copy(),
            "y": frame["Class"].cat.codes.to_numpy().astype(np.int64),
        }  # ei, ie, n

    arrays = cached("dna", {"source": "mlbench DNA.rda"}, build)
    return assemble_fixed(load_dna, cfg, seed, arrays["x"], arrays["y"], n_test=1000, default_n=1000, stats="feature")


SATELLITE_CLASSES = (
    "red soil",
    "cotton crop",
    "grey soil",
    "damp grey soil",
    "vegetation stubble",
    "very damp grey soil",
)


@task(
    TaskSpec(
        name="satellite",
        modality="satellite",
        kind="classification",
        layout="1d",
        input_shape=(4, 9),
        n_outputs=6,
        loss="ce",
        metric="accuracy",
        stands_in_for="NB360 Satellite (satellite image time series)",
        default_tokens=9,
        source="Debian r-cran-mlbench Satellite.rda (StatLog Landsat, 6435 3x3 neighbourhoods, OpenML 182)",
        class_names=SATELLITE_CLASSES,
    )
)
def load_satellite(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:
        frame = mlbench_frame("Satellite", "satellite")
        if tuple(frame["classes"].cat.categories) != SATELLITE_CLASSES:
            raise ValueError(f"unexpected Satellite classes {tuple(frame['classes'].cat.categories)}")
        values = frame.drop(columns="classes").to_numpy(dtype=np.float32)  # 9 pixels x 4 bands, pixel-major
        return {
            "x": values.reshape(-1, 9, 4).transpose(0, 2, 1).copy(),
            "y": frame["classes"].cat.codes.to_numpy().astype(np.int64),
        }

    arrays = cached("satellite", {"source": "mlbench Satellite.rda"}, build)
    return assemble_fixed(
        load_satellite, cfg, seed, arrays["x"], arrays["y"], n_test=1000, default_n=1000, stats="feature"
    )
