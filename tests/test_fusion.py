"""Fused seeds train exactly as separate runs do (``pare_core.fusion``: the equivalence contract).

Seeds {0, 1, 2} run separately with ``fit`` and fused with ``fit_seeds`` on the tiny budget, for
fine-tuning and for PaRe in both gate phases (epoch 1 warm: Gumbel straight-through; epoch 2 hard
top-k). Every seed's per-epoch metrics must agree within ``RTOL``: the batched matrix products sum in
another order, so float rounding differs; a different data order, draw or dropout mask would differ by
far more (e.g. one dropout mask changed moves train_loss by ~1e-2). The batch fingerprints must match
exactly. A resumed fused run continues every seed, and a diverging seed fails alone. And the point of
fusing (issue 21): every seed's trainable weights are one stacked tensor, so a fused step's matrix
products are batched products, as many for four seeds as for one, not a Python loop per seed.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from pare_core.config import TrialConfig
from pare_core.fusion import FUSED_STEP, FusedRun, fit_seeds, fusion_blocker
from pare_core.inspect import gate_map
from pare_core.train import NonFiniteLossError, fit

SEEDS = [0, 1, 2]
RTOL = 1e-4
COMPARED = ("train_loss", "val_error", "val_loss", "gate_mean", "gate_selected_frac", "gate_score_std", "test_error")
ARMS = {
    "finetune": {"method": "finetune"},
    "pare": {"method": "pare", "gate.warm_frac": 0.5},  # 1 warm epoch of 2, then hard top-k
}


@pytest.fixture(scope="module")
def budget(tiny_budget) -> dict:
    return {**tiny_budget, "train.epochs": 2, "train.steps_per_epoch": 3}


@pytest.fixture(scope="module")
def separate(budget) -> dict[str, dict[int, list[dict]]]:
    """Each arm's seeds trained one by one, as unfused trials are."""
    out: dict[str, dict[int, list[dict]]] = {}
    for arm, keys in ARMS.items():
        out[arm] = {}
        for seed in SEEDS:
            rows: list[dict] = []
            fit(TrialConfig.from_flat({**budget, **keys, "seed": seed}), lambda m, _c, rows=rows: rows.append(m))
            out[arm][seed] = rows
    return out


def fused(flat: dict, report=None, resume=None) -> dict[int, list]:
    rows: dict[int, list] = {seed: [] for seed in SEEDS}

    def collect(results, checkpointer):
        for seed, result in results.items():
            rows[seed].append(result)
        if report is not None:
            report(results, checkpointer)

    fit_seeds(TrialConfig.from_flat(flat), SEEDS, collect, resume=resume)
    return rows


def assert_same(expected: list[dict], got: list[dict]) -> None:
    assert [r["epoch"] for r in got] == [r["epoch"] for r in expected]
    for want, have in zip(expected, got):
        assert set(want) <= set(have)
        assert have["batch_order_hash"] == want["batch_order_hash"]
        for key in COMPARED:
            if key in want:
                assert have[key] == pytest.approx(want[key], rel=RTOL, abs=1e-7), (key, want["epoch"])


@pytest.mark.slow
@pytest.mark.parametrize("arm", ARMS)
def test_fused_seeds_match_separate_runs(arm, budget, separate):
    rows = fused({**budget, **ARMS[arm]})
    for seed in SEEDS:
        assert_same(separate[arm][seed], rows[seed])
        assert all(r["fused_seeds"] == len(SEEDS) for r in rows[seed])
    if arm == "pare":  # both gate phases ran
        assert [r["gate_warm"] for r in rows[0]] == [1.0, 0.0]


@pytest.mark.slow
def test_a_resumed_fused_run_continues_every_seed(budget, separate, tmp_path):
    flat = {**budget, **ARMS["pare"]}

    def save_after_first(results, checkpointer):
        if next(iter(results.values()))["epoch"] == 1:
            checkpointer.save(tmp_path)

    first = fused(flat, save_after_first)
    resumed = fused(flat, resume=tmp_path)
    for seed in SEEDS:
        assert_same(separate["pare"][seed][1:], resumed[seed])
        assert resumed[seed][-1]["test_error"] == first[seed][-1]["test_error"]
    # one seed of the fused checkpoint, rebuilt alone (analysis draws its gate this way)
    maps = [gate_map(tmp_path, {**flat, "seed": seed}) for seed in SEEDS]
    assert all(m["epoch"] == 1 for m in maps) and len({m["scores"].tobytes() for m in maps}) == len(SEEDS)


