"""Trial identity, reuse of finished trials, extension of a sweep, and provenance (real Ray, real files)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sweep_results import SERIAL, read_trials, write_spec

from analysis import provenance, tables
from analysis.load import load
from pare_core.config import TrialConfig
from sweeps.cli import main
from sweeps.identity import CODE_KEY, TRIAL_KEY, code_version, trial_key
from sweeps.reuse import finished_trials
from sweeps.storage import LaunchLock, LaunchLocked


def flat(**keys) -> dict:
    return TrialConfig.from_flat({k.replace("__", "."): v for k, v in keys.items()}).to_flat()


def test_key_ignores_spelling_and_inert_keys_but_not_what_matters():
    topk = flat(gate__selection="topk")
    assert trial_key(topk, "v1") == trial_key({**topk, "gate.threshold": 0.9}, "v1")  # no effect under topk
    assert trial_key(topk, "v1") == trial_key({**topk, "runtime.threads": 7}, "v1")  # execution only
    assert trial_key(topk, "v1") == trial_key({**topk, "mix.weight": 0.1}, "v1")  # AUTO resolves to 0.1 on digits
    threshold = flat(gate__selection="threshold")
    assert trial_key(threshold, "v1") != trial_key({**threshold, "gate.threshold": 0.9}, "v1")
    assert trial_key(topk, "v1") != trial_key({**topk, "train.lr": 3e-3}, "v1")
    assert trial_key(topk, "v1") != trial_key(topk, "v2")  # another code version: never the same trial
    assert trial_key(topk, "v1") != trial_key({**topk, "task.name": "dna"}, "v1")


def test_code_version_sees_commits_and_uncommitted_changes(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "pare_core").mkdir()
    (tmp_path / "pare_core" / "train.py").write_text("x = 1\n")
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c1", "--allow-empty")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c2")
    clean = code_version(tmp_path)
    assert not clean["dirty"] and clean["version"] == clean["commit"][:12]
    (tmp_path / "pare_core" / "train.py").write_text("x = 2\n")
    code_version.cache_clear()
    edited = code_version(tmp_path)
    assert edited["dirty"] and edited["version"].startswith(clean["version"] + "+")
    (tmp_path / "pare_core" / "new.py").write_text("y = 1\n")  # an untracked new module counts too
    code_version.cache_clear()
    assert code_version(tmp_path)["diff_hash"] != edited["diff_hash"]
    code_version.cache_clear()


def _trial(root: Path, name: str, key: str | None, rows: list[dict] | str) -> Path:
    trial = root / "exp" / name
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"seed": 0, **({TRIAL_KEY: key} if key else {})}))
    text = rows if isinstance(rows, str) else "\n".join(json.dumps(r) for r in rows) + "\n"
    (trial / "result.json").write_text(text)
    return trial


def test_only_finished_trials_with_a_key_are_found_and_bad_folders_are_skipped(tmp_path):
    done = _trial(tmp_path, "a", "k-done", [{"epoch": 1}, {"epoch": 2, "test_error": 0.1}])
    _trial(tmp_path, "b", "k-running", [{"epoch": 1}])  # unfinished (running, stopped or crashed)
    _trial(tmp_path, "c", None, [{"epoch": 2, "test_error": 0.1}])  # from before keys were recorded
    _trial(tmp_path, "d", "k-torn", '{"epoch": 1}\n{"epoch": 2, "test_er')  # a torn write
    (tmp_path / "exp" / "e").mkdir()
    (tmp_path / "exp" / "e" / "params.json").write_text("{not json")
    warnings = []
    found = finished_trials(str(tmp_path), warn=warnings.append)
    assert set(found) == {"k-done"} and found["k-done"].path == str(done)
    assert len(warnings) == 1 and "skipped 2 unreadable" in warnings[0]
    assert finished_trials(str(tmp_path / "missing")) == {}


def test_one_launch_at_a_time_per_folder(tmp_path):
    with LaunchLock(str(tmp_path / "exp")):
        with pytest.raises(LaunchLocked, match="another launch holds"):
            LaunchLock(str(tmp_path / "exp")).__enter__()
    (tmp_path / "exp" / ".launch.lock").write_text(f"{__import__('socket').gethostname()} 999999999")  # dead owner
    with LaunchLock(str(tmp_path / "exp")):
        pass
    assert not (tmp_path / "exp" / ".launch.lock").exists()


def _launch(capsys, spec: Path, storage: Path, *flags: str) -> str:
    """What a launch printed; ``main`` in this process, as a notebook calls it (sweeps.cli.launch_command
    records the equivalent shell command)."""
    assert main(str(spec), argv=["--storage-path", str(storage), *flags]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_extending_a_sweep_runs_only_new_trials_and_reuses_what_is_unchanged(tmp_path, capsys):
    spec = write_spec(
        tmp_path / "gate.yaml",
        name="reuse",
        base={
            "method": "pare",
            "task.name": "digits",
            "train.epochs": 1,
            "train.steps_per_epoch": 2,
            "task.n_train": 120,
            "task.max_test": 200,
            "source.size": 64,
        },
        arms=[{"gate.selection": "random"}, {"gate.selection": "threshold"}],
        seeds=[0],
        **SERIAL,
    )
    storage = tmp_path / "store"
    first = _launch(capsys, spec, storage)
    assert "(0 reused, 2 to run)" in first
    experiment = storage / "reuse"
    before = {t["dir"].name for t in read_trials(experiment)}
    # One more seed, and a new threshold: random ignores it (reused), the threshold arm re-runs.
    second = _launch(capsys, spec, storage, "--seeds", "0-1", "--set", "gate.threshold=0.7")
    assert "4 trials (1 reused, 3 to run)" in second
    trials = read_trials(experiment)
    launched = [t for t in trials if t["dir"].name not in before]
    assert len(launched) == 3 and len(trials) == 5  # the folder grows: one Tune run more, three trials
    assert len({row["pid"] for t in launched for row in t["rows"]}) == 1  # max_concurrent 1: one process served all
    assert {(t["config"]["gate.selection"], t["config"]["seed"]) for t in launched} == {
        ("threshold", 0),
        ("random", 1),
        ("threshold", 1),
    }
    summary = (experiment / "summary.md").read_text()
    assert "4 trials: 4 done, 0 failed, 0 pending or running; 1 of the done reused" in summary
    sweep = json.loads((experiment / "sweep.json").read_text())
    launched_code = {t["dir"].name: json.loads((t["dir"] / "params.json").read_text())[CODE_KEY] for t in trials}
    prov = sweep["provenance"]
    assert (
        len(sweep["reused"]) == 1 and len(prov["commit"]) == 40 and prov["code_version"].startswith(prov["commit"][:12])
    )
    assert {launched_code[t["dir"].name] for t in launched} == {prov["code_version"]}
    assert set(sweep["provenance"]["packages"]) >= {"torch", "ray", "transformers", "timm", "optuna", "numpy"}
    assert sweep["provenance"]["spec_sha256"] and sweep["provenance"]["command"] == (
        f"python -m sweeps {spec} --storage-path {storage} --seeds 0-1 --set gate.threshold=0.7"
    )
    # Analysis reads the grown folder: every trial, the reused one flagged, keys and commit in the footer.
    results = load(experiment)
    assert len(results.trials) == 5 and int(results.trials["reused"].sum()) == 1
    arm_table = tables.render(tables.arm_table(results.trials, results.arm_keys), "md")
    assert "done (1 reused)" in arm_table and "Provenance" not in arm_table  # figures adds the footer
    assert results.trials[TRIAL_KEY].notna().all()
    footer = provenance.footer(results.trials)
    assert prov["code_version"] in footer and "5 trials (1 reused)" in footer
    assert results.trials[CODE_KEY].nunique() == 1 and provenance.warning(results.trials) is None
    # --no-reuse runs everything again, in a new folder (seed 0: both of its trials exist already).
    assert "(0 reused, 2 to run)" in _launch(
        capsys, spec, storage, "--seeds", "0", "--set", "gate.threshold=0.7", "--no-reuse", "--name", "again"
    )
    both = load(experiment, storage / "again")
    assert len(both.trials) == 7 and both.paths == [experiment, storage / "again"]
