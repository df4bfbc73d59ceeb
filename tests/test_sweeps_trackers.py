"""A real local Ray sweep with every tracker, read back with each tracker's own format, offline.

One 2-trial sweep (two learning rates, 3 short epochs), calibrated first, runs with ``--tracker mlflow
--tracker wandb --tracker tensorboard``: MLflow into a ``file://`` store read back with MlflowClient,
W&B in offline mode (its ``.wandb`` run files decoded), TensorBoard event files with the swept keys as
hparams. The same run shows what the terminal gets when stdout is not a terminal (plain progress
lines, none of Tune's or the workers' noise) and what analysis makes of the cost estimate. An
Optuna search like ``tune_task.py``'s (on the same tiny budget) is checked in its SQLite study,
across an interrupted launch and its ``--resume``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from sweep_results import SERIAL, read_trials, wait_for, write_spec

from sweeps import trackers
from sweeps.cli import main, parse_args

ROOT = Path(__file__).resolve().parents[1]
NAME = "trackers"
NOISE = (
    "Checkpoint successfully created",
    "driver_artifacts",
    "View detailed results",
    "Configuration for experiment",
    "Started a local Ray instance",
    "Wrote the latest version",
    "Tracking run with wandb",
    "performance bottleneck",
    "Experiment state snapshotting",
)


def sweeps_cli(*args: str, env: dict[str, str], timeout: int = 400) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "sweeps", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    root = tmp_path_factory.mktemp("trackers")
    spec = str(
        write_spec(
            root / f"{NAME}.yaml",
            name=NAME,
            arms=[{"train.lr": 0.001}, {"train.lr": 0.003}],
            seeds=[0],
            max_failures=0,
            **SERIAL,
        )
    )
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "MLFLOW_TRACKING_URI": f"file://{root}/mlruns",
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "PARE_PROGRESS_INTERVAL_S": "1",
    }
    assert main(spec, argv=["--dry-run", "--calibrate"]) == 0  # so the launch estimate is a measured one
    proc = sweeps_cli(
        spec,
        "--storage-path",
        str(root / "results"),
        "--tracker",
        "mlflow",
        "--tracker",
        "wandb",
        "--tracker",
        "tensorboard",
        env=env,
    )
    return {
        "root": root,
        "experiment": root / "results" / NAME,
        "out": proc.stdout + proc.stderr,
        "trials": read_trials(root / "results" / NAME),
    }


def records(path: Path) -> list:
    """The protobuf records of a W&B ``.wandb`` file (LevelDB log format: 32 KiB blocks of chunks)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, chunk, out = path.read_bytes(), 7, b"", []  # 7: the ":W&B" header, magic and version
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


def tb_hparams(trial_dir: Path) -> dict:
    """The hparams TensorBoard shows for a trial, read from its event file."""
    from tensorboardX.proto import event_pb2, plugin_hparams_pb2

    (events,) = trial_dir.glob("events.out.tfevents.*")
    data, pos = events.read_bytes(), 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[pos + 12 : pos + 12 + length])
        pos += 16 + length
        for value in event.summary.value:
            if value.tag == "_hparams_/session_start_info":
                plugin = plugin_hparams_pb2.HParamsPluginData()
                plugin.ParseFromString(value.metadata.plugin_data.content)
                return {k: v.string_value or v.number_value for k, v in plugin.session_start_info.hparams.items()}
    return {}


@pytest.mark.slow
def test_mlflow_file_store_has_one_run_per_trial_with_config_and_curves(tracked, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=f"file://{tracked['root']}/mlruns")
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    assert len(runs) == len(tracked["trials"]) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    for trial in tracked["trials"]:
        run = next(r for r in runs if trial["rows"][0]["trial_id"] in r.info.run_name)
        params = json.loads((trial["dir"] / "params.json").read_text())  # the flat config and the trial's identity
        assert run.data.params == {k: str(v) for k, v in params.items()}
        history = client.get_metric_history(run.info.run_id, "val_error")
        assert [(m.step, m.value) for m in history] == [
            (r["training_iteration"], r["val_error"]) for r in trial["rows"]
        ]