@pytest.mark.slow
def test_a_diverging_seed_fails_alone(budget, separate):
    def poison_seed_1(results, checkpointer):  # seed 1's head weights become NaN after epoch 1
        if isinstance(results.get(1), dict) and results[1]["epoch"] == 1:
            fused_run = checkpointer._fused
            with torch.no_grad():
                fused_run.stacked["head.proj.weight"][1].fill_(math.nan)

    rows = fused({**budget, **ARMS["finetune"]}, poison_seed_1)
    assert isinstance(rows[1][-1], NonFiniteLossError) and "epoch 2, step 1" in str(rows[1][-1])
    assert len(rows[1]) == 2 and isinstance(rows[1][0], dict)  # trained, then reported failed once
    for seed in (0, 2):
        assert_same(separate["finetune"][seed], rows[seed])


@pytest.mark.slow
def test_every_seed_failing_raises(budget):
    def poison_all(results, checkpointer):
        with torch.no_grad():
            checkpointer._fused.stacked["head.proj.weight"].fill_(math.nan)

    with pytest.raises(NonFiniteLossError):
        fused({**budget, **ARMS["finetune"]}, poison_all)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"method": "orca"}, "method=orca"),
        ({"method": "mona"}, "method=mona"),
        ({"method": "pare", "align.epochs": 2}, "align.epochs"),
        ({"aux": "lsg"}, "aux=lsg"),
        ({"backbone.name": "efficientnet_lite0"}, "backbone.name=efficientnet_lite0"),
        ({"runtime.compile": True}, "runtime.compile"),
        ({"runtime.capture": True}, "runtime.capture"),
    ],
)
def test_what_cannot_be_fused_says_why(keys, reason):
    cfg = TrialConfig.from_flat(keys)
    assert reason in fusion_blocker(cfg)
    with pytest.raises(ValueError, match="cannot be fused"):
        fit_seeds(cfg, SEEDS)


def test_the_default_arms_fuse():
    assert fusion_blocker(TrialConfig()) is None
    assert fusion_blocker(TrialConfig.from_flat({"method": "finetune"})) is None


MATMULS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm")


def step_matmuls(flat: dict, seeds: list[int]) -> tuple[Counter, list[int]]:
    """The matrix products inside one fused training step (forward, backward, optimiser: the
    ``FUSED_STEP`` profiler range) of ``seeds``, counted by op, and the batch sizes of its ``bmm``s."""
    fused = FusedRun(TrialConfig.from_flat(flat), seeds, None)

    def in_step(event) -> bool:
        while event is not None and event.name != FUSED_STEP:
            event = event.cpu_parent
        return event is not None

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fused._train_epoch()
    ops = [e for e in prof.events() if e.name in MATMULS and in_step(e)]
    return Counter(e.name for e in ops), [e.input_shapes[0][0] for e in ops if e.name == "aten::bmm"]


def test_a_fused_step_batches_the_seeds_matrix_products(tiny_budget):
    """A RoBERTa body (tiny random config of the real model code) fine-tuned whole under PaRe: every body
    weight trains, so every seed has its own, stacked. One step of four seeds runs the same matrix
    products as one of one seed, with the seeds as the batch of each ``bmm``."""
    flat = {
        **tiny_budget,
        "train.steps_per_epoch": 1,
        "task.max_test": 50,
        "backbone.name": "roberta_base",
        "backbone.tiny": True,
        "finetune.body": "full",
        "task.tokens": 8,
    }
    one, one_batches = step_matmuls(flat, [0])
    four, four_batches = step_matmuls(flat, [0, 1, 2, 3])
    assert one["aten::bmm"] > 0
    assert four == one
    assert max(four_batches) == 4 * max(one_batches)
