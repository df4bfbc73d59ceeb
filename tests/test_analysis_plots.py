"""Every plot function, on hand-made frames and a saved gate dict: PNG and PDF written, readable, non-empty."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.image
import numpy as np
import optuna
import pandas as pd
import pytest
from test_analysis_stats import make_trials

from analysis import plots, stats, tuning
from analysis.load import label_arms


def assert_figure(paths: list[Path], data_colour: str = plots.OKABE_ITO[0], min_pixels: int = 50) -> np.ndarray:
    """Both files exist and are non-trivial; the PNG decodes, and the data were drawn: at least
    ``min_pixels`` pixels have the first series' colour (axes, grid and text are black or grey)."""
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    image = matplotlib.image.imread(paths[0])[..., :3]
    rgb = np.array(matplotlib.colors.to_rgb(data_colour))
    assert (np.abs(image - rgb).max(axis=-1) < 0.02).sum() >= min_pixels, f"no {data_colour} data in {paths[0]}"
    return image


@pytest.fixture(scope="module")
def curriculum_sweep():
    """Two schedules x two gate selections x 3 seeds, 5 epochs; one trial failed at epoch 2."""
    rows, curves = [], []
    for shape in ("linear", "cosine"):
        for selection in ("random", "topk"):
            for seed in range(3):
                failed = (shape, selection, seed) == ("cosine", "topk", 2)
                final = 0.2 + 0.05 * (selection == "random") + 0.01 * seed
                trial_id = f"{shape}-{selection}-{seed}"
                epochs = 2 if failed else 5
                for epoch in range(1, epochs + 1):
                    progress = (epoch - 1) / 4
                    ratio = 0.64 * (1 - progress) if shape == "linear" else 0.32 * (1 + math.cos(math.pi * progress))
                    curves.append(
                        {"trial_id": trial_id, "epoch": epoch, "val_error": final + 0.1 * (5 - epoch), "ratio": ratio}
                    )
                rows.append(
                    {
                        "curriculum.shape": shape,
                        "gate.selection": selection,
                        "seed": seed,
                        "status": "error" if failed else "done",
                        "epochs": epochs,
                        "planned_epochs": 5,
                        "val_error": final + (0.3 if failed else 0),
                        "test_error": math.nan if failed else final + 0.02,
                    }
                )
    trials, keys = make_trials(rows)
    trials["trial_id"] = [
        f"{r['config/curriculum.shape']}-{r['config/gate.selection']}-{r['config/seed']}" for _, r in trials.iterrows()
    ]
    return trials, pd.DataFrame(curves), keys


def test_learning_curves(curriculum_sweep, tmp_path):
    trials, curves, _ = curriculum_sweep
    assert_figure(plots.learning_curves(curves, trials, tmp_path))
    assert_figure(plots.learning_curves(curves, trials, tmp_path, name="per_trial", per_trial=True))


def test_ablation_per_swept_key(curriculum_sweep, tmp_path):
    trials, _, keys = curriculum_sweep
    arm_stats = stats.arm_stats(trials, keys)
    for key in keys:
        paths = plots.ablation(arm_stats, trials, key, keys, tmp_path)
        assert paths[0].name == f"ablation_{key.replace('.', '_')}.png"
        assert_figure(paths)
        assert_figure(paths, plots.OKABE_ITO[1])  # the second series too


def test_ablation_of_a_single_swept_key(curriculum_sweep, tmp_path):
    trials, _, _ = curriculum_sweep
    one, keys = label_arms(trials[trials["config/curriculum.shape"] == "linear"].drop(columns="arm"))
    assert keys == ["gate.selection"]
    assert_figure(plots.ablation(stats.arm_stats(one, keys), one, "gate.selection", keys, tmp_path))


def test_curriculum_figure(curriculum_sweep, tmp_path):
    trials, curves, keys = curriculum_sweep
    assert_figure(plots.curriculum(curves, trials, stats.arm_stats(trials, keys), ["curriculum.shape"], tmp_path))


