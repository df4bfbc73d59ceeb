"""``runtime.capture`` (pare_core.capture): a captured fit computes what the eager fit does, and what changes
during a run (the batch, the source draw, the gate's noise, PaRe's k) compiles no new graph.

On the CPU, capture is inductor's default mode (no CUDA graphs); compiling a graph takes seconds here, so
each method compiles its graphs once: the tiny random MiniLM, three epochs of two steps."""

import pytest
import torch
import torch._dynamo

from pare_core.config import TrialConfig
from pare_core.train import Run

COMPARED = ("train_loss", "val_error", "gate_mean", "gate_selected_frac")


def _fit(flat: dict) -> tuple[list[dict], list[int], torch.Tensor, dict]:
    """Per-epoch metrics, the graphs compiled so far after each epoch, the val predictions, the last metrics."""
    run = Run(TrialConfig.from_flat(flat), resume=None)
    rows, graphs = [], []

    def report(metrics, _checkpointer):
        rows.append(dict(metrics))
        graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])

    final = run.train(report)
    return rows, graphs, run.predict(run.data.x_val), final


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "graphs"),
    [
        ("finetune", [2, 2, 2]),  # the step and evaluation's forward
        ("pare", [2, 2, 3]),  # warm phase for epochs 1-2 (k 5, then 3), the hard top-k phase for epoch 3 (k 1)
    ],
)
def test_captured_fit_matches_eager_and_compiles_once_per_phase(tiny_budget, method, graphs):
    flat = {
        **tiny_budget,
        "method": method,
        "backbone.tiny": True,
        "train.epochs": 3,
        "gate.warm_frac": 0.5,
        "train.eval_batch_size": 24,  # val's 32 samples: a full chunk and a padded one
    }
    eager_rows, _, eager_val, eager_final = _fit(flat)
    torch._dynamo.reset()  # compiles afresh, as a trial in its own process does
    torch._dynamo.utils.counters.clear()  # and counts from zero
    rows, compiled, val, final = _fit({**flat, "runtime.capture": True})
    assert compiled == graphs
    if method == "pare":
        assert [r["k"] for r in rows] == [5.0, 3.0, 1.0] and [r["gate_warm"] for r in rows] == [1.0, 1.0, 0.0]
    for eager, captured in zip(eager_rows, rows):
        for key in COMPARED:
            if key in eager:
                assert captured[key] == pytest.approx(eager[key], abs=1e-4), (captured["epoch"], key)
    assert eager_rows[0]["train_loss"] != eager_rows[-1]["train_loss"]  # the fit moved
    assert torch.allclose(val, eager_val, atol=1e-4) and val.shape == eager_val.shape
    assert final["test_error"] == eager_final["test_error"]
