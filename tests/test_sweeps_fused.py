"""Fused seeds on the sweep side (``--fuse-seeds``, ``sweeps.fused``): one Tune trial per arm, and still one
result per seed everywhere downstream. That a fused seed equals its unfused run is pare_core's test
(tests/test_fusion.py); here: the trial expansion and its fallbacks, keys, reports, summary, progress,
reuse and analysis rows, first without Ray, then on one real local Ray sweep."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial
from sweep_results import SERIAL, summary_rows, write_spec

from analysis.load import load
from pare_core.formatting import mean_std_of
from sweeps import cost
from sweeps.cli import main, parse_args
from sweeps.fused import TrialRecord, report_row, seed_records, seed_ref, seeds_of, split, split_ref
from sweeps.identity import ARM_KEY, CODE_KEY, SEED_KEYS_KEY, SEEDS_KEY, TRIAL_KEY, config_only
from sweeps.options import Overrides, format_seeds, parse_seeds
from sweeps.plan import describe, fuse_arms, unfinished, with_identity
from sweeps.progress import ProgressCallback
from sweeps.reuse import finished_trials
from sweeps.spec import SpecError, build
from sweeps.summary import render

BASE = {
    "method": "finetune",
    "task.name": "digits",
    "train.epochs": 2,
    "train.steps_per_epoch": 2,
    "task.n_train": 120,
    "task.max_test": 200,
}


def spec(tmp_path: Path, **fields) -> Path:
    return write_spec(tmp_path / "fused.yaml", **{"base": BASE, "seeds": [0, 1, 2], **fields})


def test_seed_lists_print_as_they_are_typed():
    for seeds in ([0, 1, 2, 3, 4], [0, 1, 2, 7], [3], [1, 3, 5]):
        assert parse_seeds(format_seeds(seeds)) == seeds
    assert format_seeds([0, 1, 2, 7]) == "0-2,7"


def test_a_fused_arm_is_one_trial_whose_seeds_are_the_unfused_trials(tmp_path):
    path = spec(tmp_path, arms={"slow": {"train.lr": 1e-4}, "fast": {"train.lr": 1e-3}})
    plain, fused = build(str(path), Overrides()), fuse_arms(build(str(path), Overrides(fuse_seeds=True)))
    assert (plain.n_trials, fused.n_trials, fused.arm_names, fused.fallbacks) == (6, 2, ["slow", "fast"], {})
    assert [seeds_of(t) for t in fused.trials] == [[0, 1, 2]] * 2
    assert [run for t in fused.trials for run in split(t)] == plain.trials
    assert config_only(fused.trials[0]) == plain.trials[0]  # what TrialConfig.from_flat gets (seed: the first)
    keyed, plain_keyed = (with_identity(s, f"python -m sweeps {path}") for s in (fused, plain))
    runs = [run for t in keyed.trials for run in split(t)]
    assert [r[TRIAL_KEY] for r in runs] == [t[TRIAL_KEY] for t in plain_keyed.trials]  # reusable either way
    first = keyed.trials[0]
    assert first[SEEDS_KEY] == "0,1,2" and first[SEED_KEYS_KEY].split(",") == [r[TRIAL_KEY] for r in runs[:3]]
    assert first[ARM_KEY] == "slow" and first[CODE_KEY] and first[TRIAL_KEY] not in first[SEED_KEYS_KEY]
    # Seeds reused from earlier runs leave the others to train: fused while two are left, plain when one is.
    left = unfinished(keyed.trials, {runs[0][TRIAL_KEY], runs[3][TRIAL_KEY], runs[4][TRIAL_KEY]})
    assert [seeds_of(t) for t in left] == [[1, 2], [2]] and SEEDS_KEY not in left[1]
    assert left[1][TRIAL_KEY] == runs[5][TRIAL_KEY]


def test_the_spec_key_the_flag_and_bad_values(tmp_path):
    arms = {"arms": {"slow": {"train.lr": 1e-4}, "fast": {"train.lr": 1e-3}}}
    assert fuse_arms(build(str(spec(tmp_path, fuse_seeds=True, **arms)), Overrides())).n_trials == 2
    assert fuse_arms(build(str(spec(tmp_path, fuse_seeds=True, **arms)), Overrides(fuse_seeds=False))).n_trials == 6
    with pytest.raises(SpecError, match=r"fuse_seeds='yes' is invalid: allowed values are true, false"):
        build(str(spec(tmp_path, fuse_seeds="yes")), Overrides())
    assert parse_args("x", "", ["--no-fuse-seeds"]).overrides.fuse_seeds is False
    with pytest.raises(SystemExit):  # the trials of a started sweep are fixed
        parse_args("x", "", ["--resume", "--fuse-seeds"])


def test_fusing_a_search_is_refused_before_ray_starts(capsys):
    assert main("tune_task", argv=["--fuse-seeds", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "fuse_seeds" in err and "search type optuna" in err and "allowed values with search optuna: false" in err


def test_dry_run_names_each_arm_that_falls_back_and_why(tmp_path):
    path = spec(tmp_path, arms={"finetune": {}, "orca": {"method": "orca", "align.epochs": 1}}, gpu_s_per_epoch=1.0)
    sweep = fuse_arms(build(str(path), Overrides(fuse_seeds=True, seeds=[0, 1])))
    assert [seeds_of(t) for t in sweep.trials] == [[0, 1], [0], [1]]
    assert list(sweep.fallbacks) == ["orca"] and "method=orca" in sweep.fallbacks["orca"]
    text = describe(sweep)
    assert "3 trials for 2 arms x 2 seeds: 1 fused" in text and "2 single-seed" in text
    assert f"not fused, one trial per seed: arm orca: {sweep.fallbacks['orca']}" in text
    assert re.search(r"\|\s*seeds\s*\|", text) and re.search(r"\|\s*0-1\s*\|", text)  # the fused arm's seeds
    one_seed = fuse_arms(build(str(path), Overrides(fuse_seeds=True, seeds=[4])))
    assert set(one_seed.fallbacks.values()) == {"one seed per arm: nothing to fuse"} and one_seed.n_trials == 2
    # Cost: a fused trial holds one trial's resources and counts its seeds' work, at an unfused trial's time.
    est, plain = cost.estimate(sweep, slots=1), cost.estimate(build(str(path), Overrides(seeds=[0, 1])), slots=1)
    fused_s, single_s = est.trials[0]["trial_s"], plain.trials[0]["trial_s"]
    assert fused_s == 2 * single_s > 0 and est.trial_s == pytest.approx(plain.trial_s)
    assert [g.trials for g in est.groups] == [2, 2] and est.fused == 1
    assert any("1 fused trial: each holds one trial's CPUs" in line for line in cost.render(est))


# -- reports, summary, progress: real Tune Trial objects, no Ray started ----------------------------


def fused_trial(status: str, seeds: str = "0,1") -> Trial:
    config = {"train.lr": 1e-3, "seed": 0, SEEDS_KEY: seeds, "train.epochs": 2, ARM_KEY: "lr", "method": "finetune"}
    storage = StorageContext(storage_path="/tmp/results", experiment_dir_name="demo", trial_dir_name="t")
    trial = Trial("train_trial", config=config, stub=True, storage=storage)
    trial.set_status(status)
    return trial


def test_a_report_holds_each_seed_and_the_mean_the_scheduler_reads():
    live = {0: {"epoch": 2, "val_error": 0.2, "wall_s": 5.0, "test_error": 0.3}, 2: {"epoch": 2, "val_error": 0.4}}
    row = report_row(live, {1: "NonFiniteLossError: non-finite training loss at epoch 1"}, "val_error")
    assert row["val_error"] == pytest.approx(0.3) and row["epoch"] == 2 and row["wall_s"] == 5.0
    assert row["seeds"]["1"] == {"error": "NonFiniteLossError: non-finite training loss at epoch 1"}
    assert "test_error" not in row  # per seed only: the top level is what Tune schedules on
    assert report_row({}, {0: "boom"}, "val_error") is None  # every seed failed: the trial fails
    trial = fused_trial(Trial.RUNNING, "0,1,2")
    trial.update_last_result(row)
    runs = seed_records(trial, Trial.TERMINATED)
    assert [(r.config["seed"], r.status, r.last_result.get("val_error")) for r in runs] == [
        (0, "TERMINATED", 0.2),
        (1, "ERROR", None),
        (2, "TERMINATED", 0.4),
    ]
    assert runs[1].error.startswith("NonFiniteLossError") and split_ref(runs[1].trial_id) == (trial.trial_id, 1)


def test_summary_and_progress_count_seeds():
    done, running = fused_trial(Trial.TERMINATED), fused_trial(Trial.RUNNING)
    done.update_last_result(
        report_row(
            {0: {"epoch": 2, "val_error": 0.2, "test_error": 0.25}}, {1: "RuntimeError: seed 1 broke"}, "val_error"
        )
    )
    running.update_last_result(
        report_row({0: {"epoch": 1, "val_error": 0.5}, 1: {"epoch": 1, "val_error": 0.7}}, {}, "val_error")
    )
    reused = TrialRecord(
        "old",
        "/x/old#seed=3",
        {**config_only(done.config), "seed": 3, ARM_KEY: "lr"},
        {"val_error": 0.4, "test_error": 0.45},
        reused=True,
    )
    text = render("demo", "val_error", ["train.lr"], [reused, done, running])
    assert text.startswith("# Sweep `demo`")
    assert "5 trials: 2 done, 1 failed, 2 pending or running; 1 of the done reused" in text
    (row,) = summary_rows(text)
    assert (row["arm"], row["done"], row["failed"], row["pending"]) == ("lr", "2", "1", "2")
    assert row["val_error (mean ± std)"] == mean_std_of([0.4, 0.2], 4, count=True)
    failed_row = rf"\| {re.escape(seed_ref(done.trial_id, 1))}\s*\| 1\s*\| 0.001\s*\| RuntimeError: seed 1 broke \|"
    assert re.search(failed_row, text)  # a failed seed, listed with its own error
    progress = ProgressCallback("demo", "val_error", ["train.lr"], planned=2, reused=1)
    assert progress.counts([done, running]) == {
        "done": 2,
        "degenerate": 0,
        "failed": 1,
        "running": 2,
        "pending": 0,
        "total": 5,
    }


def test_summary_rows_follow_the_spec_arm_order_not_tunes_trial_order():
    """Tune moves a retried trial to the end of its list; the summary still lists arms as the spec does."""
    record = lambda arm, seed: TrialRecord(f"{arm}{seed}", f"/x/{arm}{seed}", {"seed": seed, ARM_KEY: arm}, {})  # noqa: E731
    requeued = [record("fast", 0), record("fast", 1), record("slow", 0), record("slow", 1)]  # slow crashed first
    assert [r["arm"] for r in summary_rows(render("demo", "val_error", [], requeued))] == ["fast", "slow"]
    in_spec_order = render("demo", "val_error", [], requeued, arm_order=["slow", "slow", "fast", "fast"])
    assert [r["arm"] for r in summary_rows(in_spec_order)] == ["slow", "fast"]


# -- a fused trial's folder, read back: reuse and analysis -----------------------------------------


def write_fused_folder(experiment: Path) -> Path:
    """A finished fused trial whose seed 1 failed at epoch 2 while seed 0 went on (as the trainable writes it)."""
    trial = experiment / "abc_00000_lr_seeds=0-1"
    trial.mkdir(parents=True)
    config = {**BASE, "train.lr": 1e-3, "seed": 0, SEEDS_KEY: "0,1", SEED_KEYS_KEY: "k0,k1", TRIAL_KEY: "kf"}
    (trial / "params.json").write_text(json.dumps({**config, CODE_KEY: "c1", ARM_KEY: "lr"}))
    tune = {"trial_id": "abc_00000", "time_total_s": 3.0, "timestamp": 100}
    epoch1 = report_row({0: {"epoch": 1, "val_error": 0.5}, 1: {"epoch": 1, "val_error": 0.7}}, {}, "val_error")
    failed = {1: "NonFiniteLossError: non-finite training loss at epoch 2, step 1"}
    epoch2 = report_row({0: {"epoch": 2, "val_error": 0.4, "test_error": 0.45}}, failed, "val_error")
    (trial / "result.json").write_text("".join(json.dumps({**r, **tune}) + "\n" for r in (epoch1, epoch2)))
    return trial


def test_a_fused_folder_is_one_row_per_seed_and_its_finished_seeds_are_reusable(tmp_path):
    trial = write_fused_folder(tmp_path / "store" / "fused")
    found = finished_trials(str(tmp_path / "store"))
    assert list(found) == ["k0"] and found["k0"].path == seed_ref(str(trial), 0)
    assert found["k0"].config["seed"] == 0 and found["k0"].last_result["test_error"] == 0.45
    rows = load(tmp_path / "store" / "fused").trials.set_index("config/seed")
    assert list(rows.index) == [0, 1] and list(rows["trial_key"]) == ["k0", "k1"]
    assert list(rows["status"]) == ["done", "error"] and list(rows["epochs"]) == [2, 1]
    assert rows.loc[0, "val_error"] == 0.4 and rows.loc[1, "val_error"] == 0.7
    assert rows.loc[1, "error_message"].startswith("NonFiniteLossError") and rows.loc[0, "error_message"] == ""
    assert rows.loc[0, "trial_id"] == "abc_00000#seed=0" and "config/seeds" not in rows
    # A later launch that reused seed 0 (and ran nothing itself) reads just that seed, flagged as reused.
    later = tmp_path / "store" / "later"
    later.mkdir()
    (later / "sweep.json").write_text(json.dumps({"reused": [found["k0"].path]}))
    again = load(later).trials
    assert list(again["trial_key"]) == ["k0"] and again["reused"].all() and list(again["status"]) == ["done"]


# -- one real sweep ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_fused_sweep_reports_every_seed_as_its_own_trial(tmp_path, tiny_budget, capsys):
    """2 arms x 2 seeds, fused: 2 Tune trials, 4 result rows; a crash at epoch 2 resumes from the checkpoint.
    Then the same sweep unfused reuses all 4 seeds, and analysis reads them from the fused folders."""
    base = {**BASE, **tiny_budget, "train.epochs": 2, "runtime.fail_at_epoch": 2}
    path = write_spec(
        tmp_path / "fused.yaml",
        name="fused",
        base=base,
        arms={"slow": {"train.lr": 1e-4}, "fast": {"train.lr": 1e-3}},
        **SERIAL,  # nothing here runs side by side: 3 trial processes (a crash ends one) instead of 4
    )
    storage = tmp_path / "store"
    flags = ["--storage-path", str(storage), "--seeds", "0-1"]
    assert main(str(path), argv=[*flags, "--fuse-seeds"]) == 0
    assert "sweep fused: 4 trials (0 reused, 4 to run)" in capsys.readouterr().out
    experiment = storage / "fused"
    folders = sorted(p.parent for p in experiment.glob("*/params.json"))
    assert len(folders) == 2 and all(f.name.endswith("seeds=0-1") for f in folders)
    assert all("injected failure at epoch 2" in (f / "error.txt").read_text() for f in folders)  # crashed, resumed
    results = load(experiment)
    trials = results.trials
    assert len(trials) == 4 and list(trials["status"]) == ["done"] * 4 and list(trials["retries"]) == [1] * 4
    assert sorted(zip(trials["arm"], trials["config/seed"])) == [("fast", 0), ("fast", 1), ("slow", 0), ("slow", 1)]
    for folder in folders:
        last = json.loads((folder / "result.json").read_text().splitlines()[-1])
        for seed, own in last["seeds"].items():
            row = trials[trials["trial_id"] == f"{last['trial_id']}#seed={seed}"].iloc[0]
            assert row["val_error"] == own["val_error"] and row["test_error"] == own["test_error"]
            assert row["epochs"] == 2 and row["train_loss"] == own["train_loss"]
        assert last["val_error"] == pytest.approx(sum(s["val_error"] for s in last["seeds"].values()) / 2)
    assert trials.groupby("arm")["val_error"].nunique().eq(2).all()  # each seed its own metrics
    assert set(results.curves["trial_id"]) == set(trials["trial_id"]) and len(results.curves) == 8
    summary = summary_rows((experiment / "summary.md").read_text())
    assert [(r["arm"], r["done"], r["failed"]) for r in summary] == [("slow", "2", "0"), ("fast", "2", "0")]
    for r in summary:
        values = trials.loc[trials["arm"] == r["arm"], "val_error"].tolist()
        assert r["val_error (mean ± std)"] == mean_std_of(values, 4, count=True)
    # Unfused, the same trials have the same keys: all four reused, nothing run, no Ray started.
    assert main(str(path), argv=flags) == 0
    assert "sweep fused: 4 trials (4 reused, 0 to run)" in capsys.readouterr().out
    again = load(experiment).trials
    assert len(again) == 4 and again["reused"].all() and set(again["trial_key"]) == set(trials["trial_key"])