@pytest.mark.parametrize("layout", ["2d", "1d"])
def test_gate_map_from_a_saved_dict(layout, tmp_path):
    """The dict pare_core.inspect.gate_map returns, saved and loaded back as numpy arrays."""
    rng = np.random.default_rng(0)
    n_tokens, grid, x = (16, (4, 4), rng.random((1, 8, 8))) if layout == "2d" else (10, (1, 10), rng.random((1, 100)))
    scores = rng.random(n_tokens)
    np.savez(tmp_path / "gate.npz", scores=scores, replaced=scores > 0.6, input=x, grid=grid)
    saved = dict(np.load(tmp_path / "gate.npz"))
    gate = {**saved, "selection": "threshold", "threshold": 0.6, "k": int((scores > 0.6).sum()), "epoch": 3}
    assert_figure(plots.gate_map(gate, tmp_path, f"gate_{layout}"), plots.STATUS_COLOURS["error"])  # replaced
    assert_figure(plots.gate_map({"scores": scores, "replaced": scores > 0.6}, tmp_path, "gate_scores_only"))


def test_tuning_figures(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(12):
        lr, start, weight = 10 ** rng.uniform(-4, -1), rng.uniform(0.2, 0.8), [0.1, 0.3, 1.0][i % 3]
        status = "stopped" if i % 4 == 3 else "done"
        rows.append(
            {
                "train.lr": lr,
                "curriculum.start": start,
                "mix.weight": weight,
                "seed": 0,
                "status": status,
                "val_error": 0.1 + 0.1 * abs(math.log10(lr) + 2) + (0.3 if status == "stopped" else 0),
                "epochs": 2 if status == "stopped" else 6,
                "planned_epochs": 6,
            }
        )
    trials, keys = make_trials(rows)
    trials["trial_number"] = range(1, len(trials) + 1)
    study = tuning.build_study(trials, keys, "val_error")
    importances = tuning.importances(study)
    assert_figure(plots.optimisation_history(trials, "val_error", tmp_path))
    best_colour = matplotlib.colormaps["viridis_r"](0.0)  # the lowest error's line
    assert_figure(
        plots.parallel_coordinates(
            trials, keys, "val_error", tmp_path, tuning.log_scaled(study.trials[0].distributions)
        ),
        matplotlib.colors.to_hex(best_colour),
    )
    assert_figure(plots.param_importance(importances, 9, tmp_path))
    assert_figure(
        plots.cost(trials.assign(trial=[f"#{n}" for n in trials["trial_number"]], time_s=90.0), tmp_path, by="trial")
    )


def test_time_unit_reads_naturally():
    assert plots.time_unit(30) == (1.0, "s")
    assert plots.time_unit(600) == (60.0, "min")
    assert plots.time_unit(5 * 3600) == (3600.0, "h")


def test_axis_labels_carry_units():
    assert plots.axis_label("val_error") == "validation error (fraction, lower is better)"
    assert plots.axis_label("epoch_s") == "epoch (s)"
    assert plots.axis_label("ratio").endswith("(fraction of tokens)")


def test_the_declared_search_space_wins_over_inference():
    """mix.weight declared as a choice of 0.1 / 0.3 / 1.0 spans a factor of 10: inferred, it would
    become a log-scaled float (the old guess); declared, it is categorical."""
    rows = [
        {"train.lr": lr, "mix.weight": w, "seed": 0, "status": "done", "val_error": 0.2, "epochs": 6}
        for lr, w in ((1e-4, 0.1), (1e-3, 0.3), (1e-2, 1.0))
    ]
    trials, keys = make_trials(rows)
    space = {"train.lr": {"loguniform": [1e-5, 1e-1]}, "mix.weight": {"choice": [0.1, 0.3, 1.0]}}
    declared = tuning.build_study(trials, keys, "val_error", space=space).trials[0].distributions
    assert declared["mix.weight"] == optuna.distributions.CategoricalDistribution([0.1, 0.3, 1.0])
    assert declared["train.lr"] == optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)
    inferred = tuning.build_study(trials, keys, "val_error").trials[0].distributions
    assert isinstance(inferred["mix.weight"], optuna.distributions.FloatDistribution)
