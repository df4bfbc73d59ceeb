"""Figures for papers, in one style: matplotlib (Agg), Okabe–Ito colours, PNG + PDF, units on axes.

Every function takes tidy frames from :mod:`analysis.load` / :mod:`analysis.stats` (or a plain dict
for the gate map), draws one figure, writes ``<name>.png`` and ``<name>.pdf`` into ``out_dir`` and
returns both paths. Arms keep the colour and marker of their position in the trials' stable order,
so the same arm looks the same in every figure of a sweep. Long arm labels go on the y axis
(horizontal charts) or in a legend outside the axes, so they never overlap the data.

Figures are drawn at the width a paper prints them (:data:`WIDTHS`, set by :func:`sized`) with
matplotlib's constrained layout, and saved at that size, so their 8-9 pt text prints at 8-9 pt; at a
column's width labels wrap, ticks thin out (:func:`fit_ticks`) and legends go under the plot. Inside
:func:`sized`, each figure is measured as it is saved (:func:`layout_problems`): overlapping labels, a
legend over an axes or a label, text cut off at the edge. docs/figures.md shows the result.
"""

from __future__ import annotations

import math
import re
import textwrap
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
    "figure.constrained_layout.use": True,  # labels and legends fit inside the figure: it is printed at its size
    "savefig.dpi": 200,
    "figure.dpi": 100,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "pdf.fonttype": 42,
}
FOOTER_PT, FOOTER_LINE_IN, FOOTER_CHARS_PER_INCH = 5.5, 0.105, 24  # the provenance line under each figure
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


def _short_label(metric: str) -> str:
    """``test error``: the axis label without its unit note, where the width is short (the caption says it)."""
    return axis_label(metric).split(" (")[0]


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


# Figure widths of a two-column paper (ICML, NeurIPS-style two-column templates): one column and the
# full text width, in inches. Figures drawn at the width they are printed keep their 8-9 pt fonts.
WIDTHS = {"column": 3.25, "full": 6.75}
NARROW = 4.5  # below this width (inches) legends go under the axes and axes get fewer ticks
_WIDTH: list[float] = []  # the width figures are drawn at (set by ``sized``)
_LAYOUT: list[list[str]] = []  # layout problems of the figures saved (collected by ``sized``)


@contextmanager
def sized(width: float) -> Iterator[list[str]]:
    """Figures made inside this block are ``width`` inches wide, and each saved one is checked with
    :func:`layout_problems`; yields the list its problems are added to (``"<figure>: <problem>"``)."""
    _WIDTH.append(width)
    _LAYOUT.append([])
    try:
        yield _LAYOUT[-1]
    finally:
        _WIDTH.pop()
        _LAYOUT.pop()


def page_width() -> float:
    return _WIDTH[-1] if _WIDTH else WIDTHS["full"]


def narrow() -> bool:
    return page_width() < NARROW


def wrap_label(label: str) -> str:
    """An arm name broken into lines that fit beside an axis at this width: at ``_`` or ``, `` or a
    space, never inside a word (a name with no break stays whole)."""
    limit = 16 if narrow() else 28
    parts = re.split(r"(?<=[_ ,])", label)
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part.rstrip()) > limit:
            lines.append("")
        lines[-1] += part
    return "\n".join(line.rstrip() for line in lines)


def fill(text: str, panels: int = 1) -> str:
    """A title broken into lines that fit the figure's width, or one of its ``panels`` side by side
    (about 10 characters an inch at 10-11 pt)."""
    return textwrap.fill(text, int(page_width() * 10 / panels))


