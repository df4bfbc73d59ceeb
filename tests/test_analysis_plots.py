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


def test_one_ablation_figure_per_metric_with_arms_on_the_axis(curriculum_sweep, tmp_path):
    trials, _, keys = curriculum_sweep
    arm_stats = stats.arm_stats(trials, keys)
    comparison = stats.compare_to_control(trials, keys, metric="test_error")
    paths = plots.arms(arm_stats, trials, comparison, "test_error", tmp_path)
    assert paths[0].name == "ablation_test_error.png"
    assert_figure(paths)
    assert_figure(paths, plots.OKABE_ITO[3])  # the fourth arm too: every arm is a row


def long_named_arms(n: int) -> tuple[pd.DataFrame, list[str]]:
    """``n`` arms with long spec names (one differing key each), 3 seeds, one seed of the last arm at
    the majority baseline (degenerate)."""
    rows = [
        {"train.lr": 1e-4 * (j + 1), "seed": seed, "val_error": 0.2 + 0.01 * j + 0.003 * seed}
        | {"test_error": 0.9 if (j, seed) == (n - 1, 2) else 0.21 + 0.01 * j + 0.004 * seed}
        for j in range(n)
        for seed in range(3)
    ]
    trials, _ = make_trials(rows)
    trials["arm_name"] = [f"topk_preaudit_logits_blend_index_lr_{i // 3}" for i in range(len(trials))]
    trials["degenerate"] = trials["test_error"] >= 0.9
    return label_arms(trials.drop(columns="arm"))


@pytest.mark.parametrize("width", sorted(plots.WIDTHS))
def test_twelve_long_arm_names_fit_a_column_and_the_full_width(width, tmp_path):
    trials, keys = long_named_arms(12)
    arm_stats = stats.arm_stats(trials, keys)
    comparison = stats.compare_to_control(trials, keys, metric="test_error")
    with plots.sized(plots.WIDTHS[width]) as problems:
        paths = plots.arms(arm_stats, trials, comparison, "test_error", tmp_path)
    assert problems == []
    image = assert_figure(paths, plots.STATUS_COLOURS["error"], min_pixels=5)  # the degenerate seed's cross
    assert image.shape[1] <= (plots.WIDTHS[width] + 0.1) * plots.RC["savefig.dpi"]  # no wider than asked


def test_layout_problems_name_overlapping_labels_a_legend_on_the_axes_and_cut_off_text():
    import matplotlib.pyplot as plt

    with plots.style():
        fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xticks([0, 0.01], ["a long tick label", "another long one"])
    ax.plot([0, 1], [0, 1], label="data")
    ax.legend(loc="center")
    ax.set_title("a title far too long for a figure two inches wide")
    problems = plots.layout_problems(fig)
    assert "labels 'a long tick label' and 'another long one' overlap" in problems
    assert any("legend covers the axes" in p for p in problems)
    assert "label 'a title far too long for a figure two inches wide' is cut off at the figure's edge" in problems
    ax.set_xticks([0, 1], ["a", "b"])
    ax.get_legend().remove()
    ax.set_title("short")
    assert plots.layout_problems(fig) == []
    plt.close(fig)


def test_a_key_gets_a_line_figure_only_where_it_is_swept_alone(tmp_path):
    """gate.threshold takes three values under selection=threshold, every other key fixed: a threshold
    sweep. gate.warm_frac differs only together with gate.noise (a confound): no figure."""
    arms = [
        {"gate.selection": "threshold", "gate.threshold": t, "gate.warm_frac": -1.0, "gate.noise": "scores"}
        for t in (0.3, 0.5, 0.7)
    ]
    arms += [
        {"gate.selection": "topk", "gate.threshold": 0.5, "gate.warm_frac": -1.0, "gate.noise": "scores"},
        {"gate.selection": "topk", "gate.threshold": 0.5, "gate.warm_frac": 0.4, "gate.noise": "logits"},
    ]
    rows = [
        {
            **arm,
            "method": "pare",
            "seed": seed,
            "val_error": 0.2 + 0.01 * i + 0.002 * seed,
            "test_error": 0.3 - 0.01 * i,
        }
        for i, arm in enumerate(arms)
        for seed in range(2)
    ]
    trials, keys = make_trials(rows)
    arm_stats = stats.arm_stats(trials, keys)
    sweeps = stats.one_key_sweeps(trials, arm_stats, keys)
    threshold_arms = sorted(set(trials.loc[trials["config/gate.selection"] == "threshold", "arm"]))
    assert [(key, [sorted(group) for _, group in groups]) for key, groups in sweeps] == [
        ("gate.threshold", [threshold_arms])
    ]
    assert_figure(plots.key_sweep(arm_stats, trials, "gate.threshold", sweeps[0][1], tmp_path))


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


def test_figures_keep_their_width_and_the_provenance_line_can_be_left_out(curriculum_sweep, tmp_path):
    """The footer grows a figure downwards, never sideways; an empty one (``--no-footer``) adds nothing."""
    trials, curves, _ = curriculum_sweep
    shapes = {}
    for text in ("Provenance: 12 trials (0 reused); code 0123456789ab; configs 0123456789ab.", ""):
        with plots.footer(text):
            path = plots.learning_curves(curves, trials, tmp_path, name=f"curves_{bool(text)}")[0]
        shapes[bool(text)] = matplotlib.image.imread(path).shape
    assert shapes[True][1] == shapes[False][1] == plots.WIDTHS["full"] * plots.RC["savefig.dpi"]
    assert shapes[True][0] > shapes[False][0]
