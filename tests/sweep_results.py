"""Reading a sweep's results folder in tests: per trial its config and every reported row, as Tune wrote them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from sweeps.identity import TRIAL_KEY, config_only

# A small real sweep for scheduling and fault tests: plain fine-tuning (no source set to build),
# 3 short epochs, a checkpoint every epoch so that a retry resumes where the crash happened.
TINY = {
    "base": {
        "method": "finetune",
        "task.name": "digits",
        "train.epochs": 3,
        "train.steps_per_epoch": 3,
        "task.n_train": 120,
        "task.max_test": 200,
    },
    "metric": "val_error",
    "mode": "min",
    "checkpoint_every": 1,
    "max_failures": 2,
}
# For a test that does not look at trials running side by side: one trial at a time, so the launch
# starts one trial process (Tune reuses it) instead of one per CPU; each costs ~6 CPU-s of imports.
SERIAL = {"search": {"max_concurrent": 1}}


def write_spec(path: Path, **fields: Any) -> Path:
    """A spec file = TINY with ``fields`` replacing top-level entries."""
    path.write_text(yaml.safe_dump({**TINY, **fields}, sort_keys=False))
    return path


def read_trials(experiment: Path) -> list[dict[str, Any]]:
    """``[{"dir", "config", "key", "rows"}]`` per trial folder: ``config`` the flat TrialConfig, ``key`` the
    trial's key (sweeps.identity), ``rows`` the result.json lines in order."""
    out = []
    for params in sorted(experiment.glob("*/params.json")):
        result = params.parent / "result.json"
        text = result.read_text() if result.exists() else ""
        params_json = json.loads(params.read_text())
        out.append(
            {
                "dir": params.parent,
                "config": config_only(params_json),
                "key": params_json.get(TRIAL_KEY),
                "rows": [json.loads(line) for line in text.splitlines() if line.strip()],
            }
        )
    return out


def running_with_checkpoint(experiment: Path, by_epoch: int = 3) -> dict[str, Any] | None:
    """A trial (as :func:`read_trials` gives it) that has saved a checkpoint and reported no epoch past
    ``by_epoch``: a victim whose node can be taken away while it still has epochs to run."""
    return next(
        (
            t
            for t in read_trials(experiment)
            if t["rows"] and t["rows"][-1]["epoch"] <= by_epoch and list(t["dir"].glob("checkpoint_*"))
        ),
        None,
    )


def summary_rows(text: str) -> list[dict[str, str]]:
    """The arm rows of a summary.md (its first Markdown table) as {column: cell}, cells stripped."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header, rows = lines[0], lines[2:]
    split = lambda line: [cell.strip() for cell in line.strip().strip("|").split("|")]  # noqa: E731
    table_end = next((i for i, line in enumerate(rows) if split(line)[0] == "trial"), len(rows))  # failed-trials table
    return [dict(zip(split(header), split(line))) for line in rows[:table_end]]


def interval(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """When the trial ran (start, end) in seconds; ``timestamp`` is whole seconds, so +-1 s."""
    last = rows[-1]
    return last["timestamp"] - last["time_total_s"], last["timestamp"]


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
