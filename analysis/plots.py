"""Figures for papers, in one style: matplotlib (Agg), Okabe–Ito colours, PNG + PDF, units on axes.

Every function takes tidy frames from :mod:`analysis.load` / :mod:`analysis.stats` (or a plain dict
for the gate map), draws one figure, writes ``<name>.png`` and ``<name>.pdf`` into ``out_dir`` and
returns both paths. Arms keep the colour and marker of their position in the trials' stable order,
so the same arm looks the same in every figure of a sweep. Long arm labels go on the y axis
(horizontal charts) or in a legend outside the axes, so they never overlap the data.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.load import CONFIG  # noqa: E402
from analysis.stats import curve_stats  # noqa: E402
from analysis.tables import time_unit  # noqa: E402

# Okabe & Ito (2008), colour-blind safe; yellow last (weak on white).
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
STATUS_COLOURS = {"done": "#0072B2", "stopped": "#E69F00", "error": "#D55E00", "running": "#999999"}
STATUS_NAMES = {"done": "completed", "stopped": "stopped early (scheduler)", "error": "failed", "running": "unfinished"}
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "savefig.dpi": 200,
    "figure.dpi": 100,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "pdf.fonttype": 42,
}
MAX_LEGEND = 10  # more series than this: curves are drawn without a per-series legend
BANDS_BEYOND = "Some CI bands extend beyond the axes (few seeds); the axes show the trials' own range."
# How the gate's token scores evolve (reported per epoch by PaRe trials): spread within a sample, and
# whether this epoch ranks the tokens like the previous one. A gate that learned nothing stays flat.
GATE_LEARNING = ("gate_score_std", "gate_score_range", "gate_rank_tau")
SPREADS = ("gate_score_std", "gate_score_range")  # drawn from 0: their distance from 0 is the point
# Axis labels of metrics whose names alone say too little.
LABELS = {
    "ratio": "replaced-token ratio (fraction of tokens)",
    "samples_per_s": "throughput (samples/s)",
    "gate_score_std": "gate-score std over tokens",
    "gate_score_range": "gate-score range over tokens (max − min)",
    "gate_rank_tau": "Kendall τ with previous epoch's ranking",
}


@contextmanager
def style() -> Iterator[None]:
    """The platform's figure style, without touching matplotlib's global state."""
    with plt.rc_context(RC):
        yield


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


def axis_label(metric: str) -> str:
    """A readable axis label with the unit: errors are fractions (NAS-Bench-360 convention)."""
    if metric.endswith("_error"):
        return f"{metric.split('_')[0].replace('val', 'validation')} error (fraction, lower is better)"
    if metric in LABELS:
        return LABELS[metric]
    if metric.endswith("_s"):
        return f"{metric[:-2].replace('_', ' ')} (s)"
    return metric.replace("_", " ")


_FOOTER: list[str] = []  # the provenance line drawn under every saved figure (set by ``footer``)


@contextmanager
def footer(text: str) -> Iterator[None]:
    """Figures saved inside this block carry ``text`` (the sweep's provenance) under their axes."""
    _FOOTER.append(text)
    try:
        yield
    finally:
        _FOOTER.pop()


def save(fig: plt.Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` (with the provenance footer, if one is set); close the figure."""
    if _FOOTER:
        fig.text(
            0.0, 0.0, _FOOTER[-1], fontsize=5, color="0.4", ha="left", va="top", wrap=True, transform=fig.transFigure
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


# -- learning curves -------------------------------------------------------------------------------


def learning_curves(
    curves: pd.DataFrame,
    trials: pd.DataFrame,
    out_dir: str | Path,
    metric: str = "val_error",
    name: str = "curves",
    confidence: float = 0.95,
    per_trial: bool | None = None,
) -> list[Path]:
    """Mean ``metric`` per epoch for each arm over its seeds, with a t-CI band. Failed trials are
    left out (their curves end at the crash, which would bend the mean); stopped ones are kept.
    With ``per_trial`` (default: when there are more arms than a legend can hold, as in a tuning
    sweep), every trial is a thin line, ending where the scheduler stopped it, and the best is highlighted."""
    kept = trials[trials["status"] != "error"]
    data = curves.merge(kept[["trial_id", "arm"]], on="trial_id")
    arms = list(dict.fromkeys(kept["arm"]))
    with style():
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        if per_trial or (per_trial is None and len(arms) > MAX_LEGEND):
            _trial_lines(ax, data, kept, metric)
        else:
            bands = curve_stats(curves, trials, metric, confidence)
            for i, arm in enumerate(arms):
                n = int(kept[kept["arm"] == arm].shape[0])
                _band(ax, bands[bands["arm"] == arm], i, f"{arm} (n={n})")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title=f"arm (band: {confidence:.0%} CI)")
            if _limit_to_data(ax, data[metric]):
                ax.text(0.0, -0.2, BANDS_BEYOND, transform=ax.transAxes, fontsize=7, color="#555555")
        ax.set_xlabel("epoch")
        ax.set_ylabel(axis_label(metric))
        _integer_ticks(ax)
        ax.set_title(f"Learning curves: {axis_label(metric).split(' (')[0]} per epoch")
        return save(fig, out_dir, name)


def gate_learning(
    curves: pd.DataFrame,
    trials: pd.DataFrame,
    out_dir: str | Path,
    metrics: tuple[str, ...] = GATE_LEARNING,
    name: str = "gate_learning",
    confidence: float = 0.95,
) -> list[Path]:
    """One panel per gate statistic against epoch: each arm's mean over seeds with a t-CI band, drawn
    like :func:`learning_curves` (same colours, failed trials left out), so a gate that stays flat or
    keeps reshuffling its ranking stands out beside one that learned. Arms without a gate report no
    values and are left out of the panels, keeping their colour slot."""
    kept = trials[trials["status"] != "error"]
    arms = list(dict.fromkeys(kept["arm"]))
    data = curves[curves["trial_id"].isin(kept["trial_id"])]
    with style():
        fig, axes = plt.subplots(
            1, len(metrics), figsize=(3.3 * len(metrics) + 1.6, 3.4), squeeze=False, sharex=True
        )  # tau starts at epoch 2: shared epochs keep the panels aligned
        beyond = False
        for ax, metric in zip(axes[0], metrics):
            bands = curve_stats(curves, trials, metric, confidence)
            for i, arm in enumerate(arms):
                band = bands[bands["arm"] == arm]
                if len(band):
                    _band(ax, band, i, f"{arm} (n={int(band['n'].max())})")
            beyond |= _limit_to_data(ax, data[metric], zero=metric in SPREADS)
            ax.set_xlabel("epoch")
            ax.set_ylabel(axis_label(metric))
            _integer_ticks(ax)
        handles, labels = max((ax.get_legend_handles_labels() for ax in axes[0]), key=lambda hl: len(hl[1]))
        axes[0][-1].legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=f"arm (band: {confidence:.0%} CI)"
        )
        fig.suptitle("Gate learning: spread and stability of the gate's token scores per epoch (mean over seeds)")
        fig.tight_layout()
        if beyond:
            fig.text(0.0, -0.02, BANDS_BEYOND, fontsize=7, color="#555555")
        return save(fig, out_dir, name)


def _band(ax: plt.Axes, band: pd.DataFrame, i: int, label: str) -> None:
    """One arm's mean per epoch in its colour and marker, with its CI band (``band``: the arm's
    :func:`analysis.stats.curve_stats` rows)."""
    ax.plot(band["epoch"], band["mean"], color=colour(i), marker=marker(i), markersize=3.5, linewidth=1.4, label=label)
    ax.fill_between(band["epoch"], band["ci_low"], band["ci_high"], color=colour(i), alpha=0.18, linewidth=0)


def _trial_lines(ax: plt.Axes, data: pd.DataFrame, trials: pd.DataFrame, metric: str) -> None:
    """One grey line per trial, its last epoch marked by how it ended; the best completed trial in colour."""
    status = trials.set_index("trial_id")["status"]
    finals = trials[trials["status"] == "done"].set_index("trial_id")[metric].astype(float)
    best = finals.idxmin() if finals.notna().any() else None
    for trial_id, group in data.groupby("trial_id", sort=False):
        ax.plot(group["epoch"], group[metric], color="#999999", linewidth=0.8, alpha=0.7)
        end = status[trial_id]
        ax.plot(
            group["epoch"].iloc[-1:],
            group[metric].iloc[-1:],
            linestyle="none",
            marker="v" if end == "stopped" else "o",
            markersize=4,
            color=STATUS_COLOURS[end],
        )
    if best is not None:
        group = data[data["trial_id"] == best]
        ax.plot(group["epoch"], group[metric], color=OKABE_ITO[2], linewidth=2, label=f"best completed trial ({best})")
    for end, mk in (("done", "o"), ("stopped", "v"), ("running", "o")):
        if (trials["status"] == end).any():
            ax.plot(
                [],
                [],
                linestyle="none",
                marker=mk,
                markersize=4,
                color=STATUS_COLOURS[end],
                label=f"last epoch: {STATUS_NAMES[end]} ({(trials['status'] == end).sum()})",
            )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))


# -- ablation ---------------------------------------------------------------------------------------


def ablation(
    stats: pd.DataFrame,
    trials: pd.DataFrame,
    key: str,
    arm_keys: list[str],
    out_dir: str | Path,
    metrics: tuple[str, ...] = ("val_error", "test_error"),
    name: str | None = None,
) -> list[Path]:
    """Mean and 95% CI per value of ``key`` (x), one series per combination of the other swept keys;
    each seed's value is a small dot, and arms with failed trials are labelled with the count."""
    others = [k for k in arm_keys if k != key]
    values = list(dict.fromkeys(stats[CONFIG + key]))
    combos = [tuple(row[CONFIG + k] for k in others) for _, row in stats.iterrows()]  # () when key is the only one
    series = list(dict.fromkeys(combos))
    width = 0.7 / max(len(series), 1)
    with style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics) + 1.6, 3.4), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            for i, combo in enumerate(series):
                rows = stats[[c == combo for c in combos]]
                label = ", ".join(f"{_short(k)}={_fmt(v)}" for k, v in zip(others, combo)) or None
                xs, ys, lo, hi = [], [], [], []
                for _, s in rows.iterrows():
                    x = values.index(s[CONFIG + key]) + (i - (len(series) - 1) / 2) * width
                    seeds = trials[(trials["arm"] == s["arm"]) & (trials["status"] == "done")][metric].astype(float)
                    ax.scatter(np.full(len(seeds), x), seeds, s=9, color=colour(i), alpha=0.35, linewidths=0, zorder=2)
                    if s["n_failed"]:  # vertical, above the CI cap: clear of the neighbouring series
                        top = s[f"{metric}_ci_high"] if not math.isnan(s[f"{metric}_ci_high"]) else s[f"{metric}_mean"]
                        ax.annotate(
                            f"{s['n_failed']}/{s['n_trials']} failed",
                            (x, top),
                            xytext=(0, 4),
                            textcoords="offset points",
                            fontsize=7,
                            rotation=90,
                            ha="center",
                            va="bottom",
                            color=STATUS_COLOURS["error"],
                        )
                    xs.append(x)
                    ys.append(s[f"{metric}_mean"])
                    lo.append(s[f"{metric}_mean"] - s[f"{metric}_ci_low"])
                    hi.append(s[f"{metric}_ci_high"] - s[f"{metric}_mean"])
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[np.nan_to_num(lo), np.nan_to_num(hi)],
                    fmt=marker(i),
                    color=colour(i),
                    capsize=3,
                    markersize=5,
                    linewidth=1.2,
                    label=label,
                    zorder=3,
                )
            ax.set_xticks(range(len(values)), [_fmt(v) for v in values])
            ax.set_xlim(-0.6, len(values) - 0.4)
            ax.set_xlabel(key)
            ax.set_ylabel(axis_label(metric))
        if any(ax.get_legend_handles_labels()[1] for ax in axes[0]):
            axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="other swept keys")
        fig.suptitle(f"Ablation of {key}: mean with 95% CI over seeds (dots: single seeds)")
        fig.tight_layout()
        return save(fig, out_dir, name or f"ablation_{_slug(key)}")


# -- curriculum -------------------------------------------------------------------------------------


def curriculum(
    curves: pd.DataFrame,
    trials: pd.DataFrame,
    stats: pd.DataFrame,
    schedule_keys: list[str],
    out_dir: str | Path,
    metric: str = "test_error",
    name: str = "curriculum",
) -> list[Path]:
    """Left: the replaced-token ratio per epoch of each schedule (from the reported ``ratio``).
    Right: each arm's final ``metric`` (mean, 95% CI), coloured by its schedule."""
    schedule_of = {
        row["arm"]: ", ".join(f"{_short(k)}={_fmt(row[CONFIG + k])}" for k in schedule_keys)
        for _, row in trials.iterrows()
    }
    schedules = list(dict.fromkeys(schedule_of[a] for a in trials["arm"]))
    data = curves.merge(trials[["trial_id", "arm"]], on="trial_id")
    data["schedule"] = data["arm"].map(schedule_of)
    with style():
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(9.0, max(3.2, 0.32 * len(stats) + 1.2)), gridspec_kw={"width_ratios": [1, 1.15]}
        )
        for i, schedule in enumerate(schedules):
            ratio = data[data["schedule"] == schedule].groupby("epoch")["ratio"].mean()
            left.plot(ratio.index, ratio.values, color=colour(i), marker=marker(i), markersize=3.5, label=schedule)
        left.set_xlabel("epoch")
        left.set_ylabel(axis_label("ratio"))
        left.set_ylim(bottom=0)
        _integer_ticks(left)
        left.set_title("Curriculum schedules")
        left.legend(loc="best")
        y = np.arange(len(stats))[::-1]
        for yi, (_, s) in zip(y, stats.iterrows()):
            i = schedules.index(schedule_of[s["arm"]])
            err = [[s[f"{metric}_mean"] - s[f"{metric}_ci_low"]], [s[f"{metric}_ci_high"] - s[f"{metric}_mean"]]]
            right.errorbar(
                [s[f"{metric}_mean"]], [yi], xerr=np.nan_to_num(err), fmt=marker(i), color=colour(i), capsize=3
            )
            if s["n_failed"]:
                right.annotate(
                    f"{s['n_failed']}/{s['n_trials']} failed",
                    (s[f"{metric}_mean"], yi),
                    xytext=(6, 4),
                    textcoords="offset points",
                    fontsize=7,
                    color=STATUS_COLOURS["error"],
                )
        right.set_yticks(y, stats["arm"])
        right.set_xlabel(axis_label(metric))
        right.set_title("Final error per arm (mean, 95% CI)")
        fig.tight_layout()
        return save(fig, out_dir, name)


# -- gate map ---------------------------------------------------------------------------------------


def gate_map(gate: dict[str, Any], out_dir: str | Path, name: str = "gate", title: str = "") -> list[Path]:
    """The gate's scores over token positions of one sample, replaced tokens highlighted.

    ``gate`` needs ``scores`` (T,) and ``replaced`` (T,) bool; with ``input`` ((C, L) or (C, H, W))
    and ``grid`` ((gh, gw)) the sample is drawn too, replaced tokens shaded on it; ``selection``,
    ``threshold``, ``k`` and ``epoch`` go into the title and the threshold line. The panel says so
    when no token is replaced (the curriculum's k is often 0 at its last epoch)."""
    scores = np.asarray(gate["scores"], dtype=float).reshape(-1)
    replaced = np.asarray(gate["replaced"], dtype=bool).reshape(-1)
    has_input = gate.get("input") is not None and gate.get("grid") is not None
    with style():
        fig, axes = plt.subplots(1, 2 if has_input else 1, figsize=(9.0 if has_input else 5.5, 3.4), squeeze=False)
        if has_input:
            _draw_sample(axes[0][0], np.asarray(gate["input"], dtype=float), tuple(gate["grid"]), replaced)
        ax = axes[0][-1]
        positions = np.arange(len(scores))
        colours = np.where(replaced, STATUS_COLOURS["error"], OKABE_ITO[0])
        ax.bar(positions, scores, color=colours, width=0.8)
        handles = [
            matplotlib.patches.Patch(
                color=STATUS_COLOURS["error"], label=f"replaced by source tokens ({replaced.sum()})"
            ),
            matplotlib.patches.Patch(color=OKABE_ITO[0], label=f"kept ({(~replaced).sum()})"),
        ]
        if gate.get("selection") == "threshold" and gate.get("threshold") is not None:
            handles.append(
                ax.axhline(
                    gate["threshold"],
                    color="#000000",
                    linestyle="--",
                    linewidth=1,
                    label=f"threshold t={gate['threshold']:g}",
                )
            )
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("token position (index)")
        ax.set_ylabel("gate score (sigmoid, 0–1)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=12))
        ax.set_xlim(-0.6, len(scores) - 0.4)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        if not replaced.any():
            ax.text(
                0.5,
                0.92,
                "no token replaced at this epoch" + (" (k=0)" if gate.get("k") == 0 else ""),
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "#999999"},
            )
        shown = ("k", "epoch") if title else ("selection", "k", "epoch")  # a given title names the arm already
        details = [f"{k}={gate[k]}" for k in shown if gate.get(k) is not None]
        fig.suptitle(
            (title or "Gate scores of one validation sample") + (f" ({', '.join(details)})" if details else "")
        )
        fig.tight_layout()
        return save(fig, out_dir, name)


def _draw_sample(ax: plt.Axes, x: np.ndarray, grid: tuple[int, int], replaced: np.ndarray) -> None:
    """The input (first channel) with the token grid; replaced tokens hatched."""
    gh, gw = grid
    if x.ndim == 3:  # (C, H, W): an image, tokens are patches in row-major order
        image = x[0]
        ph, pw = math.ceil(image.shape[0] / gh), math.ceil(image.shape[1] / gw)
        ax.imshow(image, cmap="gray_r", interpolation="nearest")
        for t in np.flatnonzero(replaced):
            r, c = divmod(int(t), gw)
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (c * pw - 0.5, r * ph - 0.5),
                    pw,
                    ph,
                    fill=False,
                    edgecolor=STATUS_COLOURS["error"],
                    hatch="///",
                    linewidth=1.2,
                )
            )
        ax.set_xlabel("width (pixels)")
        ax.set_ylabel("height (pixels)")
        ax.grid(False)
    else:  # (C, L): a sequence, tokens are consecutive chunks of time steps
        x = x.reshape(x.shape[0], -1)
        stride = math.ceil(x.shape[1] / gw)
        if x.shape[0] == 1:
            ax.plot(np.arange(x.shape[1]), x[0], color=OKABE_ITO[0], linewidth=1)
            ax.set_ylabel("input value (normalised)")
        else:  # several channels: a channels x time heat map
            ax.imshow(x, cmap="gray_r", aspect="auto", interpolation="nearest")
            ax.set_ylabel("channel (index)")
            ax.grid(False)
        for t in np.flatnonzero(replaced):
            ax.axvspan(
                t * stride - 0.5,
                (t + 1) * stride - 0.5,
                facecolor=STATUS_COLOURS["error"],
                alpha=0.25,
                edgecolor=STATUS_COLOURS["error"],
                hatch="///",
                linewidth=1,
            )
        ax.set_xlabel("time step (samples)")
    ax.set_title("Input sample (replaced tokens marked)")


# -- tuning -----------------------------------------------------------------------------------------


def optimisation_history(
    trials: pd.DataFrame, metric: str, out_dir: str | Path, mode: str = "min", name: str = "tuning_history"
) -> list[Path]:
    """Each trial's last ``metric`` in creation order (marker = status) and the best so far."""
    data = trials.sort_values("trial_number", kind="stable") if "trial_number" in trials else trials
    data = data[data[metric].notna()] if metric in data else data.iloc[0:0]
    number = (
        np.arange(1, len(data) + 1)
        if data.get("trial_number") is None or data["trial_number"].isna().any()
        else data["trial_number"].to_numpy()
    )
    with style():
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for status, mk in (("done", "o"), ("stopped", "v"), ("running", "s")):
            mask = (data["status"] == status).to_numpy()
            if mask.any():
                ax.scatter(
                    number[mask],
                    data[metric].to_numpy()[mask],
                    color=STATUS_COLOURS[status],
                    marker=mk,
                    s=22,
                    label=STATUS_NAMES[status],
                    zorder=3,
                )
        done = (data["status"] == "done").to_numpy()
        values = np.where(done, data[metric].to_numpy(dtype=float), np.nan)
        best = (pd.Series(values).cummin() if mode == "min" else pd.Series(values).cummax()).ffill()
        ax.step(number, best, where="post", color="#000000", linewidth=1.2, label="best completed so far")
        ax.set_xlabel("trial (creation order)")
        ax.set_ylabel(axis_label(metric) + " at last epoch")
        ax.set_title("Optimisation history")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return save(fig, out_dir, name)


def parallel_coordinates(
    trials: pd.DataFrame,
    params: list[str],
    metric: str,
    out_dir: str | Path,
    log_params: set[str] | frozenset[str] = frozenset(),
    name: str = "tuning_parallel",
) -> list[Path]:
    """One vertical axis per searched key plus the metric; one line per completed trial, coloured by
    the metric (viridis: ordered and colour-blind safe). Each axis is scaled to its own range."""
    data = trials[trials["status"] == "done"].reset_index(drop=True)
    columns = [CONFIG + p for p in params] + [metric]
    scaled, ticks = [], []
    for column in columns:
        values, labels = _axis_scale(data[column], log=column[len(CONFIG) :] in log_params)
        scaled.append(values)
        ticks.append(labels)
    with style():
        fig, ax = plt.subplots(figsize=(1.7 * len(columns) + 1.5, 3.8))
        cmap = plt.get_cmap("viridis_r")
        finals = data[metric].astype(float)
        norm = matplotlib.colors.Normalize(
            finals.min(), finals.max() if finals.max() > finals.min() else finals.min() + 1
        )
        for r in range(len(data)):
            ax.plot(range(len(columns)), [s[r] for s in scaled], color=cmap(norm(finals[r])), linewidth=1.3, alpha=0.85)
        for j, labels in enumerate(ticks):
            ax.axvline(j, color="#000000", linewidth=0.8)
            for position, text in labels:
                ax.text(j + 0.04, position, text, fontsize=7, va="center", ha="left")
        names = [_short(c[len(CONFIG) :]) if c.startswith(CONFIG) else c for c in columns]
        names = [n + (" (log)" if p in log_params else "") for n, p in zip(names, params + [""])]
        ax.set_xticks(range(len(columns)), names)
        ax.set_yticks([])
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlim(-0.2, len(columns) - 0.5)
        ax.grid(False)
        ax.spines["left"].set_visible(False)
        colourbar = fig.colorbar(matplotlib.cm.ScalarMappable(norm, cmap), ax=ax, pad=0.02)
        colourbar.set_label(axis_label(metric))
        ax.set_title(f"Parallel coordinates of {len(data)} completed trials (each axis: its own min to max)")
        return save(fig, out_dir, name)


def param_importance(
    importances: dict[str, float],
    n_trials: int,
    out_dir: str | Path,
    name: str = "tuning_importance",
    method: str = "fANOVA",
) -> list[Path]:
    """Horizontal bars: share of the objective's variance each searched key explains, estimated from
    ``n_trials`` completed trials (said in the title: a handful of trials gives a rough estimate)."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    with style():
        fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(items) + 1.4))
        ax.barh([k for k, _ in items], [v for _, v in items], color=OKABE_ITO[0])
        for i, (_, v) in enumerate(items):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, max(1.0, max(v for _, v in items) * 1.15))
        ax.set_xlabel(f"importance ({method}, fraction of variance explained)")
        ax.set_title(f"Hyperparameter importance (optuna, {n_trials} completed trials)")
        return save(fig, out_dir, name)


def _axis_scale(values: pd.Series, log: bool) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Values mapped to [0, 1] and (position, label) ticks at min and max (every category for strings)."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and len(numeric):
        x = np.log10(numeric.to_numpy(dtype=float)) if log else numeric.to_numpy(dtype=float)
        lo, hi = float(x.min()), float(x.max())
        scaled = (x - lo) / (hi - lo) if hi > lo else np.full(len(x), 0.5)
        return scaled, [(0.0, _fmt(float(numeric.min()))), (1.0, _fmt(float(numeric.max())))] if hi > lo else [
            (0.5, _fmt(float(numeric.iloc[0])))
        ]
    categories = sorted(set(map(str, values)))
    step = 1 / max(len(categories) - 1, 1)
    index = {c: i * step for i, c in enumerate(categories)}
    return np.array([index[str(v)] for v in values]), [(p, c) for c, p in index.items()]


# -- cost -------------------------------------------------------------------------------------------


def cost(trials: pd.DataFrame, out_dir: str | Path, by: str = "arm", name: str = "cost") -> list[Path]:
    """Left: trial time per group (arm, or trial for a tuning sweep), stacked by status. Right: epochs
    run, stacked by status, and the epochs early stopping saved (planned − run, stopped trials)."""
    groups = list(dict.fromkeys(trials[by]))
    divisor, unit = time_unit(float(trials.groupby(by)["time_s"].sum().max() or 0))
    planned = trials["planned_epochs"].fillna(trials["epochs"].max()).astype(float)
    saved = np.where(trials["status"] == "stopped", planned - trials["epochs"], 0.0)
    frame = trials.assign(saved=saved)
    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 0.3 * len(groups) + 1.6), sharey=True)
        y = np.arange(len(groups))[::-1]
        left_edge = np.zeros(len(groups))
        epochs_edge = np.zeros(len(groups))
        for status in ("done", "stopped", "error", "running"):
            part = frame[frame["status"] == status].groupby(by)
            hours = part["time_s"].sum().reindex(groups, fill_value=0).to_numpy() / divisor
            epochs = part["epochs"].sum().reindex(groups, fill_value=0).to_numpy()
            if hours.any() or epochs.any():
                left.barh(y, hours, left=left_edge, color=STATUS_COLOURS[status], label=STATUS_NAMES[status])
                right.barh(y, epochs, left=epochs_edge, color=STATUS_COLOURS[status])
            left_edge += hours
            epochs_edge += epochs
        saved_per_group = frame.groupby(by)["saved"].sum().reindex(groups, fill_value=0).to_numpy()
        if saved_per_group.any():
            right.barh(
                y,
                saved_per_group,
                left=epochs_edge,
                color="none",
                edgecolor=STATUS_COLOURS["stopped"],
                hatch="///",
                label=f"saved by early stopping ({saved_per_group.sum():g} epochs)",
            )
        left.set_yticks(y, [str(g) for g in groups])
        per = "" if by == "trial" else f", summed over the {by}'s trials"
        left.set_xlabel(f"trial time ({unit}{per})")
        right.set_xlabel(f"epochs{f' ({per[2:]})' if per else ''}")
        _integer_ticks(right)
        total = float(trials["time_s"].sum())
        total_divisor, total_unit = time_unit(total)
        left.set_title(
            f"Compute: {total / total_divisor:.1f} {total_unit} of trial time ({total / 3600:.2g} trial-hours)"
        )
        right.set_title("Epochs run, and saved by early stopping" if saved_per_group.any() else "Epochs run")
        handles = [h for ax in (left, right) for h in ax.get_legend_handles_labels()[0]]
        fig.tight_layout()
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles))
        return save(fig, out_dir, name)


# -- helpers ----------------------------------------------------------------------------------------


def _limit_to_data(ax: plt.Axes, values: pd.Series, zero: bool = False) -> bool:
    """Y range from the trials' own values: with 2-3 seeds a t-CI band is wider than the data and would
    flatten the curves; the band then runs off the axes (still honest, and the legend says n).
    With ``zero`` the range reaches down to 0, so a near-zero quantity (a flat gate's spread) looks small
    instead of being stretched over the whole axis. Returns whether something drawn (a band) now extends
    beyond the axes."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return False
    before = ax.get_ylim()
    low, high = float(values.min()), float(values.max())
    low = min(low, 0.0) if zero else low
    pad = 0.15 * (high - low) if high > low else 0.05 * max(abs(high), 1e-3)
    ax.set_ylim(max(low - pad, 0.0) if low >= 0 else low - pad, high + pad)
    after = ax.get_ylim()
    return before[0] < after[0] or before[1] > after[1]


def _integer_ticks(ax: plt.Axes) -> None:
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
