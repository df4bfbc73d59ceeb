"""What a sweep was estimated to cost at launch, against what it took.

Each launch records its estimate in ``<experiment>/estimate.json`` (``sweeps.cost``): per trial (by
trial key) the seconds per epoch and per trial, from a calibration probe on the machine (``measured``)
or the spec's typed-in figure (``guess``), and for the launch its wall-clock at the concurrency it
started with. Trials report what they took: ``epoch_s`` + ``val_s`` per epoch (the same steady epoch
the probe times) and ``wall_s``, cumulative from the start of ``fit``.

A reused trial (``sweeps.reuse``) was estimated by the launch that ran it, in its own folder, so the
estimate of every trial is read from the folder that holds it. A tuning sweep's trials are sampled at
run time and have no keys in advance: they are matched by their (task, backbone, method) group.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.load import CONFIG, Results
from analysis.tables import Table, time_unit

ESTIMATE_FILE = "estimate.json"
GROUP = ("task.name", "backbone.name", "method")


def launches(folder: Path) -> list[dict[str, Any]]:
    """The launches recorded in ``folder/estimate.json``, oldest first ([] when there is none)."""
    path = folder / ESTIMATE_FILE
    return json.loads(path.read_text())["launches"] if path.is_file() else []


def trial_estimates(results: Results) -> pd.DataFrame:
    """One row per trial that some launch estimated: ``trial_id`` and the estimate's ``device``,
    ``est_epoch_s``, ``est_trial_s``, ``source``, plus ``launch`` (folder and index of the launch)."""
    rows = []
    for folder, trials in results.trials.groupby(results.trials["trial_path"].map(lambda p: str(Path(p).parent))):
        by_key, by_group = {}, {}
        for i, launch in enumerate(launches(Path(folder))):  # later launches win
            for t in launch["trials"]:
                entry = {**t, "launch": f"{folder}#{i}"}
                if t.get("trial_key"):
                    by_key[t["trial_key"]] = entry
                by_group[tuple(t[k] for k in GROUP)] = entry
        for _, trial in trials.iterrows():
            entry = by_key.get(trial.get("trial_key")) or by_group.get(tuple(trial.get(CONFIG + k) for k in GROUP))
            if entry is not None:
                rows.append(
                    {
                        "trial_id": trial["trial_id"],
                        "device": entry["device"],
                        "est_epoch_s": entry["epoch_s"],
                        "est_trial_s": entry["trial_s"],
                        "source": entry["source"],
                        "launch": entry["launch"],
                    }
                )
    return pd.DataFrame(rows, columns=["trial_id", "device", "est_epoch_s", "est_trial_s", "source", "launch"])


def compare(results: Results) -> Table | None:
    """Per (task, backbone, method, device): estimated vs actual seconds per epoch and per trial, over
    completed trials; notes with each launch's estimated and actual wall-clock. None without estimates."""
    est = trial_estimates(results)
    if est.empty:
        return None
    trials = results.trials.merge(est, on="trial_id")
    done = trials[trials["status"] == "done"].copy()
    epoch_cost = results.curves.assign(
        _s=results.curves.get("epoch_s", math.nan) + results.curves.get("val_s", math.nan)
    )
    done["actual_epoch_s"] = done["trial_id"].map(epoch_cost.groupby("trial_id")["_s"].median())
    done["actual_trial_s"] = pd.to_numeric(done.get("wall_s", pd.Series(math.nan, index=done.index)), errors="coerce")
    keys = [CONFIG + k for k in GROUP] + ["device", "source"]
    numbers = (
        done.groupby(keys, sort=False, dropna=False)
        .agg(
            trials=("trial_id", "size"),
            est_epoch_s=("est_epoch_s", "mean"),
            actual_epoch_s=("actual_epoch_s", "mean"),
            est_trial_s=("est_trial_s", "mean"),
            actual_trial_s=("actual_trial_s", "mean"),
        )
        .reset_index()
    )
    numbers["ratio"] = numbers["actual_trial_s"] / numbers["est_trial_s"]
    divisor, unit = time_unit(float(numbers[["est_trial_s", "actual_trial_s"]].max().max() or 0.0))
    header = [
        "task",
        "backbone",
        "method",
        "device",
        "trials",
        "s/epoch est.",
        "s/epoch actual",
        f"trial est. ({unit})",
        f"trial actual ({unit})",
        "actual / est.",
        "estimate from",
    ]
    rows = [
        [
            str(r[CONFIG + "task.name"]),
            str(r[CONFIG + "backbone.name"]),
            str(r[CONFIG + "method"]),
            str(r["device"]),
            str(int(r["trials"])),
            _num(r["est_epoch_s"]),
            _num(r["actual_epoch_s"]),
            _num(r["est_trial_s"] / divisor, 1),
            _num(r["actual_trial_s"] / divisor, 1),
            _num(r["ratio"]) + ("×" if _finite(r["ratio"]) else ""),
            r["source"],
        ]
        for _, r in numbers.iterrows()
    ]
    notes = [
        "Estimated at launch (sweeps.cost): measured = a calibration probe on the machine (`--dry-run "
        "--calibrate`), guess = the spec's gpu_s_per_epoch. Actual, over completed trials: s/epoch = median of "
        "the reported epoch_s + val_s (train and validation, as the probe times it); trial = the final wall_s "
        "(set-up, every epoch, test pass and baselines)."
    ]
    notes += [_wall_note(results, launch, est) for launch in est["launch"].drop_duplicates()]
    return Table(header, rows, set(), notes, numbers, labels=4)


def _wall_note(results: Results, launch_id: str, est: pd.DataFrame) -> str:
    """Estimated vs actual wall-clock of one launch: from the first of its trials to start to the last to end."""
    folder, index = launch_id.rsplit("#", 1)
    launch = launches(Path(folder))[int(index)]
    ids = set(est.loc[est["launch"] == launch_id, "trial_id"])
    spans = [_span(Path(p)) for p in results.trials.loc[results.trials["trial_id"].isin(ids), "trial_path"]]
    spans = [s for s in spans if s is not None]
    took = max(end for _, end in spans) - min(start for start, _ in spans) if spans else math.nan
    ratio = f" ({took / launch['wall_s']:.2f}× the estimate)" if _finite(launch["wall_s"]) and launch["wall_s"] else ""
    return (
        f"Launch of {launch['created']} ({len(ids)} trials, {launch['slots']} at a time; {launch['slots_from']}): "
        f"estimated wall-clock {_duration(launch['wall_s'])}, took {_duration(took)}{ratio}."
    )


def _span(trial_dir: Path) -> tuple[float, float] | None:
    """(start, end) of a trial in epoch seconds: its last report's timestamp less its total time."""
    result = trial_dir / "result.json"
    lines = result.read_text().splitlines() if result.is_file() else []
    if not lines:
        return None
    last = json.loads(lines[-1])
    return last["timestamp"] - last["time_total_s"], last["timestamp"]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _num(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "—"


def _duration(seconds: float) -> str:
    if not _finite(seconds):
        return "—"
    divisor, unit = time_unit(seconds)
    return f"{seconds / divisor:.1f} {unit}"
