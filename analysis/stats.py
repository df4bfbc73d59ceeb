"""Per-arm statistics over seeds, and each arm against a control arm with a paired test.

Means, stds and CIs use completed trials only (status ``done``): a crashed or early-stopped trial
has no final ``test_error``, and its partial ``val_error`` would mix budgets. What was left out is
counted (``n_failed``, ``n_stopped``, ``n_running``) so tables can say so instead of hiding it, and so
are completed trials that never beat the majority baseline (``n_degenerate``, :mod:`analysis.load`).

Arms are paired on ``seed``: the same seed means the same data split and initialisation in every
arm, so the per-seed difference removes that shared noise (a paired t-test, and Wilcoxon's
signed-rank test when there are enough pairs for it to reach p < 0.05).

In a sweep over several tasks each arm is compared with the control arm *of its own task*: seed 3 of
digits and seed 3 of dna share nothing, so pairing across tasks would measure the task, not the arm.
A control that names ``task.name`` explicitly is one arm for every task.

Each comparison also says how many seeds the observed effect would need to be detected at 80 % power
(α = 0.05, two-sided paired t-test, ``statsmodels``): a sweep with fewer seeds than that cannot tell
such an effect from noise, whatever its p-value happened to be this time.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from analysis.load import CONFIG, SEED, arm_columns, trial_config
from pare_core.formatting import MISSING
from sweeps.identity import arm_cells

METRICS = ("val_error", "test_error")
WILCOXON_MIN_PAIRS = 6  # with 5 or fewer pairs the exact two-sided signed-rank p is never below 0.05
POWER, ALPHA = 0.8, 0.05  # the conventional design targets for "how many seeds does this effect need"
# The no-treatment values of the platform's sweeps, by priority: the control arm matches as many as it can.
CONTROL_PREFERENCE = (
    ("method", "finetune"),
    ("aux", "none"),
    ("gate.selection", "none"),
    ("curriculum.shape", "constant"),
)
CONTROL_HELP = (
    "control arm as key=value[,key=value] (default: the arm that best matches "
    + ", ".join(f"{k}={v}" for k, v in CONTROL_PREFERENCE)
    + ", in that order of priority; else the first arm)"
)
# Keys that split a sweep into separate experiments: arms are compared with the control of their own stratum.
STRATA = ("task.name",)


def summarize(values: pd.Series | np.ndarray | list[float], confidence: float = 0.95) -> dict[str, float]:
    """n, mean, sample std (ddof=1) and the t-distribution CI of the mean; NaN where n is too small."""
    x = np.asarray(pd.Series(values, dtype=float).dropna())
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def curve_stats(curves: pd.DataFrame, trials: pd.DataFrame, metric: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per arm (in the trials' order) and epoch: :func:`summarize` of ``metric`` over the arm's trials.

    Failed trials are left out: their curves end at the crash, which would bend the mean; stopped ones
    are kept. Epochs where no trial reported a value (an arm without a gate, a statistic that needs a
    previous epoch) have no row, so a line drawn from the rows has no spurious points."""
    kept = trials[trials["status"] != "error"]
    data = curves.merge(kept[["trial_id", "arm"]], on="trial_id")
    rows = [
        {"arm": arm, "epoch": epoch, **summarize(values, confidence)}
        for arm in dict.fromkeys(kept["arm"])
        for epoch, values in data[data["arm"] == arm].groupby("epoch")[metric]
    ]
    frame = pd.DataFrame(rows, columns=["arm", "epoch", "n", "mean", "std", "ci_low", "ci_high"])
    return frame[frame["n"] > 0].reset_index(drop=True)


