"""Tune one task's hyperparameters: Optuna TPE + ASHA; writes sweeps/configs/tuned/<task>.yaml for --base.

Run from the repo root: `python sweeps/tune_task.py [--smoke-test] [--dry-run] [--set KEY=VALUE] ...`
(spec: sweeps/configs/tune_task.yaml; flags: docs/sweeps.md).
"""

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run by path: import the repo, not this folder's modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from sweeps.cli import main  # noqa: E402  (after the sys.path line above)

if __name__ == "__main__":
    sys.exit(main("tune_task", __doc__))