@pytest.mark.slow
def test_wandb_offline_runs_hold_config_and_per_epoch_history(tracked):
    for trial in tracked["trials"]:
        trial_id = trial["rows"][0]["trial_id"]
        (run_file,) = (tracked["experiment"] / "wandb").glob(f"offline-run-*-{trial_id}/run-{trial_id}.wandb")
        recs = records(run_file)
        run = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
        assert (run.run_id, run.run_group, run.project) == (trial_id, NAME, trackers.WANDB_PROJECT)
        config = {item.key: json.loads(item.value_json) for item in run.config.update}
        assert config["train.lr"] == trial["config"]["train.lr"] and config["seed"] == 0
        history = [
            {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
            for r in recs
            if r.WhichOneof("record_type") == "history"
        ]
        assert [(h["epoch"], h["val_error"]) for h in history] == [(r["epoch"], r["val_error"]) for r in trial["rows"]]


@pytest.mark.slow
def test_tensorboard_hparams_are_the_swept_keys(tracked):
    for trial in tracked["trials"]:
        assert tb_hparams(trial["dir"]) == {"train.lr": trial["config"]["train.lr"], "seed": 0}


@pytest.mark.slow
def test_plain_output_shows_progress_and_no_noise(tracked):
    out = tracked["out"]
    assert f"TensorBoard: tensorboard --logdir {tracked['experiment']}" in out and "MLflow: mlflow ui" in out
    assert re.search(
        rf"^sweep {NAME}: 0/2 done, 0 failed, \d running, \d pending, elapsed \d+s, ETA measuring", out, re.M
    )
    assert any(
        f"sweep {NAME}: " in line
        and " ETA " in line
        and "running: " in line
        and "epoch " in line
        and "ETA measuring" not in line
        for line in out.splitlines()
    )  # a measured ETA while trials ran
    assert f"sweep {NAME}: 2/2 done, 0 failed in " in out
    assert [noise for noise in NOISE if noise in out] == []


@pytest.mark.slow
def test_the_launch_estimate_is_measured_and_compared_with_what_it_took(tracked, tmp_path):
    from analysis.report import build as build_figures

    (launch,) = json.loads((tracked["experiment"] / "estimate.json").read_text())["launches"]
    assert [g["source"] for g in launch["groups"]] == ["measured"] and launch["slots"] == 1  # SERIAL: one at a time
    keys = {t["key"] for t in tracked["trials"]}
    assert {t["trial_key"] for t in launch["trials"]} == keys
    report = build_figures(tracked["experiment"], tmp_path)
    assert "cost estimate vs actual" not in dict(report.skipped)
    table = (tmp_path / "cost_estimate.csv").read_text().splitlines()
    assert len(table) == 2  # header + the one (task, backbone, method, device) group
    numbers = dict(zip(table[0].split(","), table[1].split(",")))
    steady = sorted(r["epoch_s"] + r["val_s"] for t in tracked["trials"] for r in t["rows"])
    assert float(numbers["est_epoch_s"]) == pytest.approx(launch["trials"][0]["epoch_s"])
    assert min(steady) <= float(numbers["actual_epoch_s"]) <= max(steady)
    finals = [t["rows"][-1]["wall_s"] for t in tracked["trials"]]
    assert float(numbers["actual_trial_s"]) == pytest.approx(sum(finals) / 2)
    assert "estimated wall-clock" in (tmp_path / "cost_estimate.md").read_text()


def test_a_missing_tracker_package_is_named_before_ray_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what Python sees when the package is not installed
    spec = str(write_spec(tmp_path / "spec.yaml", arms=[{"train.lr": 0.001}, {"train.lr": 0.003}]))
    assert main(spec, argv=["--storage-path", str(tmp_path / "results"), "--tracker", "mlflow"]) == 2
    assert "--tracker mlflow needs the mlflow package: pip install -e '.[mlflow]'" in capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "results").exists()


def test_trackers_are_fixed_at_launch():
    assert parse_args(
        "x", "", ["--tracker", "mlflow", "--tracker", "wandb", "--tracker", "mlflow"]
    ).launch.trackers == [
        "mlflow",
        "wandb",
    ]
    with pytest.raises(SystemExit):  # Tune restores the callbacks it saved at launch
        parse_args("x", "", ["--resume", "--tracker", "mlflow"])
    with pytest.raises(SystemExit):
        parse_args("x", "", ["--tracker", "neptune"])


def test_mlflow_beside_remote_results_needs_a_tracking_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(trackers.TrackerError, match="set MLFLOW_TRACKING_URI"):
        trackers.check(["mlflow"], "s3://bucket/sweeps/x")
    assert trackers.mlflow_uri("/r/x") == "sqlite:////r/x/mlflow.db"  # local results: a SQLite store beside them


@pytest.mark.slow
def test_optuna_study_lives_in_sqlite_and_resume_continues_it(tmp_path):
    import optuna

    # tune_task.py's search (Optuna TPE, 2 at a time, ASHA) on the tiny fine-tuning budget
    spec = write_spec(
        tmp_path / "tune.yaml",
        name="tune",
        search={"type": "optuna", "num_samples": 4, "max_concurrent": 2, "seed": 0},
        space={"train.lr": {"loguniform": [3.0e-4, 1.0e-2]}, "train.warmup_frac": {"uniform": [0.0, 0.3]}},
        scheduler={"type": "asha", "grace_period": 2, "reduction_factor": 2},
    )
    experiment = tmp_path / "results" / "tune"
    flags = ["--storage-path", str(tmp_path / "results")]
    first = subprocess.Popen(
        [sys.executable, "-m", "sweeps", str(spec), *flags],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def reporting() -> int:  # trials the study has sampled and Tune has heard from (ASHA may stop them early)
        return sum(bool(t["rows"]) for t in read_trials(experiment))

    try:
        wait_for(lambda: first.poll() is not None or reporting() >= 2, 300, "two trials reporting")
        first.send_signal(signal.SIGINT)  # Tune stops gracefully and saves its state (and Optuna's)
        first.wait(180)
    finally:
        first.kill()
    storage = f"sqlite:///{experiment / 'optuna.db'}"
    before = {t.number: t for t in optuna.load_study(study_name="tune", storage=storage).trials}
    assert 2 <= len(before) <= 4

    # Resumed in this process: the launch that matters was stopped above (a subprocess each costs ~8 CPU-s).
    assert main(str(spec), argv=[*flags, "--resume"]) == 0
    after = optuna.load_study(study_name="tune", storage=storage).trials
    assert [t.number for t in after] == [0, 1, 2, 3]  # no trial sampled twice, none lost
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in after)
    for number, trial in before.items():  # the resumed search kept what it had proposed and learned
        assert after[number].params == trial.params
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert after[number].value == trial.value
    lasts = sorted(t["rows"][-1]["val_error"] for t in read_trials(experiment))
    assert lasts == sorted(t.value for t in after)  # the study's values are the trials' last reports