def arm_stats(
    trials: pd.DataFrame, arm_keys: list[str], metrics: tuple[str, ...] = METRICS, confidence: float = 0.95
) -> pd.DataFrame:
    """One row per arm (in the trials' order): config values, trial counts by status, and for each
    metric ``<m>_n``, ``_mean``, ``_std``, ``_ci_low``, ``_ci_high`` over the arm's done trials."""
    rows = []
    for label, group in _arms(trials, arm_keys):
        done = group[group["status"] == "done"]
        row: dict[str, Any] = {
            "arm": label,
            **{c: group[c].iloc[0] for c in arm_columns(arm_keys)},
            "n_trials": len(group),
            "n_done": len(done),
        }
        for status in ("error", "stopped", "running"):
            row[f"n_{'failed' if status == 'error' else status}"] = int((group["status"] == status).sum())
        row["n_reused"] = int(group["reused"].sum()) if "reused" in group else 0  # finished earlier, found by key
        row["n_degenerate"] = int(done["degenerate"].sum()) if "degenerate" in done else 0  # never beat majority
        row["time_s"] = float(group["time_s"].sum())
        for metric in metrics:
            values = done[metric] if metric in done else []
            row.update({f"{metric}_{k}": v for k, v in summarize(values, confidence).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def one_key_sweeps(
    trials: pd.DataFrame, stats: pd.DataFrame, arm_keys: list[str]
) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """The keys swept on their own: ``[(key, [(what the group fixes, [arm labels]), ...])]`` for each numeric
    key with a group of arms that take two or more of its values while every other arm key stays fixed
    (a threshold sweep). Only such a group shows the key's effect: arms that differ in other keys too
    would put their effect on this key's axis. ``stats``: :func:`arm_stats` rows of ``trials``; a key
    without effect on an arm (:func:`sweeps.identity.arm_cells`) does not count as swept there."""
    configs = {arm: trial_config(group.iloc[0]) for arm, group in trials.groupby("arm", sort=False)}
    out = []
    for key in arm_keys:
        others = [k for k in arm_keys if k != key]
        groups: dict[tuple, list[str]] = {}
        for _, s in stats.iterrows():
            cells = dict(zip(arm_keys, arm_cells(configs[s["arm"]], arm_keys)))
            value = s[CONFIG + key]
            if cells[key] is MISSING or not isinstance(value, numbers.Real) or isinstance(value, bool):
                continue
            groups.setdefault(tuple(repr(cells[k]) for k in others), []).append(s["arm"])
        swept = [
            (
                ", ".join(
                    f"{k.rsplit('.', 1)[-1]}={stats.loc[stats['arm'] == arms[0], CONFIG + k].iloc[0]}" for k in others
                )
                or key,
                arms,
            )
            for arms in groups.values()
            if stats.loc[stats["arm"].isin(arms), CONFIG + key].nunique() > 1
        ]
        if swept:
            out.append((key, swept))
    return out


def default_control(trials: pd.DataFrame, arm_keys: list[str]) -> dict[str, Any]:
    """The control arm's config values without the strata (e.g. ``task.name``): the arm matching
    CONTROL_PREFERENCE best, higher priorities first (``method=finetune, aux=none`` beats
    ``method=finetune, aux=lsg``); the first arm when none matches."""
    arms = [_arm_values(group, arm_keys) for _, group in _arms(trials, arm_keys)]
    if not arms:
        return {}
    best = max(arms, key=lambda values: tuple(values.get(k, object()) == v for k, v in CONTROL_PREFERENCE))
    return _without_strata(best)


def parse_control(text: str, trials: pd.DataFrame, arm_keys: list[str]) -> dict[str, Any]:
    """``"gate.selection=random"`` (comma-separated for several keys) -> the control's config values.

    The given pairs must match exactly one arm per task (per stratum); the message lists the arms
    otherwise. Naming ``task.name`` makes that one arm the control for every task."""
    wanted = dict(part.split("=", 1) for part in text.split(",") if part.strip())
    unknown = [k for k in wanted if k not in arm_keys]
    if unknown:
        raise ValueError(
            f"--control {text!r}: {', '.join(unknown)} is not a swept key; swept keys are "
            f"{', '.join(arm_keys) or 'none'}"
        )
    arms = _arms(trials, arm_keys)
    matches = [g for _, g in arms if all(_same(g[CONFIG + k].iloc[0], v) for k, v in wanted.items())]
    strata = strata_keys(arm_keys, wanted)
    per_stratum = pd.Series([tuple(g[CONFIG + k].iloc[0] for k in strata) for g in matches]).value_counts()
    if not matches or (per_stratum > 1).any():
        where = f" per {', '.join(strata)}" if strata else ""
        labels = ", ".join(f"'{label}'" for label, _ in arms)
        raise ValueError(
            f"--control {text!r} matches {per_stratum.max() if matches else 0} arms{where}, not 1; "
            f"the arms are {labels}"
        )
    values = _arm_values(matches[0], arm_keys)
    return {k: v for k, v in values.items() if k not in strata}


def compare_to_control(
    trials: pd.DataFrame,
    arm_keys: list[str],
    control: dict[str, Any] | None = None,
    metric: str = "test_error",
    wilcoxon: bool | None = None,
) -> pd.DataFrame:
    """Each arm vs its control arm, paired by seed over seeds where both have a done trial.

    ``control`` holds config values; an arm's control is the arm with those values and the arm's own
    value of each stratum key ``control`` does not name (its task). Arms without one in their task
    are left out. Columns: ``arm``, ``control`` (its label), ``n_pairs``, ``mean_diff`` (arm −
    control; negative = lower error than control) with its 95% t-interval (``diff_ci_low``,
    ``diff_ci_high``: the mean of the per-seed differences), ``d_z`` (paired Cohen's d: mean of the
    differences / their std), ``t``, ``p_ttest`` (``scipy.stats.ttest_rel``), ``p_wilcoxon`` (when
    ``wilcoxon`` is True, or by default with at least WILCOXON_MIN_PAIRS pairs), ``p_holm`` (the
    t-test p-values Holm-adjusted across the arms compared) and ``seeds_needed`` (:func:`seeds_needed`
    for the observed ``d_z``).
    """
    control = default_control(trials, arm_keys) if control is None else control
    by_arm = dict(_arms(trials, arm_keys))
    values = {label: _arm_values(group, arm_keys) for label, group in by_arm.items()}
    strata = strata_keys(arm_keys, control)
    rows = []
    for label, group in by_arm.items():
        wanted = {**control, **{k: values[label][k] for k in strata}}
        control_label = next((c for c, v in values.items() if all(v[k] == wanted[k] for k in wanted)), None)
        if control_label is None or control_label == label:
            continue
        base = _per_seed(by_arm[control_label], metric)
        pairs = pd.concat([_per_seed(group, metric), base], axis=1, keys=["arm", "control"], join="inner").dropna()
        rows.append({"arm": label, "control": control_label, **paired_test(pairs["arm"], pairs["control"], wilcoxon)})
    columns = [
        "arm",
        "control",
        "n_pairs",
        "mean_diff",
        "diff_ci_low",
        "diff_ci_high",
        "d_z",
        "t",
        "p_ttest",
        "p_wilcoxon",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["p_holm"] = holm(frame["p_ttest"].to_numpy(dtype=float))
    frame["seeds_needed"] = [seeds_needed(d) for d in frame["d_z"]]
    return frame


def seeds_needed(d_z: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """Seeds (pairs) a two-sided paired t-test needs to detect a true effect of size ``d_z`` with
    probability ``power`` at level ``alpha``: ``statsmodels``' solve_power, rounded up, at least 2 (a
    paired test needs two pairs). NaN when there is no effect size (fewer than 2 pairs, or a
    difference without spread) or it is 0 (no number of seeds detects no effect)."""
    if not math.isfinite(d_z) or d_z == 0:
        return math.nan
    from statsmodels.stats.power import TTestPower  # ~1 s to import: only tables with comparisons pay it
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    test = TTestPower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # handled below
        n = test.solve_power(effect_size=abs(d_z), alpha=alpha, power=power, alternative="two-sided")

    def reached(pairs: int) -> bool:  # NaN power: the noncentral t overflows, which happens at near-certain power
        return not test.power(effect_size=abs(d_z), nobs=pairs, alpha=alpha) < power

    # The root finder is unreliable for large effects (it stops at, or fails below, its bracket of 2
    # pairs): check its answer on the integers around it.
    k = max(2, math.ceil(n)) if math.isfinite(n) else 2
    while k > 2 and reached(k - 1):
        k -= 1
    while not reached(k):
        k += 1
    return float(k)


def paired_test(x: pd.Series | np.ndarray, y: pd.Series | np.ndarray, wilcoxon: bool | None = None) -> dict[str, float]:
    """Paired comparison of x against y (same length, matched by position)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    diff = x - y
    n = len(diff)
    interval = summarize(diff)
    out = {
        "n_pairs": n,
        "mean_diff": float(diff.mean()) if n else math.nan,
        "diff_ci_low": interval["ci_low"],
        "diff_ci_high": interval["ci_high"],
        "d_z": math.nan,
        "t": math.nan,
        "p_ttest": math.nan,
        "p_wilcoxon": math.nan,
    }
    if n < 2:
        return out
    if not np.allclose(diff, diff[0], rtol=1e-9, atol=1e-12):  # a constant difference has no spread to test
        out["d_z"] = float(diff.mean() / diff.std(ddof=1))
        result = scipy.stats.ttest_rel(x, y)
        out["t"], out["p_ttest"] = float(result.statistic), float(result.pvalue)
    if (n >= WILCOXON_MIN_PAIRS if wilcoxon is None else wilcoxon) and np.any(diff != 0):
        out["p_wilcoxon"] = float(scipy.stats.wilcoxon(x, y).pvalue)
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid])]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out


def _arms(trials: pd.DataFrame, arm_keys: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """(label, trials) per arm, in order of first appearance (load() sorts trials stably)."""
    return [(label, trials[trials["arm"] == label]) for label in dict.fromkeys(trials["arm"])]


def _arm_values(group: pd.DataFrame, arm_keys: list[str]) -> dict[str, Any]:
    return {k: group[CONFIG + k].iloc[0] for k in arm_keys}


def strata_keys(arm_keys: list[str], named: dict[str, Any] | None = None) -> list[str]:
    """The STRATA swept here and not ``named`` (by a control): each splits the arms into separate experiments."""
    return [k for k in STRATA if k in arm_keys and k not in (named or {})]


def _without_strata(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in STRATA}


def _per_seed(group: pd.DataFrame, metric: str) -> pd.Series:
    """The metric of the arm's done trials indexed by seed (repeats of a seed are averaged)."""
    done = group[group["status"] == "done"]
    if metric not in done:
        return pd.Series(dtype=float)
    return done.groupby(CONFIG + SEED)[metric].mean()


def _same(value: Any, text: str) -> bool:
    """Does a config value equal a command-line string (``0.5`` == ``"0.50"``, ``True`` == ``"true"``)?"""
    if isinstance(value, bool):
        return text.strip().lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return str(value) == text.strip()
