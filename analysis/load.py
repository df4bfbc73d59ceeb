"""A Ray Tune results folder -> tidy pandas frames, read straight from the files Tune wrote.

Nothing here imports Ray or starts it: a folder copied from S3 to a laptop is enough. Per trial we
read ``params.json`` (the flat config), ``result.json`` (one JSON line per report) and the error
files; the newest ``experiment_state-*.json`` says how each trial ended. ``result.json`` is preferred
over ``progress.csv`` because Tune fixes the CSV's columns at the first report, so keys that appear
only in the last row (``test_error``, ``baseline/...``) are missing from the CSV.

Status of a trial (the ``status`` column):
- ``done``: ran its full budget (the final row has ``test_error``, or it reached ``train.epochs``);
- ``error``: Tune gave up on it (an ``error.txt`` and no final row); retries that recovered are
  ``done`` with ``retries > 0``;
- ``stopped``: ended early by the scheduler (ASHA) without error;
- ``running``: not finished (pending, running or paused when the folder was copied).

A finished trial whose test error does not beat the majority baseline it reported is ``degenerate``
(:func:`pare_core.tasks.baselines.degenerate`): it is still ``done``, and counted apart wherever it is averaged.

A fused trial (the seeds of one arm trained as one Tune trial, ``sweeps.fused``) is read as one row
per seed, with the columns, key and curve its unfused trial has; its ``trial_id`` and ``trial_path``
carry ``#seed=<s>``. A seed that failed while the others went on is an ``error`` row with its own
error message.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pare_core.formatting import MISSING
from pare_core.tasks.baselines import degenerate
from sweeps import storage
from sweeps.fused import is_fused, seed_error, seed_ref, seed_row, split, split_ref
from sweeps.identity import ARM_KEY, CODE_KEY, SWEEP_FILE, TRIAL_KEY, arm_cells

CONFIG = "config/"
# Config keys that change how a run executes but not what it computes: not part of an arm.
RUN_ONLY_PREFIXES = ("runtime.",)
RUN_ONLY_KEYS = ("train.eval_batch_size",)
SEED = "seed"
# Bookkeeping Tune adds to every row; not metrics.
TUNE_KEYS = {
    "timestamp",
    "checkpoint_dir_name",
    "should_checkpoint",
    "done",
    "trial_id",
    "date",
    "pid",
    "hostname",
    "node_ip",
    "node_id",
    "config",
    "time_since_restore",
    "iterations_since_restore",
    "experiment_tag",
    "time_this_iter_s",
}
_TUNE_STATUS = {"ERROR": "error", "RUNNING": "running", "PENDING": "running", "PAUSED": "running"}


@dataclass
class Results:
    """One sweep's results: ``trials`` (one row per trial) and ``curves`` (one row per trial and epoch)."""

    path: Path  # the first folder read (the one index.md is named after)
    trials: pd.DataFrame
    curves: pd.DataFrame
    arm_keys: list[str]  # config keys (without ``config/``) that tell arms apart: varying, minus seed and run-only
    metric: str  # the metric the sweep optimised (``val_error`` unless sweep.json says otherwise)
    mode: str  # "min" | "max"
    search: str  # "grid" (ablation: arms x seeds) | "search" (a searcher sampled configs: tuning)
    paths: list[Path] = field(default_factory=list)  # every folder read
    space: dict[str, dict[str, list]] = field(default_factory=dict)  # a tuning sweep's declared search space


