"""Fused trials: the seeds of one arm trained as one Tune trial (``pare_core.fusion.fit_seeds``).

Fusion is an execution detail: downstream, every seed is still its own trial, with the key, config,
metrics and status its unfused run has. This module is the one place that knows how a fused trial is
written down, so the spec, the runner, the summary, the progress view, reuse and analysis agree:

- its flat config is the arm's config (``seed``: its first seed) plus ``seeds`` (``"0,1,2"``: text,
  because Tune reads a list in a preset trial config as nested parameters) and, once keyed,
  ``seed_trial_keys`` (each seed's own trial key, the one its unfused run has, in the same order) and
  a ``trial_key`` of its own (a hash of those);
- each report holds, under ``seeds``, per seed the metrics ``fit`` reports for that seed, or
  ``{"error": "Type: message"}`` for a seed that failed (repeated in every later report); at the top,
  the mean over the live seeds of the sweep's metric and the fused run's epoch and clock, which
  schedulers (ASHA) and the progress view read;
- one seed of a trial is named ``<trial id or folder>#seed=<s>``.

Nothing here imports Ray or torch (analysis reads fused folders without either).
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass
from typing import Any

from sweeps.identity import SEED_KEYS_KEY, SEEDS_KEY, TRIAL_KEY
from sweeps.options import format_seeds

REPORT_SEEDS = "seeds"  # the report entry that holds each seed's metrics
ERROR = "error"  # a failed seed's entry: {"error": "NonFiniteLossError: ..."}
SHARED_KEYS = ("epoch", "wall_s", "epoch_s", "val_s")  # the fused run's epoch and clock, one for all seeds
SEED_REF = "#seed="
FAILED = "ERROR"  # Tune's Trial.ERROR: a failed seed's status


def is_fused(config: dict[str, Any]) -> bool:
    return SEEDS_KEY in config


def seeds_of(config: dict[str, Any]) -> list[int]:
    """The seeds a trial trains: a fused trial's ``seeds``, else its one ``seed``."""
    return [int(s) for s in str(config[SEEDS_KEY]).split(",")] if is_fused(config) else [config.get("seed")]


def seed_text(config: dict[str, Any]) -> str:
    """``seed=3``, or ``seeds=0-4`` for a fused trial: how lines and folder names tell trials apart."""
    return f"seeds={format_seeds(seeds_of(config))}" if is_fused(config) else f"seed={config.get('seed')}"


