"""The record a tuning sweep leaves for later sweeps: its best config as a ``--base`` file.

A records module (docs/sweeps.md, "How sweeps/ is laid out"): it reads a finished launch's results
and writes a file; the entry layer calls it when a spec says ``tuned: true`` (``sweeps/tune_task.py``).
"""

from __future__ import annotations

from typing import Any

import yaml

from pare_core.config import TrialConfig
from sweeps import storage
from sweeps.spec import TUNED_DIR, Sweep


def write_tuned(sweep: Sweep, results: Any, experiment: str) -> str:
    """Save the best trial's searched values (from Tune's ``ResultGrid``) as a ``--base`` file:
    ``configs/tuned/<task>.yaml``.

    Smoke runs write into the experiment folder instead, so a smoke test never replaces a real tuned config.
    """
    best = results.get_best_result(sweep.metric, sweep.mode, scope="last")
    flat = TrialConfig.from_flat({k: best.config[k] for k in ["task.name", *sweep.space]}).to_flat()
    task = flat["task.name"]
    header = (
        f"# Tuned by sweeps/tune_task.py (sweep {sweep.name}, {len(results)} trials, method {best.config['method']},"
        f" backbone {best.config['backbone.name']}): best {sweep.metric}={best.metrics[sweep.metric]:.4f}\n"
        f"# trial {best.path}\n# Use: python sweeps/ablate_gate.py --base sweeps/configs/tuned/{task}.yaml\n"
    )
    out = storage.join(experiment, "tuned", f"{task}.yaml") if sweep.smoke else str(TUNED_DIR / f"{task}.yaml")
    storage.write_text(out, header + yaml.safe_dump({k: flat[k] for k in ["task.name", *sweep.space]}, sort_keys=False))
    return out