def load(*paths: str | Path) -> Results:
    """Read one or more Ray Tune experiment folders (``results/<name>/``, or ``s3://...`` as the sweep
    wrote it: fetched first by :func:`sweeps.storage.download`) into one :class:`Results`.

    Several folders are read as one sweep (e.g. last week's 5 seeds and this week's 5 more); each
    folder's ``sweep.json`` may list trials it reused from other folders (``sweeps.reuse``), and
    those are read too. A trial folder reached twice counts once. The folders must agree on the
    metric and its direction.
    """
    if not paths:
        raise ValueError("no results folder given")
    parts = [_load_one(storage.download(str(p)) if "://" in str(p) else Path(p)) for p in paths]
    if len({(p.metric, p.mode) for p in parts}) > 1:
        raise ValueError(
            "the folders optimise different metrics: " + ", ".join(f"{p.path} ({p.metric}, {p.mode})" for p in parts)
        )
    if len({p.search for p in parts}) > 1:
        raise ValueError(
            "a tuning sweep and an ablation cannot be read as one sweep: "
            + ", ".join(f"{p.path} ({p.search})" for p in parts)
        )
    trials = pd.concat([p.trials for p in parts], ignore_index=True)
    trials["reused"] = trials.groupby("trial_path")["reused"].transform("any")
    trials = trials.drop_duplicates("trial_path").drop(columns="arm")
    curves = pd.concat([p.curves for p in parts if len(p.curves)] or [parts[0].curves], ignore_index=True)
    curves = curves.drop_duplicates(["trial_path", "epoch"]) if "trial_path" in curves else curves
    declared = next((p.swept for p in parts if p.swept), None)
    trials, arm_keys = label_arms(trials, declared)
    order = {tid: i for i, tid in enumerate(trials["trial_id"])}
    if len(curves):
        curves = curves.sort_values(
            ["trial_id", "epoch"], key=lambda s: s.map(order) if s.name == "trial_id" else s
        ).reset_index(drop=True)
    first = parts[0]
    return Results(
        first.path,
        trials.reset_index(drop=True),
        curves,
        arm_keys,
        first.metric,
        first.mode,
        first.search,
        [p.path for p in parts],
        {k: v for p in parts for k, v in p.space.items()},
    )


@dataclass
class _Folder:
    path: Path
    trials: pd.DataFrame
    curves: pd.DataFrame
    metric: str
    mode: str
    search: str
    swept: list[str] | None
    space: dict[str, dict[str, list]]


def _load_one(path: Path) -> _Folder:
    """One experiment folder's trials (its own and those its sweep.json says it reused).

    Trials are sorted by their arm's config values, then seed, then trial id, so the order does
    not depend on the order Tune (or a file system) lists them in.
    """
    sweep = _read_json(path / SWEEP_FILE) or {}
    metric, mode = sweep.get("metric", "val_error"), sweep.get("mode", "min")
    states = _trial_states(path)
    dirs = {p.parent.name for p in path.glob("*/params.json")}
    names = sorted(dirs | {s["relative_logdir"] for s in states.values() if s.get("relative_logdir")})
    for trial_id, state in states.items():
        if not state.get("relative_logdir"):
            names.append(trial_id)  # never started: no folder yet
    by_dir = {s.get("relative_logdir") or tid: s for tid, s in states.items()}
    reused = {str(Path(p)) for p in sweep.get("reused", []) if "://" not in p}
    targets: list[tuple[Path, dict[str, Any] | None, int | None]] = [
        (path / name, by_dir.get(name), None) for name in names
    ]
    for ref in sorted(reused):  # a trial folder, or one seed of a fused one (``<folder>#seed=<s>``)
        folder, seed = split_ref(ref)
        if Path(folder).parent != path and Path(folder).is_dir():
            targets.append((Path(folder), None, seed))
    if not targets:  # a launch that reused every trial from other folders has none of its own
        raise FileNotFoundError(
            f"{path}: no trials found (expected a Ray Tune experiment folder with one "
            "subfolder per trial holding params.json)"
        )
    rows, curves = [], []
    for trial_dir, state, only_seed in targets:
        for row, curve in _read_trial(trial_dir, state, metric, mode, only_seed):
            row["reused"] = row["trial_path"] in reused
            rows.append(row)
            curves.append(curve.assign(trial_path=row["trial_path"]))
    trials = pd.DataFrame(rows)
    trials["status"] = [_status(r, trials) for r in rows]
    trials, _ = label_arms(trials, sweep.get("swept"))
    curve_frame = (
        pd.concat([c for c in curves if len(c)], ignore_index=True)
        if any(len(c) for c in curves)
        else pd.DataFrame(columns=["trial_id", "epoch", "trial_path"])
    )
    return _Folder(
        path, trials, curve_frame, metric, mode, _search_kind(path, sweep), sweep.get("swept"), sweep.get("space") or {}
    )


