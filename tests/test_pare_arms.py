"""Arms of a PaRe ablation differ only in what they ablate (docs/methods.md, "Paired arms")."""

import pytest
import torch

from pare_core.config import TrialConfig
from pare_core.methods.pare import frozen_running_stats
from pare_core.train import Run, fit

pytestmark = pytest.mark.slow  # real sweeps or long fits: in CI, not in the fast tier


@pytest.fixture
def tiny(tiny_budget) -> dict:
    """Three PaRe epochs of four steps: the warm phase and two hard-top-k epochs."""
    return {
        **tiny_budget,
        "train.epochs": 3,
        "train.steps_per_epoch": 4,
        "source.size": 64,
        "method": "pare",
    }


@pytest.fixture
def curve(tiny):
    """Every epoch's report of a real fit of ``tiny`` + ``flat``."""

    def run(flat: dict) -> list[dict]:
        reports = []
        fit(TrialConfig.from_flat({**tiny, **flat}), lambda m, _ckpt: reports.append(dict(m)))
        return reports

    return run


def test_nothing_replaced_is_the_objective_without_replacement(curve):
    """A threshold no gate score passes replaces nothing: exactly the `none` arm, every epoch."""
    none = curve({"gate.selection": "none"})
    unreachable = curve({"gate.selection": "threshold", "gate.threshold": 1.0})
    assert all(r["k"] > 0 and r["gate_selected_frac"] == 0 for r in unreachable)
    for a, b in zip(none, unreachable):
        for key in ("train_loss", "val_error", "batch_order_hash"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), key
    assert none[-1]["test_error"] == pytest.approx(unreachable[-1]["test_error"], abs=1e-6)


def test_arms_with_one_seed_see_the_same_batches_all_run(curve):
    """Method draws (source picks, Gumbel noise, random positions) come from their own stream."""
    hashes = {
        sel: [r["batch_order_hash"] for r in curve({"gate.selection": sel})] for sel in ("random", "topk", "none")
    }
    assert hashes["random"] == hashes["topk"] == hashes["none"]
    assert len(set(hashes["topk"])) == len(hashes["topk"])  # a new order every epoch
    other_seed = [r["batch_order_hash"] for r in curve({"gate.selection": "topk", "seed": 1})]
    assert other_seed != hashes["topk"]


def test_batchnorm_bodies_keep_mixed_samples_out_of_the_clean_statistics(tiny):
    cfg = TrialConfig.from_flat({**tiny, "backbone.name": "efficientnet_lite0", "train.epochs": 2})
    run = Run(cfg, resume=None)
    model, method = run.model, run.method
    model.train()
    run.ctx.epoch = 0
    method.start_epoch(run.ctx)
    assert method.k > 0
    x, y = run.ctx.x_train[:16], run.ctx.y_train[:16]
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms
    before = [m.running_mean.clone() for m in norms]
    out = method.loss(run.ctx, x, y, method.draw(run.ctx, x))
    after_step = [m.running_mean.clone() for m in norms]
    for m, value in zip(norms, before):  # replay the clean pass alone from the same start
        m.running_mean.copy_(value)
    with torch.no_grad():
        clean = model.encode(model.embed(x))
    assert torch.allclose(out.features, clean, atol=1e-5)  # clean features normalised by clean samples only
    for m, stepped in zip(norms, after_step):
        assert torch.allclose(m.running_mean, stepped, atol=1e-6)
    with frozen_running_stats(model.backbone):  # and the helper itself leaves running statistics alone
        model.encode(torch.randn(16, *model.embed(x).shape[1:]))
    for m, stepped in zip(norms, after_step):
        assert torch.allclose(m.running_mean, stepped, atol=1e-6)


def test_stage_steps_are_charged_to_the_budget(tiny):
    reports = []
    fit(
        TrialConfig.from_flat({**tiny, "method": "orca", "align.epochs": 2, "train.epochs": 1}),
        lambda m, _ckpt: reports.append(dict(m)),
    )
    assert reports[-1]["optimizer_steps"] == 2 + 4 and reports[-1]["wall_s"] > 0
