"""Every task learns: a short fine-tune of the default backbone beats the task's trivial baseline.

The trivial baseline (majority class, or the mean training field for dense tasks) is computed by
``fit`` on the same split; the fine-tuned model's test error must be below it. The budget is a fixed
number of optimiser steps on one torch thread (the suite runs two test processes on two cores): 40
steps, where the fit beats the baseline with a wide margin, measured on 1 CPU thread (test error /
baseline): digits 0.29, dna 0.75, fashion_mnist 0.47, burgers 0.66, satellite 0.23, motions 0.00,
vowels 0.04, spambase 0.12, vehicle 0.39, wdbc 0.03 (4-14 s each). The tasks that learn slowest get
80 steps: at 40 darcy does not yet beat its mean field (1.04) and spherical, cosmic and ecg keep less
than 15 % of margin; at 80 they reach 0.60, 0.87, 0.72 and 0.91.
"""

import pytest

from pare_core.config import TrialConfig
from pare_core.tasks import TASKS
from pare_core.train import fit

pytestmark = pytest.mark.slow  # real sweeps or long fits: in CI, not in the fast tier

BUDGET = {
    "method": "finetune",
    "train.epochs": 2,
    "train.steps_per_epoch": 20,
    "train.batch_size": 32,
    "runtime.threads": 1,
    "task.max_test": 500,  # the baseline is scored on the same fixed subset
}
SLOW_LEARNERS = {"train.steps_per_epoch": 40}
# Darcy's target is a smooth field the head must first learn to produce at all: at the default lr
# 80 steps only reach the mean field (rel. L2 0.247 vs 0.250); at 3e-3 they reach 0.152.
OVERRIDES = {
    "darcy": {**SLOW_LEARNERS, "train.lr": 3e-3},
    "spherical": SLOW_LEARNERS,
    "cosmic": SLOW_LEARNERS,
    "ecg": SLOW_LEARNERS,
}


@pytest.mark.parametrize("name", list(TASKS))
def test_short_finetune_beats_the_trivial_baseline(name):
    result = fit(TrialConfig.from_flat({**BUDGET, **OVERRIDES.get(name, {}), "task.name": name}))
    assert result["baseline/majority"] > result["test_error"], result
