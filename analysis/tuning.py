"""A tuning sweep's trials as an in-memory Optuna study, so Optuna's importance evaluators apply.

The sweep's own study lives inside Tune's searcher state (a pickle tied to the Ray and Optuna
versions that wrote it); rebuilding it from the results folder works on any laptop. Each searched
key gets the distribution the spec declared (``sweep.json``'s ``space``: uniform, loguniform or
choice). Results written without one get a distribution inferred from the values: strings and
booleans are categorical; numbers span their observed range, on a log scale when they cover a factor
of 10 or more.
Completed trials are COMPLETE with their last reported metric; scheduler-stopped trials are PRUNED
(their metric is from a shorter budget, so they do not enter the importance fit); failed trials FAIL.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import pandas as pd

from analysis.load import CONFIG

LOG_RATIO = 10.0  # a positive numeric key whose max/min reaches this is treated as log-scaled
_STATES = {
    "done": optuna.trial.TrialState.COMPLETE,
    "stopped": optuna.trial.TrialState.PRUNED,
    "error": optuna.trial.TrialState.FAIL,
    "running": optuna.trial.TrialState.RUNNING,
}


def declared_distribution(domain: dict[str, list]) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of a spec's ``space`` entry: ``{uniform|loguniform: [lo, hi]}`` or ``{choice: [...]}``."""
    ((kind, values),) = domain.items()
    if kind == "choice":
        return optuna.distributions.CategoricalDistribution(values)
    low, high = (float(v) for v in values)
    return optuna.distributions.FloatDistribution(low, high, log=kind == "loguniform")


def infer_distribution(values: pd.Series) -> optuna.distributions.BaseDistribution:
    """An Optuna distribution that covers ``values`` (see the module docstring)."""
    values = values.dropna()
    if all(isinstance(v, bool) or isinstance(v, str) for v in values):
        return optuna.distributions.CategoricalDistribution(sorted(set(values), key=str))
    numbers = values.astype(float)
    low, high = float(numbers.min()), float(numbers.max())
    log = low > 0 and high / low >= LOG_RATIO
    if (numbers == numbers.round()).all() and all(isinstance(v, int) or float(v).is_integer() for v in values):
        return optuna.distributions.IntDistribution(int(low), int(high), log=log)
    return optuna.distributions.FloatDistribution(low, high, log=log)


def build_study(
    trials: pd.DataFrame,
    params: list[str],
    metric: str,
    mode: str = "min",
    curves: pd.DataFrame | None = None,
    space: dict[str, dict[str, list]] | None = None,
) -> optuna.Study:
    """An in-memory study with one frozen trial per Tune trial, in creation order. ``curves`` adds
    each trial's per-epoch ``metric`` as intermediate values (what ASHA compared); ``space`` is the
    declared search space (``Results.space``)."""
    space = space or {}
    distributions = {
        p: declared_distribution(space[p]) if p in space else infer_distribution(trials[CONFIG + p]) for p in params
    }
    study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
    order = trials.sort_values("trial_number", kind="stable") if "trial_number" in trials else trials
    for _, row in order.iterrows():
        state = _STATES[row["status"]]
        value = row.get(metric)
        if state == optuna.trial.TrialState.COMPLETE and not _finite(value):
            state = optuna.trial.TrialState.FAIL
        intermediate = {}
        if curves is not None and metric in curves:
            steps = curves[curves["trial_id"] == row["trial_id"]][["epoch", metric]].dropna()
            intermediate = {int(e): float(v) for e, v in steps.itertuples(index=False)}
        study.add_trial(
            optuna.trial.create_trial(
                params={p: _native(row[CONFIG + p]) for p in params},
                distributions=distributions,
                value=float(value) if state == optuna.trial.TrialState.COMPLETE else None,
                intermediate_values=intermediate,
                state=state,
                user_attrs={"trial_id": row["trial_id"], "status": row["status"]},
            )
        )
    return study


def importances(study: optuna.Study, seed: int = 0) -> dict[str, float]:
    """fANOVA importance of each searched key (sums to 1) over the study's completed trials."""
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    return optuna.importance.get_param_importances(study, evaluator=evaluator)


def log_scaled(distributions: dict[str, optuna.distributions.BaseDistribution]) -> set[str]:
    """The keys whose distribution is on a log scale (for plot axes)."""
    return {k for k, d in distributions.items() if getattr(d, "log", False)}


def _native(value: Any) -> Any:
    """numpy scalars -> Python scalars (Optuna checks types when it validates params)."""
    return value.item() if hasattr(value, "item") else value


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
