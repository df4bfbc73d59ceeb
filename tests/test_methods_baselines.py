"""ORCA, MoNA and label-semantic guidance: known answers for the pieces, real stages on real tasks.

The stage tests run ``fit`` with the real pretrained MiniLM, real source data and real task data, and
read the stage's before/after metrics from the epoch-1 report.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from pare_core.config import TrialConfig, resolve
from pare_core.methods.align import distance, otdd_distance, target_groups
from pare_core.methods.lsg import LabelGraph, LsgAux, label_embeddings, normalized_adjacency
from pare_core.tasks import task_spec
from pare_core.train import fit


@pytest.fixture
def first_report(tiny_budget):
    """(epoch-1 report, final metrics) of a real fit of ``tiny_budget`` + ``flat``."""

    def run(flat: dict) -> tuple[dict, dict]:
        reports: list[dict] = []
        final = fit(TrialConfig.from_flat({**tiny_budget, **flat}), lambda m, _ckpt: reports.append(dict(m)))
        assert [r["epoch"] for r in reports] == list(range(1, tiny_budget["train.epochs"] + 1))
        return reports[0], final

    return run


# -- pieces with known answers ------------------------------------------------------------------


def test_otdd_of_single_class_sets_adds_the_label_distance():
    # one class on each side: every pair pays W2^2(source, target) = 1 on top of its own squared distance,
    # and the exact plan (0->1, 2->3) costs 1 more: OTDD = 2
    src, tgt = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [3.0]])
    assert otdd_distance(src, torch.zeros(2, dtype=torch.long), tgt).item() == pytest.approx(2.0)
    # identical labelled sets are at distance 0
    x, y = torch.randn(30, 4), torch.arange(30) % 3
    assert otdd_distance(x, y, x, y).item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("objective", ["otdd", "mmd", "l2"])
def test_distances_grow_with_a_shift_and_have_gradients(objective):
    gen = torch.Generator().manual_seed(0)
    src, y = torch.randn(60, 6, generator=gen), torch.arange(60) % 3
    tgt = torch.randn(20, 6, generator=gen).requires_grad_(True)
    near, far = (distance(objective, src, y, tgt + shift, torch.Generator().manual_seed(1)) for shift in (0.5, 2.0))
    assert 0 <= near.item() < far.item()
    (grad,) = torch.autograd.grad(far, tgt)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_target_groups_are_classes_or_kmeans_clusters():
    y = torch.tensor([2, 0, 2, 1, 0])
    assert [g.tolist() for g in target_groups("classification", y, 10, 0)] == [[1, 4], [3], [0, 2]]
    # dense targets: three well separated fields -> three clusters that partition the samples
    fields = torch.cat([torch.full((4, 1, 5), v) for v in (0.0, 5.0, 10.0)]) + 0.01 * torch.randn(12, 1, 5)
    groups = target_groups("dense", fields, 3, 0)
    assert sorted(sorted(g.tolist()) for g in groups) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_label_graph_adjacency_keeps_most_of_each_node():
    e = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(0.75)], [-1.0, 0.0]])  # cos(0,1)=0.5; node 2 only negative
    expected = torch.tensor([[0.8, 0.2, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(normalized_adjacency(e), expected, atol=1e-6)


def test_label_graph_prototypes_can_separate_the_classes():
    """Real MiniLM label embeddings of digits (pairwise cosines 0.4-0.8): the 2-layer GCN must not
    over-smooth the classes into one prototype (a symmetric-normalised dense graph did: 31%);
    trained on class-conditional features, the auxiliary scores classify them."""
    names = task_spec("digits").class_names
    torch.manual_seed(0)
    graph = LabelGraph(label_embeddings(names), hidden=32)
    centres = torch.randn(10, 32)
    y = torch.arange(10).repeat(20)
    features = centres[y] + 0.3 * torch.randn(200, 32)
    optimizer = torch.optim.Adam(graph.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(graph(features), y).backward()
        optimizer.step()
    assert (graph(features).argmax(1) == y).float().mean() > 0.95


def test_lsg_refuses_a_task_without_label_names():
    spec = task_spec("digits")
    nameless = dataclasses.replace(spec, name="nameless", class_names=())
    with pytest.raises(ValueError, match=r"aux='lsg'.*task 'nameless'"):
        LsgAux(TrialConfig(), nameless)
    dense = dataclasses.replace(spec, name="field", kind="dense")
    with pytest.raises(ValueError, match=r"aux='lsg'.*task 'field'"):
        LsgAux(TrialConfig(), dense)


def test_orca_without_alignment_epochs_is_refused_before_training(tiny_budget):
    with pytest.raises(ValueError, match="align.epochs=0 is invalid for method='orca'"):
        TrialConfig.from_flat({**tiny_budget, "method": "orca", "align.epochs": 0})


def _resolved_align(flat: dict) -> tuple[int, float]:
    cfg = resolve(TrialConfig.from_flat(flat), kind="classification", layout="2d")
    return cfg.align.epochs, cfg.align.lr


def test_alignment_defaults_follow_the_official_code():
    assert _resolved_align({"method": "orca"}) == (60, pytest.approx(10 * TrialConfig().train.lr))
    assert _resolved_align({"method": "pare"})[0] == 0  # no stage before PaRe unless asked for
    assert _resolved_align({"train.lr": 3e-3})[1] == pytest.approx(3e-3)
    assert _resolved_align({"align.lr": 5e-4})[1] == 5e-4


# -- the stages on real data, each method end to end on two tasks of different modalities ----------


@pytest.mark.slow
@pytest.mark.parametrize("task,objective", [("digits", "otdd"), ("dna", "mmd"), ("dna", "l2")])
def test_orca_alignment_lowers_the_distance_then_fine_tunes(task, objective, first_report):
    report, final = first_report(
        {"method": "orca", "task.name": task, "align.objective": objective, "align.epochs": 10, "align.lr": 3e-3}
    )
    before, after = report["align/before"], report["align/after"]
    assert 0 < after < 0.9 * before, (before, after)
    assert 0 <= final["test_error"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("task", ["digits", "dna"])
def test_mona_stage_improves_its_outer_objective_then_fine_tunes(task, first_report):
    report, final = first_report({"method": "mona", "task.name": task, "mona.epochs": 8})
    assert report["mona/outer_after"] < report["mona/outer_before"], report
    assert report["mona/outer_before"] == pytest.approx(report["mona/target_before"] + report["mona/source_before"])
    assert 0 <= final["test_error"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("task", ["digits", "dna"])
def test_pare_after_an_orca_stage_trains_end_to_end(task, first_report):
    report, final = first_report({"method": "pare", "task.name": task, "align.epochs": 3, "align.objective": "l2"})
    assert report["align/after"] < report["align/before"]
    assert report["gate_selected_frac"] > 0 and 0 <= final["test_error"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("task", ["digits", "dna"])
def test_finetune_with_label_graph_guidance_trains_end_to_end(task, first_report):
    _, final = first_report({"method": "finetune", "aux": "lsg", "lsg.weight": 0.5, "task.name": task})
    assert 0 <= final["test_error"] <= 1