def fuse(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The one trial config that trains ``runs`` (trial configs of one arm that differ only in their seed
    and key) fused; a single run stays an ordinary trial."""
    if len(runs) == 1:
        return runs[0]
    fused = {**runs[0], SEEDS_KEY: ",".join(str(r["seed"]) for r in runs)}
    if TRIAL_KEY in runs[0]:
        fused[SEED_KEYS_KEY] = ",".join(r[TRIAL_KEY] for r in runs)
        fused[TRIAL_KEY] = hashlib.sha256(fused[SEED_KEYS_KEY].encode()).hexdigest()[:16]
    return fused


def split(config: dict[str, Any]) -> list[dict[str, Any]]:
    """A trial's runs, one trial config per seed, each as its unfused trial's (with its own key): the
    inverse of :func:`fuse`. An ordinary trial is its one run."""
    if not is_fused(config):
        return [config]
    base = {k: v for k, v in config.items() if k not in (SEEDS_KEY, SEED_KEYS_KEY)}
    keys = config[SEED_KEYS_KEY].split(",") if SEED_KEYS_KEY in config else None
    return [{**base, "seed": seed, **({TRIAL_KEY: keys[i]} if keys else {})} for i, seed in enumerate(seeds_of(config))]


# -- reports ----------------------------------------------------------------------------------------


def report_row(live: dict[int, dict[str, Any]], failed: dict[int, str], metric: str) -> dict[str, Any] | None:
    """One epoch's report of a fused trial: ``live`` seeds' metrics, ``failed`` seeds' errors; None
    when no seed is live (``fit_seeds`` then raises, and the trial fails as a whole)."""
    if not live:
        return None
    values = [m[metric] for m in live.values() if metric in m]
    top = {k: max(m[k] for m in live.values() if k in m) for k in SHARED_KEYS if any(k in m for m in live.values())}
    seeds = {str(s): live[s] if s in live else {ERROR: failed[s]} for s in sorted({*live, *failed})}
    return {**({metric: statistics.fmean(values)} if values else {}), **top, REPORT_SEEDS: seeds}


def seed_row(row: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """Seed ``seed``'s view of a fused trial's report: the row with the seed's own metrics in place of
    the fused ones, as its unfused trial reports them; None where the seed has failed or is absent."""
    own = (row.get(REPORT_SEEDS) or {}).get(str(seed))
    if not isinstance(own, dict) or ERROR in own:
        return None
    return {**{k: v for k, v in row.items() if k != REPORT_SEEDS}, **own}


def seed_error(row: dict[str, Any], seed: int) -> str:
    """What failed seed ``seed``, per a fused trial's report ("" when it has not failed)."""
    own = (row.get(REPORT_SEEDS) or {}).get(str(seed))
    return str(own.get(ERROR, "")) if isinstance(own, dict) else ""


def seed_ref(base: str, seed: int) -> str:
    """``<trial id or folder>#seed=<s>``: one seed of a fused trial."""
    return f"{base}{SEED_REF}{seed}"


def split_ref(ref: str) -> tuple[str, int | None]:
    """``"dir#seed=3"`` -> ("dir", 3); a plain id or folder -> (it, None)."""
    base, sep, seed = ref.rpartition(SEED_REF)
    return (base, int(seed)) if sep and seed.isdigit() else (ref, None)


# -- trials as the summary and the progress view count them --------------------------------------------


@dataclass
class TrialRecord:
    """One trial as the summary and the progress view count it, shaped like a Tune ``Trial``: a finished
    trial found in the store (``sweeps.reuse``), an unfused Tune trial, or one seed of a fused one."""

    trial_id: str
    path: str  # the trial folder (URI or local path); a fused trial's seed: ``<folder>#seed=<s>``
    config: dict[str, Any]
    last_result: dict[str, Any]
    status: str = "TERMINATED"
    num_failures: int = 0
    reused: bool = False
    error: str = ""  # what failed a fused trial's seed while its other seeds went on


def seed_outcomes(trial: Any, status: str) -> list[tuple[str, dict[str, Any]]]:
    """Each seed's status and own last result in ``trial`` (whose own status is ``status``): ``ERROR`` for
    a fused trial's failed seed. What the progress view counts, without the records' folders."""
    if not is_fused(trial.config):
        return [(status, trial.last_result)]
    return [
        (FAILED if seed_error(trial.last_result, seed) else status, seed_row(trial.last_result, seed) or {})
        for seed in seeds_of(trial.config)
    ]


def seed_records(trial: Any, status: str) -> list[TrialRecord]:
    """``trial`` (a Tune ``Trial`` or a :class:`TrialRecord`) as one record per seed; ``status`` is the
    trial's (Tune calls its hooks before it updates the trial's own). A fused trial's failed seed is
    ``ERROR`` with its error, its other seeds take the trial's status and their own metrics."""
    shared = {"num_failures": trial.num_failures, "reused": getattr(trial, "reused", False)}
    if not is_fused(trial.config):
        return [TrialRecord(trial.trial_id, trial.path, trial.config, trial.last_result, status, **shared)]
    return [
        TrialRecord(
            seed_ref(trial.trial_id, run["seed"]),
            seed_ref(trial.path, run["seed"]),
            run,
            result,
            seed_status,
            error=seed_error(trial.last_result, run["seed"]),
            **shared,
        )
        for run, (seed_status, result) in zip(split(trial.config), seed_outcomes(trial, status))
    ]