def label_arms(trials: pd.DataFrame, swept: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Find the arm keys of a per-trial frame (``config/...`` columns), sort it stably and add an
    ``arm`` label column; returns the new frame and the arm keys. ``swept`` orders the keys.

    A trial's label is its arm's name as the spec named it (``arm_name``, from params.json); trials
    without one (results from before arms were named, hand-made frames) get their swept values, leaving
    out keys that have no effect on the arm (``threshold`` beside ``selection=topk``). A label that
    would stand for two different configs (one name reused with other values, or inert keys hidden)
    gets the values spelled out."""
    arm_keys = _arm_keys(trials, swept)
    trials = _sorted(trials, arm_keys).reset_index(drop=True)
    rows = [row for _, row in trials.iterrows()]
    labels = [row.get("arm_name") if isinstance(row.get("arm_name"), str) else arm_label(row, arm_keys) for row in rows]
    arms_per_label: dict[str, set[str]] = {}
    for label, row in zip(labels, rows):
        arms_per_label.setdefault(label, set()).add(repr([row[c] for c in arm_columns(arm_keys)]))
    labels = [
        label if len(arms_per_label[label]) == 1 else arm_label(row, arm_keys, hide_inert=False)
        for label, row in zip(labels, rows)
    ]
    trials = trials.drop(columns="arm", errors="ignore")
    trials.insert(1 if "trial_id" in trials else 0, "arm", labels)
    return trials, arm_keys


def arm_label(row: pd.Series | dict[str, Any], arm_keys: list[str], hide_inert: bool = True) -> str:
    """``selection=threshold, threshold=0.3``: the arm's swept values, keys shortened to their last
    part when that stays unambiguous; with ``hide_inert``, without the keys that have no effect."""
    if not arm_keys:
        return "all trials"
    short = [k.rsplit(".", 1)[-1] for k in arm_keys]
    names = short if len(set(short)) == len(short) else arm_keys
    cells = arm_cells(trial_config(row), arm_keys) if hide_inert else [row[CONFIG + k] for k in arm_keys]
    shown = [(n, k) for n, k, c in zip(names, arm_keys, cells) if c is not MISSING] or list(zip(names, arm_keys))
    return ", ".join(f"{n}={_fmt(row[CONFIG + k])}" for n, k in shown)


def trial_config(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """The trial's flat config (its ``config/`` values, without the prefix)."""
    return {k[len(CONFIG) :]: v for k, v in row.items() if isinstance(k, str) and k.startswith(CONFIG)}


def arm_columns(arm_keys: list[str]) -> list[str]:
    """The ``config/`` columns that identify an arm."""
    return [CONFIG + k for k in arm_keys]


# -- one trial ------------------------------------------------------------------------------------


def _read_trial(
    trial_dir: Path, state: dict[str, Any] | None, metric: str, mode: str, only_seed: int | None = None
) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """The trial's row and curve; a fused trial's, one per seed (``only_seed``: that seed's alone)."""
    state = state or {}
    config = dict(_read_json(trial_dir / "params.json") or state.get("config") or {})
    rows = _read_rows(trial_dir)
    trial_id = str(state.get("trial_id") or (rows[-1].get("trial_id") if rows else None) or trial_dir.name)
    if not is_fused(config):
        return [_run_row(trial_dir, state, config, rows, (trial_id, str(trial_dir)), "", metric, mode)]
    return [
        _run_row(
            trial_dir,
            state,
            run,
            [own for own in (seed_row(r, run["seed"]) for r in rows) if own is not None],
            (seed_ref(trial_id, run["seed"]), seed_ref(str(trial_dir), run["seed"])),
            seed_error(rows[-1], run["seed"]) if rows else "",  # a failed seed's error is in every later report
            metric,
            mode,
        )
        for run in split(config)
        if only_seed in (None, run["seed"])
    ]


def _run_row(
    trial_dir: Path,
    state: dict[str, Any],
    config: dict[str, Any],
    rows: list[dict[str, Any]],
    ids: tuple[str, str],
    seed_failure: str,
    metric: str,
    mode: str,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One run's row and curve from its config and reports; ``ids``: its trial id and path;
    ``seed_failure``: what failed it inside a fused trial whose other seeds went on."""
    config = dict(config)
    identity = {
        TRIAL_KEY: config.pop(TRIAL_KEY, None),
        CODE_KEY: config.pop(CODE_KEY, None),
        "arm_name": config.pop(ARM_KEY, None),
    }
    trial_id, trial_path = ids
    curve = _curve(rows, trial_id)
    last = curve.iloc[-1].to_dict() if len(curve) else {}
    row: dict[str, Any] = {
        "trial_id": trial_id,
        "trial_number": state.get("number"),
        "trial_dir": trial_dir.name,
        "trial_path": trial_path,
        "experiment": trial_dir.parent.name,
        **identity,
        "tune_status": "ERROR" if seed_failure else state.get("status"),
        "retries": int(state.get("num_failures", _count_failures(trial_dir))),
        "error_file": (trial_dir / "error.txt").exists(),
        "epochs": int(last.get("epoch", 0) or 0),
        "planned_epochs": config.get("train.epochs"),
        "time_s": float(last.get("time_total_s", 0.0) or 0.0),
    }
    row.update({CONFIG + k: v for k, v in config.items()})
    row.update({k: v for k, v in last.items() if k not in ("trial_id", "epoch", "checkpoint")})
    values = curve[metric].astype(float).dropna() if metric in curve else pd.Series(dtype=float)
    if len(values):
        best = values.idxmin() if mode == "min" else values.idxmax()
        row["best_" + metric], row["best_epoch"] = values[best], int(curve.loc[best, "epoch"])
    row["degenerate"] = degenerate(last)
    row["error_message"] = seed_failure or (_error_message(trial_dir) if row["error_file"] else "")
    return row, curve


def _read_rows(trial_dir: Path) -> list[dict[str, Any]]:
    result = trial_dir / "result.json"
    if result.exists():
        return [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    progress = trial_dir / "progress.csv"
    if progress.exists() and progress.stat().st_size:
        return pd.read_csv(progress).to_dict("records")
    return []


def _curve(rows: list[dict[str, Any]], trial_id: str) -> pd.DataFrame:
    """Numeric metrics per epoch, and ``checkpoint`` (the folder saved with that epoch's report, if
    any). A retried trial re-reports the epochs after its last checkpoint: the later report wins."""
    records = [
        {
            **{k: v for k, v in r.items() if k not in TUNE_KEYS and _is_number(v)},
            "checkpoint": r.get("checkpoint_dir_name") if isinstance(r.get("checkpoint_dir_name"), str) else None,
        }
        for r in rows
    ]
    if not records:
        return pd.DataFrame(columns=["trial_id", "epoch"])
    frame = pd.DataFrame(records)
    if "epoch" not in frame:
        frame["epoch"] = frame.get("training_iteration", pd.Series(range(1, len(frame) + 1)))
    frame = frame.drop_duplicates("epoch", keep="last").sort_values("epoch")
    frame.insert(0, "trial_id", trial_id)
    return frame.reset_index(drop=True)


def _status(row: dict[str, Any], trials: pd.DataFrame) -> str:
    """See the module docstring. ``tune_status`` comes from the experiment state when it exists."""
    planned = row.get("planned_epochs")
    if planned is None or (isinstance(planned, float) and math.isnan(planned)):
        planned = int(trials["epochs"].max())
    test_error = row.get("test_error")
    finished = (_is_number(test_error) and math.isfinite(test_error)) or row["epochs"] >= planned > 0
    tune_status = row.get("tune_status")
    if tune_status in _TUNE_STATUS:
        return _TUNE_STATUS[tune_status]
    if finished:
        return "done"
    if tune_status == "TERMINATED":
        return "stopped"
    return "error" if row["error_file"] else "running"  # no experiment state: the folder is all we know


def _count_failures(trial_dir: Path) -> int:
    error = trial_dir / "error.txt"
    return error.read_text(errors="replace").count("Failure # ") if error.exists() else 0


def _error_message(trial_dir: Path) -> str:
    """The last line of the last traceback in error.txt (the exception itself)."""
    lines = [ln.strip() for ln in (trial_dir / "error.txt").read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


# -- the experiment -------------------------------------------------------------------------------


def _trial_states(path: Path) -> dict[str, dict[str, Any]]:
    """trial_id -> {status, relative_logdir, config, num_failures, number} from the newest experiment state."""
    files = sorted(path.glob("experiment_state-*.json"))
    data = _read_json(files[-1]) if files else None
    states = {}
    for trial_json, metadata_json in (data or {}).get("trial_data", []):
        trial, metadata = json.loads(trial_json), json.loads(metadata_json)
        states[trial["trial_id"]] = {
            "trial_id": trial["trial_id"],
            "status": trial.get("status"),
            "relative_logdir": trial.get("relative_logdir"),
            "config": trial.get("config"),
            "num_failures": metadata.get("num_failures", 0),
            "number": _tag_number(trial.get("experiment_tag")),
        }
    return states


def _tag_number(tag: str | None) -> int | None:
    """Tune's experiment tag starts with the trial's creation number (``3_lr=0.01,...``)."""
    head = (tag or "").split("_", 1)[0]
    return int(head) if head.isdigit() else None


def _arm_keys(trials: pd.DataFrame, swept: list[str] | None) -> list[str]:
    """Config keys whose values differ between trials, minus seed and run-only keys; in the sweep's
    declared order (sweep.json ``swept``) where known, else alphabetical."""
    keys = []
    for column in trials.columns:
        if not column.startswith(CONFIG):
            continue
        key = column[len(CONFIG) :]
        if key == SEED or key in RUN_ONLY_KEYS or key.startswith(RUN_ONLY_PREFIXES):
            continue
        if trials[column].map(repr).nunique() > 1:
            keys.append(key)
    declared = [k for k in (swept or []) if k in keys]
    return declared + sorted(k for k in keys if k not in declared)


def _sorted(trials: pd.DataFrame, arm_keys: list[str]) -> pd.DataFrame:
    columns = [c for c in arm_columns(arm_keys) + [CONFIG + SEED] if c in trials]
    keys = [
        tuple(_sort_key(v) for v in values) + (tid,)
        for values, tid in zip(trials[columns].itertuples(index=False), trials.get("trial_id", trials.index))
    ]
    return trials.iloc[sorted(range(len(trials)), key=keys.__getitem__)]


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before strings before missing values, each group in natural order."""
    if _is_number(value) and not math.isnan(value):
        return (0, float(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, "")
    return (1, str(value))


def _search_kind(path: Path, sweep: dict[str, Any]) -> str:
    """``search`` when a searcher sampled the configs (sweep.json says so, or Tune saved a searcher
    state other than the grid generator's), else ``grid``."""
    if sweep.get("search"):
        return "grid" if sweep["search"].get("type") == "grid" else "search"
    return "search" if any(path.glob("searcher-state-*")) else "grid"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _is_number(value: Any) -> bool:
    """Python and numpy numbers (progress.csv gives numpy ints), not booleans (Tune's ``done`` flag)."""
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
