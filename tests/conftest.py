"""Test environment: offline hub, Ray on loopback without auth tokens, CPU threads kept small."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_budget() -> dict:
    """The smallest real fit the tests run: 160 training samples, 200 test samples, one epoch of two steps of 16, a 200-sample
    source set, one torch thread. Tests override what they need (``{**tiny_budget, "train.epochs": 3}``);
    shared by the whole session (so module fixtures can build on it): copy it, never change it."""
    return {
        "task.n_train": 160,
        "task.max_test": 200,
        "train.batch_size": 16,
        "train.epochs": 1,
        "train.steps_per_epoch": 2,
        "source.size": 200,
        "runtime.threads": 1,
    }
