"""Metrics and losses against hand computations and direct scikit-learn calls."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from pare_core.metrics import evaluate, loss_fn
from pare_core.tasks.base import TaskSpec


def spec(kind: str, metric: str, n_outputs: int = 3, loss: str = "ce") -> TaskSpec:
    return TaskSpec(
        name="t",
        modality="test",
        kind=kind,
        layout="1d",
        input_shape=(1, 4),
        n_outputs=n_outputs,
        loss=loss,
        metric=metric,
        stands_in_for="-",
        default_tokens=1,
    )


def test_accuracy_is_the_fraction_of_argmax_hits():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    result = evaluate(spec("classification", "accuracy"), logits, torch.tensor([0, 1, 0, 0]))
    assert result["accuracy"] == pytest.approx(0.75) and result["error"] == pytest.approx(0.25)


def test_macro_f1_by_hand_and_by_sklearn():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    # class 0: tp 1, fp 1, fn 1 -> 1/2; class 1: tp 2, fp 1, fn 0 -> 4/5; class 2: tp 1, fp 0, fn 1 -> 2/3
    by_hand = (0.5 + 0.8 + 2 / 3) / 3
    result = evaluate(spec("classification", "macro_f1"), torch.eye(3)[pred] * 4.0, torch.as_tensor(y))
    assert result["macro_f1"] == pytest.approx(by_hand)
    assert result["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert result["error"] == pytest.approx(1 - by_hand)


def test_binary_auroc_counts_correctly_ordered_pairs():
    y = torch.tensor([0, 1, 0, 1, 1])
    score = torch.tensor([0.1, 0.8, 0.6, 0.4, 0.9])  # logit of class 1 minus logit of class 0
    logits = torch.stack([torch.zeros(5), score], dim=1)
    # positives 0.8, 0.4, 0.9 vs negatives 0.1, 0.6: 0.8>both, 0.4>0.1 only, 0.9>both -> 5 of 6 pairs
    result = evaluate(spec("classification", "auroc", 2), logits, y)
    assert result["auroc"] == pytest.approx(5 / 6) and result["error"] == pytest.approx(1 / 6)


def test_auroc_ranks_by_logits_where_softmax_saturates():
    """Probabilities of 1.0 in float tie; the logits still rank the samples."""
    logits = torch.tensor([[0.0, 200.0], [0.0, 100.0], [0.0, 150.0], [0.0, 120.0]])
    y = torch.tensor([1, 0, 1, 0])
    assert torch.softmax(logits, -1)[:, 1].unique().numel() == 1  # softmax cannot tell them apart
    assert evaluate(spec("classification", "auroc", 2), logits, y)["auroc"] == pytest.approx(1.0)


def test_multiclass_auroc_is_sklearn_one_vs_rest_macro():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 4))
    y = rng.integers(0, 4, size=60)
    probs = torch.softmax(torch.as_tensor(logits), -1).numpy()
    expected = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    got = evaluate(spec("classification", "auroc", 4), torch.as_tensor(logits), torch.as_tensor(y))["auroc"]
    assert got == pytest.approx(expected)


def test_multilabel_auroc_and_map_match_sklearn_and_skip_undefined_labels():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(40, 3))
    y = (rng.random((40, 3)) < 0.4).astype(np.float32)
    s = spec("multilabel", "auroc", loss="bce")
    got = evaluate(s, torch.as_tensor(scores), torch.as_tensor(y))["auroc"]
    assert got == pytest.approx(roc_auc_score(y, scores, average="macro"))
    got_map = evaluate(spec("multilabel", "map", loss="bce"), torch.as_tensor(scores), torch.as_tensor(y))["map"]
    assert got_map == pytest.approx(average_precision_score(y, scores, average="macro"))
    y[:, 2] = 0.0  # label 2 has no positive in this split: AUROC undefined there, mean over labels 0 and 1
    expected = np.mean([roc_auc_score(y[:, j], scores[:, j]) for j in (0, 1)])
    assert evaluate(s, torch.as_tensor(scores), torch.as_tensor(y))["auroc"] == pytest.approx(expected)


def test_dense_mask_auroc_pools_all_pixels():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 1, 4, 4))
    mask = (rng.random((5, 1, 4, 4)) < 0.2).astype(np.float32)
    got = evaluate(spec("dense", "auroc", 1, "bce"), torch.as_tensor(logits), torch.as_tensor(mask))
    assert got["auroc"] == pytest.approx(roc_auc_score(mask.ravel(), logits.ravel()))


def test_auroc_of_a_single_class_split_is_an_error():
    with pytest.raises(ValueError, match="single class"):
        evaluate(spec("classification", "auroc", 2), torch.randn(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="no positive"):
        evaluate(spec("multilabel", "map", 2, "bce"), torch.randn(4, 2), torch.zeros(4, 2))


def test_relative_l2_and_nrmse_by_hand():
    targets = torch.tensor([[[3.0, 4.0], [1.0, 0.0]], [[0.0, 2.0], [0.0, 1.0]]])  # (N=2, C=2, L=2)
    outputs = targets + torch.tensor([[[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]])
    # rel_l2 per sample over everything: sqrt(2)/sqrt(26), 1/sqrt(5)
    rel = (math.sqrt(2) / math.sqrt(26) + 1 / math.sqrt(5)) / 2
    # nrmse per sample and channel: 1/5, 1/1, 1/2, 0/1
    nrmse = (1 / 5 + 1 + 1 / 2 + 0) / 4
    s = spec("dense", "rel_l2", 2, "rel_l2")
    assert evaluate(s, outputs, targets) == pytest.approx({"error": rel, "rel_l2": rel})
    assert evaluate(spec("dense", "nrmse", 2, "mse"), outputs, targets) == pytest.approx(
        {"error": nrmse, "nrmse": nrmse}
    )
    with pytest.raises(ValueError, match="all zeros"):
        evaluate(s, outputs, torch.zeros_like(targets))


def test_losses_match_torch_and_hand_computation():
    torch.manual_seed(0)
    logits, ids = torch.randn(6, 3), torch.randint(0, 3, (6,))
    assert loss_fn(spec("classification", "accuracy"))(logits, ids).item() == pytest.approx(
        F.cross_entropy(logits, ids).item()
    )
    masks = (torch.rand(6, 3) < 0.5).float()
    bce = loss_fn(spec("multilabel", "auroc", loss="bce"))(logits, masks).item()
    by_hand = -(masks * torch.log(torch.sigmoid(logits)) + (1 - masks) * torch.log(1 - torch.sigmoid(logits))).mean()
    assert bce == pytest.approx(by_hand.item(), rel=1e-5)
    out, y = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 4.0]])
    assert loss_fn(spec("dense", "nrmse", loss="mse"))(out, y).item() == pytest.approx(2.0)
    rel = loss_fn(spec("dense", "rel_l2", loss="rel_l2"))(out, y)
    assert rel.item() == pytest.approx(2 / math.sqrt(17))
    with pytest.raises(ValueError, match="loss 'hinge'"):
        loss_fn(spec("classification", "accuracy", loss="hinge"))