def outside_legend(
    fig: plt.Figure,
    ax: plt.Axes,
    below: bool = False,
    handles: list[Any] | None = None,
    under: plt.Axes | None = None,
    **kwargs: Any,
) -> None:
    """``ax``'s legend (or ``handles``) off the axes, where the layout makes room for it: right of ``ax``
    at full width; under the figure at a narrow one, where a legend beside the axes would take half the
    column, or with ``below`` (``ax`` has a panel beside it), under ``under`` (default ``ax``) and its
    tick labels and axis label. The figure grows by the legend's rows: the axes keep their height."""
    labels = [h.get_label() for h in handles] if handles else ax.get_legend_handles_labels()[1]
    handles = handles or ax.get_legend_handles_labels()[0]
    if not labels:
        return
    lines = max(label.count("\n") + 1 for label in labels)
    if not (narrow() or below):  # beside: the figure as tall as the legend, at the least
        legend_height = 0.2 * (len(labels) * lines + ("title" in kwargs)) + 0.2
        fig.set_figheight(max(fig.get_figheight(), legend_height + 0.5))
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), **kwargs)
        return
    under = under or ax
    columns = max(1, min(len(labels), int(under.get_position().width * page_width() // 1.5)))
    rows = -(-len(labels) // columns) + ("title" in kwargs)
    fig.set_figheight(fig.get_figheight() + 0.2 * rows * lines + 0.1)
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    depth = (under.get_window_extent(renderer).y0 - under.xaxis.get_tightbbox(renderer).y0) / fig.dpi + 0.04
    legend = under.legend(handles, labels, loc="upper center", ncol=columns, **kwargs)
    for _ in range(4):  # the layout moves the axes as the legend takes room: push it clear of the labels
        legend.set_bbox_to_anchor(
            (0.5, 0.0), under.transAxes + matplotlib.transforms.ScaledTranslation(0, -depth, fig.dpi_scale_trans)
        )
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()  # a new one when the figure grew
        clash = legend.get_window_extent(renderer).y1 - under.xaxis.get_tightbbox(renderer).y0
        if clash < 0:
            return
        depth += clash / fig.dpi + 0.04


def fit_ticks(fig: plt.Figure, axes: list[matplotlib.axis.Axis], most: int = 7, integer: bool = False) -> None:
    """As many ticks on each of ``axes`` as fit without their labels touching: numbers like -0.0075 need
    fewer ticks on a panel a third of a column wide. Fewer bins first (``most`` at the most), then every
    other tick of the fewest, down to one. All axes are fitted together, since the layout gives one
    panel's space to another's labels."""
    bins = dict.fromkeys(axes, most)
    for axis, n in bins.items():
        axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10], integer=integer))
    while True:
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        crowded = [axis for axis in axes if _touching(axis, renderer)]
        if not crowded:
            return
        for axis in crowded:
            if bins[axis] > 1:
                bins[axis] -= 1
                locator = matplotlib.ticker.MaxNLocator(nbins=bins[axis], steps=[1, 2, 2.5, 5, 10], integer=integer)
            else:  # the fewest bins still crowd: keep every other tick
                low, high = sorted(axis.get_view_interval())
                ticks = [t for t in axis.get_majorticklocs() if low <= t <= high]
                if len(ticks) < 2:
                    return
                locator = matplotlib.ticker.FixedLocator(ticks[::2])
            axis.set_major_locator(locator)


def _touching(axis: matplotlib.axis.Axis, renderer: Any) -> bool:
    boxes = [t.get_window_extent(renderer).padded(2) for t in _tick_labels_of(axis)]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def layout_problems(fig: plt.Figure) -> list[str]:
    """What makes ``fig`` hard to read, measured by matplotlib's renderer: two labels that overlap (tick
    labels, axis labels, titles and the figure's own texts, on any of its axes), and a legend that covers
    an axes or any of those labels. Empty for a clean figure."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    texts = [(text.get_text(), text.get_window_extent(renderer)) for text in _labels(fig)]
    problems = [
        f"labels {a!r} and {b!r} overlap"
        for i, (a, box_a) in enumerate(texts)
        for b, box_b in texts[i + 1 :]
        if box_a.overlaps(box_b)
    ]
    edge = fig.bbox.padded(1)  # what is printed: the figure is saved at its size
    problems += [f"label {text!r} is cut off at the figure's edge" for text, box in texts if not _inside(box, edge)]
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        problems += [
            f"the legend covers the axes {ax.get_label() or ax.get_xlabel() or i}"
            for i, ax in enumerate(fig.axes)
            if box.overlaps(ax.get_window_extent(renderer))
        ]
        problems += [f"the legend covers {text[:40]!r}" for text, text_box in texts if box.overlaps(text_box)]
        problems += [] if _inside(box, edge) else ["the legend is cut off at the figure's edge"]
    return problems


def _inside(box: matplotlib.transforms.Bbox, edge: matplotlib.transforms.Bbox) -> bool:
    return edge.x0 <= box.x0 and box.x1 <= edge.x1 and edge.y0 <= box.y0 and box.y1 <= edge.y1


def _labels(fig: plt.Figure) -> list[matplotlib.text.Text]:
    """Every text that labels something: tick labels as drawn, axis labels, titles, the figure's texts."""
    named = [
        text for ax in fig.axes for text in (ax.xaxis.label, ax.yaxis.label, ax.title, ax._left_title, ax._right_title)
    ]
    named += [*fig.texts, *(t for t in (fig._suptitle, fig._supxlabel, fig._supylabel) if t is not None)]
    return list(dict.fromkeys(_tick_labels(fig) + [t for t in named if t.get_visible() and t.get_text()]))


def _tick_labels(fig: plt.Figure) -> list[matplotlib.text.Text]:
    return [text for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for text in _tick_labels_of(axis)]


def _tick_labels_of(axis: matplotlib.axis.Axis) -> list[matplotlib.text.Text]:
    """The tick labels drawn: visible, non-empty, at a tick inside the axis' view."""
    low, high = sorted(axis.get_view_interval())
    pad = 1e-9 * max(1.0, abs(high - low))
    return [
        text
        for tick in axis.get_major_ticks()
        if low - pad <= tick.get_loc() <= high + pad
        for text in (tick.label1, tick.label2)
        if text.get_visible() and text.get_text()
    ]


def save(fig: plt.Figure, out_dir: str | Path, name: str, note: str = "") -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` with ``note`` and the provenance footer (if one is set) under
    everything else, inside the figure: the figure grows by their lines, so its width stays the width
    it was drawn for; close the figure."""
    lines = [
        line
        for text in (note, _FOOTER[-1] if _FOOTER else "")
        if text
        for line in textwrap.wrap(text, int(FOOTER_CHARS_PER_INCH * fig.get_figwidth()))
    ]
    if lines:
        height = fig.get_figheight()
        extra = len(lines) * FOOTER_LINE_IN + 0.06
        fig.set_figheight(height + extra)
        fig.get_layout_engine().set(rect=(0, extra / (height + extra), 1, height / (height + extra)))
        fig.text(
            0.005, 0.02 / (height + extra), "\n".join(lines), fontsize=FOOTER_PT, color="0.4", ha="left", va="bottom"
        )
    if _LAYOUT:
        _LAYOUT[-1].extend(f"{name}: {problem}" for problem in layout_problems(fig))
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
        fig, ax = plt.subplots(figsize=(page_width(), 3.0 if narrow() else 3.6))
        beyond = False
        if per_trial or (per_trial is None and len(arms) > MAX_LEGEND):
            _trial_lines(ax, data, kept, metric)
            title = None
        else:
            bands = curve_stats(curves, trials, metric, confidence)
            for i, arm in enumerate(arms):
                n = int(kept[kept["arm"] == arm].shape[0])
                _band(ax, bands[bands["arm"] == arm], i, f"{wrap_label(arm)} (n={n})")
            title = f"arm (band: {confidence:.0%} CI)"
            beyond = _limit_to_data(ax, data[metric])
        ax.set_xlabel("epoch")
        ax.set_ylabel(_short_label(metric))
        _integer_ticks(ax)
        ax.set_title(f"{_short_label(metric)} per epoch")
        outside_legend(fig, ax, **({"title": title} if title else {}))
        return save(fig, out_dir, name, BANDS_BEYOND if beyond else "")


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
    rows, columns = (len(metrics), 1) if narrow() else (1, len(metrics))  # a column holds one panel per row
    with style():
        fig, axes = plt.subplots(
            rows,
            columns,
            figsize=(page_width(), 1.9 * rows + 1.0),
            squeeze=False,
            sharex=True,
        )  # tau starts at epoch 2: shared epochs keep the panels aligned
        beyond = False
        for ax, metric in zip(axes.flat, metrics):
            bands = curve_stats(curves, trials, metric, confidence)
            for i, arm in enumerate(arms):
                band = bands[bands["arm"] == arm]
                if len(band):
                    _band(ax, band, i, f"{arm} (n={int(band['n'].max())})")
            beyond |= _limit_to_data(ax, data[metric], zero=metric in SPREADS)
            ax.set_xlabel("epoch" if ax in axes[-1] else "")
            ax.set_ylabel(wrap_label(axis_label(metric)))
            _integer_ticks(ax)
        widest = max(axes.flat, key=lambda ax: len(ax.get_legend_handles_labels()[1]))
        outside_legend(
            fig, axes.flat[-1], handles=widest.get_legend_handles_labels()[0], title=f"arm (band: {confidence:.0%} CI)"
        )
        fit_ticks(fig, [ax.yaxis for ax in axes.flat])
        fit_ticks(fig, [ax.xaxis for ax in axes.flat], integer=True)
        return save(fig, out_dir, name, BANDS_BEYOND if beyond else "")


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


# -- ablation ---------------------------------------------------------------------------------------


def arms(
    stats: pd.DataFrame,
    trials: pd.DataFrame,
    comparison: pd.DataFrame,
    metric: str,
    out_dir: str | Path,
    name: str | None = None,
) -> list[Path]:
    """The ablation of ``metric``, one row per arm, named on the y axis. Left: each arm's mean with its 95%
    t-CI and each seed as a dot (a degenerate seed, one that never beat its majority baseline, as a cross);
    the control's mean as a dashed reference line. Right: Δ vs control, the mean per-seed difference with
    its paired 95% CI, and the Holm-adjusted p on the right edge (``comparison``:
    :func:`analysis.stats.compare_to_control` of ``metric``). Sized for :func:`page_width`."""
    labels = list(stats["arm"])
    n = len(labels)
    wrapped = [wrap_label(a) for a in labels]
    lines = sum(w.count("\n") + 1 for w in wrapped)
    y = {a: n - 1 - i for i, a in enumerate(labels)}  # first arm on top
    by_arm = comparison.set_index("arm") if len(comparison) else pd.DataFrame()
    controls = list(dict.fromkeys(comparison["control"])) if len(comparison) else []
    done = trials[trials["status"] == "done"]
    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(page_width(), 0.9 + 0.16 * lines + 0.06 * n), sharey=True)
        for i, (_, s) in enumerate(stats.iterrows()):
            arm, row = s["arm"], y[s["arm"]]
            seeds = done[done["arm"] == arm]
            values = seeds[metric].astype(float).to_numpy() if metric in seeds else np.array([])
            jitter = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(len(values))
            bad = seeds["degenerate"].to_numpy(dtype=bool) if "degenerate" in seeds else np.zeros(len(values), bool)
            left.scatter(values[~bad], row + jitter[~bad], s=10, color=colour(i), alpha=0.45, linewidths=0, zorder=2)
            left.scatter(values[bad], row + jitter[bad], s=16, color=STATUS_COLOURS["error"], marker="x", zorder=2)
            _point(left, s[f"{metric}_mean"], row, s[f"{metric}_ci_low"], s[f"{metric}_ci_high"], i)
            if arm in by_arm.index:
                c = by_arm.loc[arm]
                _point(right, c["mean_diff"], row, c["diff_ci_low"], c["diff_ci_high"], i)
            elif arm in controls:
                right.text(
                    0, row, "control", ha="center", va="center", fontsize=7, color="0.3", backgroundcolor="white"
                )
        means = stats.set_index("arm")[f"{metric}_mean"]
        for control in controls:  # over the rows compared with it (its task's arms, in a sweep of several)
            rows = [y[control]] + [y[a] for a in comparison.loc[comparison["control"] == control, "arm"]]
            left.vlines(means[control], min(rows) - 0.45, max(rows) + 0.45, color="0.2", linestyle="--", linewidth=0.9)
        right.axvline(0, color="0.2", linewidth=0.9)
        left.set_yticks(range(n), wrapped[::-1])
        left.set_ylim(-0.6, n - 0.4)
        left.grid(axis="y", visible=False)
        right.grid(axis="y", visible=False)
        left.set_xlabel(fill(_short_label(metric), 3))
        right.set_xlabel("Δ vs control\n(paired; p: Holm)")
        p_axis = right.twinx()
        p_axis.set_ylim(left.get_ylim())
        p_axis.set_yticks(
            [y[a] for a in labels],
            [_p_label(by_arm.loc[a, "p_holm"]) if a in by_arm.index else "" for a in labels],
        )
        p_axis.tick_params(axis="y", length=0, labelsize=7)
        p_axis.grid(False)
        p_axis.spines["right"].set_visible(False)
        fit_ticks(fig, [left.xaxis, right.xaxis])
        return save(fig, out_dir, name or f"ablation_{_slug(metric)}")


def key_sweep(
    stats: pd.DataFrame,
    trials: pd.DataFrame,
    key: str,
    groups: list[tuple[str, list[str]]],
    out_dir: str | Path,
    metrics: tuple[str, ...] = ("val_error", "test_error"),
    name: str | None = None,
) -> list[Path]:
    """``metrics`` over the values of ``key``, one panel per metric: for each group of arms (``groups``:
    (what the group fixes, its arm labels), the arms differing in ``key`` alone:
    :func:`analysis.stats.one_key_sweeps`) a line through the means with 95% CI bars, each seed a dot.
    The key is numeric, so the x axis is its scale."""
    with style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(page_width(), 2.6), squeeze=False, sharex=True)
        for ax, metric in zip(axes[0], metrics):
            for i, (label, group) in enumerate(groups):
                rows = stats[stats["arm"].isin(group)].sort_values(CONFIG + key)
                x = rows[CONFIG + key].astype(float).to_numpy()
                seeds = trials[trials["arm"].isin(group) & (trials["status"] == "done")]
                ax.scatter(
                    seeds[CONFIG + key].astype(float), seeds[metric], s=9, color=colour(i), alpha=0.4, linewidths=0
                )
                ax.errorbar(
                    x,
                    rows[f"{metric}_mean"],
                    yerr=_ci_extent(rows[f"{metric}_mean"], rows[f"{metric}_ci_low"], rows[f"{metric}_ci_high"]),
                    color=colour(i),
                    marker=marker(i),
                    markersize=4,
                    capsize=2,
                    linewidth=1.2,
                    label=wrap_label(label) if len(groups) > 1 else None,
                )
            ax.set_xlabel(key)
            ax.set_ylabel(_short_label(metric))
        if len(groups) > 1:
            outside_legend(fig, axes[0][-1])
        fit_ticks(fig, [ax.xaxis for ax in axes[0]] + [ax.yaxis for ax in axes[0]])
        return save(fig, out_dir, name or f"sweep_{_slug(key)}")


def _point(ax: plt.Axes, mean: float, row: float, low: float, high: float, i: int) -> None:
    """A mean (arm ``i``'s colour and marker) at ``row`` with its CI as a horizontal bar."""
    if _missing_number(mean):
        return
    ax.errorbar(
        [mean],
        [row],
        xerr=[[0.0 if _missing_number(low) else mean - low], [0.0 if _missing_number(high) else high - mean]],
        fmt=marker(i),
        color=colour(i),
        markersize=4.5,
        capsize=2.5,
        linewidth=1.2,
        zorder=3,
    )


def _ci_extent(mean: pd.Series, low: pd.Series, high: pd.Series) -> list[np.ndarray]:
    """Error-bar lengths below and above ``mean``; 0 where the CI is undefined (one seed)."""
    return [np.nan_to_num((mean - low).to_numpy(dtype=float)), np.nan_to_num((high - mean).to_numpy(dtype=float))]


def _p_label(p: float) -> str:
    if _missing_number(p):
        return "p —"
    return "p<0.001" if p < 0.001 else f"p={p:.2g}" if p < 0.01 else f"p={p:.2f}"


def _missing_number(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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
        arms_height = max(2.0, 0.3 * len(stats) + 0.9)
        stacked = narrow()  # a column holds the schedules above the arms
        fig, (left, right) = plt.subplots(
            2 if stacked else 1,
            1 if stacked else 2,
            figsize=(page_width(), 2.2 + arms_height if stacked else max(2.6, arms_height + 0.3)),
            height_ratios=[2.2, arms_height] if stacked else None,
        )
        for i, schedule in enumerate(schedules):
            ratio = data[data["schedule"] == schedule].groupby("epoch")["ratio"].mean()
            left.plot(ratio.index, ratio.values, color=colour(i), marker=marker(i), markersize=3.5, label=schedule)
        left.set_xlabel("epoch")
        left.set_ylim(bottom=0)
        left.set_title("Schedules")
        left.set_ylabel(fill(axis_label("ratio"), 3 if narrow() else 2))
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
        right.set_yticks(y, [wrap_label(a) for a in stats["arm"]])
        right.set_xlabel(_short_label(metric))
        right.set_title(fill("Per arm (mean, 95% CI)", 1 if stacked else 2))
        outside_legend(fig, left, title="schedule", below=True)
        fit_ticks(fig, [left.xaxis], integer=True)
        fit_ticks(fig, [right.xaxis])
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
        stacked = has_input and narrow()  # a column holds the sample above its scores
        fig, axes = plt.subplots(
            2 if stacked else 1,
            1 if stacked or not has_input else 2,
            figsize=(page_width(), 4.6 if stacked else 2.8),
            squeeze=False,
        )
        if has_input:
            _draw_sample(axes[0][0], np.asarray(gate["input"], dtype=float), tuple(gate["grid"]), replaced)
        ax = axes.flat[-1]
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
        ax.set_xlim(-0.6, len(scores) - 0.4)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=6 if narrow() else 12))
        outside_legend(fig, ax, below=True, handles=handles)  # right of the panels, it meets the title
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
            fill((title or "Gate scores of one validation sample") + (f" ({', '.join(details)})" if details else ""))
        )
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
    ax.set_title(fill("Input sample (replaced tokens marked)", 1 if narrow() else 2))


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
        fig, ax = plt.subplots(figsize=(page_width(), 3.0 if narrow() else 3.6))
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
        outside_legend(fig, ax)
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
        fig, ax = plt.subplots(figsize=(page_width(), 3.8))
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
        ax.set_title(fill(f"Parallel coordinates of {len(data)} completed trials (each axis: its own min to max)"))
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
        fig, ax = plt.subplots(figsize=(page_width(), 0.45 * len(items) + 1.4))
        ax.barh([k for k, _ in items], [v for _, v in items], color=OKABE_ITO[0])
        for i, (_, v) in enumerate(items):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, max(1.0, max(v for _, v in items) * 1.15))
        ax.set_xlabel(f"importance ({method}, fraction of variance explained)")
        ax.set_title(fill(f"Hyperparameter importance (optuna, {n_trials} completed trials)"))
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
        lines = sum(wrap_label(str(g)).count("\n") + 1 for g in groups)
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(page_width(), 0.17 * lines + 0.08 * len(groups) + 1.5), sharey=True
        )
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
        left.set_yticks(y, [wrap_label(str(g)) for g in groups])
        per = "" if by == "trial" or narrow() else f", summed over the {by}'s trials"  # narrow: the caption says
        left.set_xlabel(fill(f"trial time ({unit}{per})", 2))
        right.set_xlabel(fill(f"epochs{f' ({per[2:]})' if per else ''}", 2))
        total = float(trials["time_s"].sum())
        total_divisor, total_unit = time_unit(total)
        left.set_title(
            fill(f"Compute: {total / total_divisor:.1f} {total_unit} of trial time ({total / 3600:.2g} trial-hours)", 2)
        )
        right.set_title(fill("Epochs run, and saved by early stopping" if saved_per_group.any() else "Epochs run", 2))
        handles = [h for ax in (left, right) for h in ax.get_legend_handles_labels()[0]]
        outside_legend(fig, left, below=True, handles=handles)
        fit_ticks(fig, [left.xaxis])
        fit_ticks(fig, [right.xaxis], integer=True)
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
