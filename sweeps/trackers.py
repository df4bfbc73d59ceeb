"""Experiment trackers (``--tracker tensorboard|mlflow|wandb``) through Ray Tune's own logger callbacks.

- **TensorBoard**: Tune writes ``events.out.tfevents.*`` into every trial folder whenever tensorboardX
  is installed. Its hparams come from ``trial.evaluated_params``, which is empty for trials given as
  preset points (every grid arm here), so TensorBoard's HParams tab stayed empty: :class:`HparamsTBXLogger`
  logs the swept keys (and ``seed``) instead. ``--tracker tensorboard`` makes tensorboardX required
  and prints the ``tensorboard --logdir`` command for the results folder.
- **MLflow**: ``MLflowLoggerCallback``, one run per trial (params = the flat config, metrics per
  epoch), in ``$MLFLOW_TRACKING_URI`` when set, else in ``sqlite:///<experiment>/mlflow.db`` (MLflow 3
  refuses the old ``file://`` store unless ``MLFLOW_ALLOW_FILE_STORE=true``; both work here).
- **W&B**: ``WandbLoggerCallback``, one run per trial in project ``$WANDB_PROJECT`` (default
  ``pare-sweeps``), grouped by sweep; ``WANDB_MODE=offline`` writes runs under ``<experiment>/wandb/``
  for a later ``wandb sync``.

Each tracker is an optional extra of the project (``pip install -e '.[mlflow]'``); :func:`check`
names the missing one before Ray starts, so a typo or a missing package costs no cluster time.
"""

from __future__ import annotations

import importlib.util
import numbers
import os
from typing import Any

from ray.tune.logger import TBXLoggerCallback

from pare_core.config import inert_keys
from sweeps import storage

# tracker -> (module it needs, the project's extra that installs it)
_PACKAGES = {
    "tensorboard": ("tensorboardX", "tensorboard"),
    "mlflow": ("mlflow", "mlflow"),
    "wandb": ("wandb", "wandb"),
}
WANDB_PROJECT = "pare-sweeps"


class TrackerError(ValueError):
    """A tracker that cannot work here; the message says what to install or set."""


def check(trackers: list[str], experiment: str) -> None:
    """Raise :class:`TrackerError` for a tracker whose package is missing or that has nowhere to log."""
    for name in trackers:
        module, extra = _PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise TrackerError(f"--tracker {name} needs the {module} package: pip install -e '.[{extra}]'")
    if "mlflow" in trackers and "://" in experiment and not os.environ.get("MLFLOW_TRACKING_URI"):
        raise TrackerError(
            f"--tracker mlflow keeps its runs in a local database beside the results, but {experiment} "
            "is remote: set MLFLOW_TRACKING_URI (your MLflow server, or e.g. sqlite:///mlflow.db)"
        )
    if "wandb" in trackers:
        from ray.air.integrations.wandb import _set_api_key  # private: Ray's own credential check, Ray is pinned

        try:
            _set_api_key()  # returns at once under WANDB_MODE=offline|disabled
        except ValueError as err:
            raise TrackerError(f"--tracker wandb: {err}; or set WANDB_MODE=offline to log locally") from None


def mlflow_uri(experiment: str) -> str:
    """``$MLFLOW_TRACKING_URI``, else a SQLite store in the (local) experiment folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{storage.join(experiment, 'mlflow.db')}"


def callbacks(trackers: list[str], experiment: str, name: str, swept: list[str]) -> list[Any]:
    """The Ray Tune callbacks that log the sweep ``name`` (results in ``experiment``) to ``trackers``.

    The TensorBoard logger is always included when tensorboardX is installed (Tune would add its own,
    without the swept keys as hparams); the others only when asked for."""
    out: list[Any] = []
    if "tensorboard" in trackers or importlib.util.find_spec("tensorboardX") is not None:
        out.append(HparamsTBXLogger(swept))
    if "mlflow" in trackers:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        out.append(
            MLflowLoggerCallback(tracking_uri=mlflow_uri(experiment), experiment_name=name, tags={"sweep": name})
        )
    if "wandb" in trackers:
        from ray.air.integrations.wandb import WandbLoggerCallback

        local = {} if "://" in experiment else {"dir": experiment}  # else: each trial folder (synced by Tune)
        out.append(
            WandbLoggerCallback(
                project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT), group=name, settings={"silent": True}, **local
            )
        )  # no per-run banner and history in the log
    return out


def hints(trackers: list[str], experiment: str) -> list[str]:
    """One line per tracker: where to look while the sweep runs."""
    lines = []
    if "tensorboard" in trackers:
        lines.append(f"TensorBoard: tensorboard --logdir {experiment}")
    if "mlflow" in trackers:
        lines.append(f"MLflow: mlflow ui --backend-store-uri {mlflow_uri(experiment)}")
    if "wandb" in trackers:
        offline = os.environ.get("WANDB_MODE") == "offline"
        lines.append(
            f"W&B: project {os.environ.get('WANDB_PROJECT', WANDB_PROJECT)}"
            + (f", offline: wandb sync {storage.join(experiment, 'wandb')}/offline-run-*" if offline else "")
        )
    return lines


class HparamsTBXLogger(TBXLoggerCallback):
    """Tune's TensorBoard logger, with the sweep's swept keys and ``seed`` as each trial's hparams.

    Keys with no effect on the trial (``pare_core.config.inert_keys``) are left out, as in every other
    view. Overrides ``log_trial_end``, which in Ray 2.60 logs hparams only from ``evaluated_params``;
    it reads the logger's per-trial writer and last result (private, but Ray is pinned)."""

    def __init__(self, swept: list[str]):
        super().__init__()
        self.swept = swept

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        from tensorboardX.summary import hparams  # an optional package: this class exists only where it is installed

        writer, result = self._trial_writer.pop(trial, None), self._trial_result.pop(trial, None)
        if writer is None:
            return
        if result:
            inert = inert_keys(trial.config)
            params = {k: trial.config[k] for k in [*self.swept, "seed"] if k in trial.config and k not in inert}
            metrics = {k: v for k, v in result.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}
            for summary in hparams(hparam_dict=params, metric_dict=metrics):
                writer.file_writer.add_summary(summary)
        writer.close()
