"""Every task learns: a short fine-tune of the default backbone beats the task's trivial baseline.

The trivial baseline (majority class, or the mean training field for dense tasks) is computed by
``fit`` on the same split; the fine-tuned model's test error must be below it. The budget is a fixed
number of optimiser steps on one torch thread (the suite runs two test processes on two cores): 40
steps of 16 samples at lr 3e-3. Measured on 1 CPU thread (test error / baseline): digits 0.24,
dna 0.75, fashion_mnist 0.54, spherical 0.89, burgers 0.60, cosmic 0.67, satellite 0.22, motions 0.00,
vowels 0.02, spambase 0.09, vehicle 0.43, wdbc 0.03 (3-15 CPU-s each). The two that learn slowest get
80 steps: at 40 darcy does not yet beat its mean field (1.04) and ecg keeps 3 % of margin; at 80 they
reach 0.64 and 0.89 (14 CPU-s each).

The earlier budget, 40 steps of 32 at the default lr 1e-3 (80 for darcy, spherical, cosmic and ecg),
had wider margins on fashion_mnist (0.47), vehicle (0.39), darcy (0.60) and spherical (0.87), and
narrower or equal ones elsewhere (ecg 0.91, the thinnest then); this file then took 221 CPU-s against
149 now (one process, run side by side).
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
    "train.batch_size": 16,
    "train.lr": 3e-3,
    "runtime.threads": 1,
    "task.max_test": 500,  # the baseline is scored on the same fixed subset
}
SLOW_LEARNERS = {"darcy", "ecg"}


@pytest.mark.parametrize("name", list(TASKS))
def test_short_finetune_beats_the_trivial_baseline(name):
    steps = {"train.steps_per_epoch": 40} if name in SLOW_LEARNERS else {}
    result = fit(TrialConfig.from_flat({**BUDGET, **steps, "task.name": name}))
    assert result["baseline/majority"] > result["test_error"], result
