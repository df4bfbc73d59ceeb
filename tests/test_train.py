"""End-to-end training on the real default task (digits) with the real pretrained MiniLM."""

import math

import pytest
import torch

from pare_core.config import TrialConfig
from pare_core.methods.pare import joint_soft_label_loss
from pare_core.train import NonFiniteLossError, Run, fit, load_checkpoint

REQUIRED = {
    "epoch",
    "train_loss",
    "val_error",
    "val_accuracy",
    "samples_per_s",
    "epoch_s",
    "optimizer_steps",
    "wall_s",
    "batch_order_hash",
}
PARE_METRICS = {"ratio", "k", "gate_mean", "gate_selected_frac", "gate_score_std", "gate_score_range", "gate_rank_tau"}


@pytest.fixture
def tiny(tiny_budget) -> dict:
    """Two epochs of three steps, so epoch 2 follows a checkpoint."""
    return {**tiny_budget, "train.epochs": 2, "train.steps_per_epoch": 3}


def test_joint_soft_label_loss_matches_hand_computation():
    mix_logits = torch.tensor([[0.5, 1.5, 0.0]])
    src_logits = torch.tensor([[0.0, 3.0]])
    y, y_src, lam = torch.tensor([0]), torch.tensor([1]), torch.tensor([0.25])

    def ce(row, label):  # -log softmax, written out
        return -(row[label] - math.log(sum(math.exp(v) for v in row)))

    # multilabel: one 5-way soft label, 0.75 on target class 0 and 0.25 on source class 1 (index 3+1)
    joint = [0.5, 1.5, 0.0, 0.0, 3.0]
    expected_joint = (1 - 0.25) * ce(joint, 0) + 0.25 * ce(joint, 4)
    got = joint_soft_label_loss(mix_logits, src_logits, y, y_src, lam)
    assert got.shape == (1,) and got.item() == pytest.approx(expected_joint, rel=1e-6)


def test_every_epoch_reports_the_required_metrics_and_test_once(tiny):
    reports = []
    final = fit(TrialConfig.from_flat({**tiny, "method": "pare"}), lambda m, _ckpt: reports.append(dict(m)))
    assert [r["epoch"] for r in reports] == [1, 2]
    for r in reports:
        assert REQUIRED | PARE_METRICS <= set(r), (REQUIRED | PARE_METRICS) - set(r)
    assert [r["optimizer_steps"] for r in reports] == [3, 6]
    assert math.isnan(reports[0]["gate_rank_tau"]) and -1 <= reports[1]["gate_rank_tau"] <= 1
    assert 0 < reports[1]["gate_score_std"] < reports[1]["gate_score_range"] <= 1
    assert "test_error" not in reports[0] and "test_error" in reports[1] and final == reports[1]
    assert {"baseline/majority", "baseline/logreg", "baseline/1nn"} <= set(final)
    assert reports[0]["k"] > reports[1]["k"] and reports[0]["gate_selected_frac"] > 0


def test_resume_reproduces_the_uninterrupted_run(tmp_path, tiny):
    cfg = TrialConfig.from_flat({**tiny, "method": "pare", "gate.warm_frac": 0.5})
    straight = []
    fit(cfg, lambda m, ckpt: straight.append(dict(m)))
    saved = []

    def save_first(metrics, ckpt):
        if metrics["epoch"] == 1:
            ckpt.save(tmp_path)
            saved.append(metrics)

    fit(cfg, save_first)
    state = load_checkpoint(tmp_path)  # weights_only load
    assert state["epoch"] == 1
    frozen_query = "backbone.model.encoder.layer.0.attention.self.query.weight"
    assert frozen_query not in state["model"] and "head.proj.weight" in state["model"]  # frozen: rebuilt, not saved
    del state["model"]["head.proj.weight"]
    with pytest.raises(RuntimeError, match="missing.*head.proj.weight"):
        Run(cfg, state)
    resumed = []
    fit(cfg, lambda m, ckpt: resumed.append(dict(m)), resume=tmp_path)
    assert [r["epoch"] for r in resumed] == [2]
    for key in (
        "train_loss",
        "val_error",
        "gate_mean",
        "gate_selected_frac",
        "gate_rank_tau",
        "test_error",
        "optimizer_steps",
        "batch_order_hash",
    ):
        assert resumed[0][key] == pytest.approx(straight[1][key], abs=1e-6), key


def test_non_finite_loss_names_epoch_and_step(tiny):
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step \d+"):
        fit(
            TrialConfig.from_flat(
                {
                    **tiny,
                    "method": "finetune",
                    "train.lr": 1e30,
                    "train.clip": 0.0,
                    "train.warmup_frac": 0.0,
                    "finetune.body": "full",
                    "finetune.body_lr": 1e30,
                }
            )
        )


def test_injected_failure_only_on_a_fresh_start(tmp_path, tiny):
    cfg = TrialConfig.from_flat({**tiny, "method": "finetune", "runtime.fail_at_epoch": 2})
    with pytest.raises(RuntimeError, match="injected failure at epoch 2"):
        fit(cfg, lambda m, ckpt: ckpt.save(tmp_path))
    assert fit(cfg, resume=tmp_path)["epoch"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pare", "finetune"])
def test_methods_beat_chance_on_the_default_task(method):
    final = fit(TrialConfig.from_flat({"method": method, "train.epochs": 6, "runtime.threads": 1}))
    assert final["test_error"] < 0.35, final  # chance is 0.9 on 10 balanced classes
    assert final["test_error"] < final["baseline/majority"] - 0.4
