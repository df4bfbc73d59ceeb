"""Analysis on results folders written by real (tiny) Ray Tune sweeps, read back after Ray has stopped.

Two sweeps run once per module, in one local Ray session:
- a grid ablation, gate.selection x curriculum.shape x 3 seeds, with one config that always raises
  (an errored trial) and one that crashes once and recovers from its checkpoint (a retried trial);
- a tuning sweep, Optuna TPE + ASHA over three keys, so some trials are stopped early.
The trainable reports the platform's per-epoch metric names with values from ``expected_final``, so
every number the analysis shows can be checked against the value that was reported.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats

from analysis import load, stats, tables
from analysis import report as report_module
from analysis import tuning as tuning_module
from analysis.print_table import main as print_table_main

pytestmark = pytest.mark.slow  # real sweeps or long fits: in CI, not in the fast tier
ROOT = Path(__file__).resolve().parents[1]

EPOCHS = 4
TUNE_EPOCHS = 6
SELECTION = {"none": 0.30, "random": 0.25, "topk": 0.20}
SHAPE = {"linear": 0.0, "cosine": 0.02}
FAILS = {"gate.selection": "topk", "curriculum.shape": "cosine", "seed": 2}  # raises on every attempt
RETRIED = {"gate.selection": "random", "curriculum.shape": "linear", "seed": 1}  # raises once at epoch 4, resumes


def expected_final(config: dict) -> float:
    """The final val_error the fixture trainable reports for a grid config (test_error is 0.02 more):
    an arm effect, a seed effect shared by all arms, and a per-(arm, seed) term so paired tests have spread."""
    selection, shape, seed = config["gate.selection"], config["curriculum.shape"], config["seed"]
    interaction = 0.004 * ((7 * seed + 3 * list(SELECTION).index(selection) + list(SHAPE).index(shape)) % 5)
    return SELECTION[selection] + SHAPE[shape] + 0.01 * seed + interaction


def tuned_error(config: dict) -> float:
    """A tuning objective that depends mostly on the learning rate (best at 1e-2)."""
    return 0.1 + 0.15 * abs(math.log10(config["train.lr"]) + 2) + 0.02 * config["curriculum.start"]


def ratio(shape: str, epoch: int, epochs: int, start: float = 0.64) -> float:
    progress = (epoch - 1) / (epochs - 1)
    return start * (1 - progress) if shape == "linear" else start * 0.5 * (1 + math.cos(math.pi * progress))


def fixture_trainable(config: dict) -> None:
    """Reports the platform's metric names per epoch; checkpoints (its epoch, as JSON: no torch import in
    the trial processes, each failure starts a new one) every 2nd epoch and at the last, so a retry
    re-reports the epochs after its checkpoint; a resumed run reports
    ``samples_per_s`` 2000 instead of 1000, to tell the two reports of an epoch apart."""
    from ray import tune

    grid = "gate.selection" in config
    epochs = config["train.epochs"]
    final = expected_final(config) if grid else tuned_error(config)
    checkpoint = tune.get_checkpoint()
    start = 1
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = json.loads((Path(directory) / "state.json").read_text())["epoch"] + 1
    for epoch in range(start, epochs + 1):
        if grid and all(config[k] == v for k, v in FAILS.items()) and epoch == 3:
            raise RuntimeError("fixture: this config always fails at epoch 3")
        if grid and all(config[k] == v for k, v in RETRIED.items()) and epoch == 4 and checkpoint is None:
            raise RuntimeError("fixture: transient failure")
        r = ratio(config.get("curriculum.shape", "linear"), epoch, epochs)
        val_error = final + 0.3 * (epochs - epoch) / epochs
        metrics = {
            "epoch": epoch,
            "train_loss": 2 * val_error,
            "val_error": val_error,
            "val_accuracy": 1 - val_error,
            "ratio": r,
            "k": round(r * 8),
            "gate_mean": 0.5,
            "gate_selected_frac": r,
            "samples_per_s": 1000.0 if checkpoint is None else 2000.0,
            "epoch_s": 0.01,
        }
        if epoch == epochs:
            metrics.update(
                {
                    "test_error": final + 0.02,
                    "test_accuracy": 0.98 - final,
                    "baseline/majority": 0.9,
                    "baseline/logreg": 0.3,
                }
            )
        if epoch % 2 and epoch != epochs:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def run_sweeps(storage: Path) -> tuple[Path, Path]:
    """Run both sweeps with local Ray on loopback; returns the two experiment folders."""
    import ray
    import ray.cloudpickle
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False)
    try:
        base = {"method": "pare", "task.name": "digits", "train.epochs": EPOCHS, "runtime.threads": 1}
        grid = tune.Tuner(
            fixture_trainable,
            param_space={
                **base,
                "gate.selection": tune.grid_search(list(SELECTION)),
                "curriculum.shape": tune.grid_search(list(SHAPE)),
                "seed": tune.grid_search([0, 1, 2]),
            },
            tune_config=tune.TuneConfig(metric="val_error", mode="min", reuse_actors=True),
            run_config=tune.RunConfig(
                name="grid", storage_path=str(storage), verbose=0, failure_config=tune.FailureConfig(max_failures=1)
            ),
        )
        grid.fit()
        search = ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=2)
        tuning = tune.Tuner(
            fixture_trainable,
            param_space={
                **base,
                "train.epochs": TUNE_EPOCHS,
                "seed": 0,
                "train.lr": tune.loguniform(1e-4, 1e-1),
                "curriculum.start": tune.uniform(0.2, 0.8),
                "mix.weight": tune.choice([0.1, 0.3, 1.0]),
            },
            tune_config=tune.TuneConfig(
                metric="val_error",
                mode="min",
                search_alg=search,
                num_samples=10,
                reuse_actors=True,
                scheduler=ASHAScheduler(time_attr="epoch", max_t=TUNE_EPOCHS, grace_period=1, reduction_factor=2),
            ),
            run_config=tune.RunConfig(name="tune", storage_path=str(storage), verbose=0),
        )
        tuning.fit()
    finally:
        ray.shutdown()
    return storage / "grid", storage / "tune"


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> tuple[Path, Path]:
    """The two experiment folders, copied elsewhere after Ray stopped (as a folder synced to a laptop)."""
    grid, tuning = run_sweeps(tmp_path_factory.mktemp("ray_results"))
    copy = tmp_path_factory.mktemp("laptop")
    return Path(shutil.copytree(grid, copy / "grid")), Path(shutil.copytree(tuning, copy / "tune"))


@pytest.fixture(scope="module")
def grid(sweeps) -> load.Results:
    return load.load(sweeps[0])


@pytest.fixture(scope="module")
def tuning(sweeps) -> load.Results:
    return load.load(sweeps[1])


# -- loading ----------------------------------------------------------------------------------------


def test_one_row_per_trial_with_status_and_reported_values(grid):
    trials = grid.trials
    assert len(trials) == len(SELECTION) * len(SHAPE) * 3
    assert grid.arm_keys == ["curriculum.shape", "gate.selection"]  # seed and runtime.* are not arm keys
    assert grid.search == "grid" and grid.metric == "val_error"
    failed = trials[trials["status"] == "error"]
    assert len(failed) == 1 and (trials["status"] == "done").sum() == len(trials) - 1
    row = failed.iloc[0]
    assert {k: row["config/" + k] for k in FAILS} == FAILS
    assert row["epochs"] == 2 and row["retries"] == 2 and math.isnan(row["test_error"])
    assert row["error_message"] == "RuntimeError: fixture: this config always fails at epoch 3"
    for _, t in trials[trials["status"] == "done"].iterrows():
        config = {k[len("config/") :]: v for k, v in t.items() if k.startswith("config/")}
        assert t["val_error"] == pytest.approx(expected_final(config))
        assert t["test_error"] == pytest.approx(expected_final(config) + 0.02)  # only in result.json's last row
        assert t["best_val_error"] == pytest.approx(expected_final(config)) and t["best_epoch"] == EPOCHS
        assert t["epochs"] == EPOCHS and t["time_s"] > 0


def test_trials_in_stable_config_order(grid):
    keys = [
        tuple(r)
        for r in grid.trials[["config/curriculum.shape", "config/gate.selection", "config/seed"]].itertuples(
            index=False
        )
    ]
    assert keys == sorted(keys)
    assert list(grid.trials["arm"].unique())[:2] == ["shape=cosine, selection=none", "shape=cosine, selection=random"]
    curve_order = list(dict.fromkeys(grid.curves["trial_id"]))
    assert curve_order == [t for t in grid.trials["trial_id"] if t in set(curve_order)]


def test_retried_trial_is_done_and_its_curve_has_each_epoch_once(grid):
    trials = grid.trials
    retried = trials[
        (trials["config/gate.selection"] == RETRIED["gate.selection"])
        & (trials["config/curriculum.shape"] == RETRIED["curriculum.shape"])
        & (trials["config/seed"] == RETRIED["seed"])
    ].iloc[0]
    assert retried["status"] == "done" and retried["retries"] == 1 and retried["error_file"]
    rows = (grid.path / retried["trial_dir"] / "result.json").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3, 3, 4]  # epoch 3 ran twice: crash, resume from 2
    curve = grid.curves[grid.curves["trial_id"] == retried["trial_id"]]
    assert list(curve["epoch"]) == list(range(1, EPOCHS + 1))
    assert list(curve["samples_per_s"]) == [1000.0, 1000.0, 2000.0, 2000.0]  # the resumed report of epoch 3 wins
    ratios = [ratio("linear", e, EPOCHS) for e in range(1, EPOCHS + 1)]
    assert list(curve["ratio"]) == pytest.approx(ratios)


def test_folder_without_experiment_state_or_result_json(sweeps, tmp_path):
    """A partial copy: statuses come from the trial folders alone, metrics from progress.csv."""
    full = load.load(sweeps[0]).trials
    copy = Path(shutil.copytree(sweeps[0], tmp_path / "grid"))
    for path in copy.glob("experiment_state-*.json"):
        path.unlink()
    no_state = load.load(copy).trials
    assert no_state["status"].tolist() == full["status"].tolist()
    assert no_state["retries"].tolist() == full["retries"].tolist()  # counted in error.txt instead
    for path in copy.glob("*/result.json"):
        path.unlink()
    csv_only = load.load(copy).trials
    assert csv_only["status"].value_counts().to_dict() == {"done": 17, "error": 1}
    assert "test_error" not in csv_only  # Tune's progress.csv keeps only the first report's columns
    assert csv_only["val_error"].tolist() == pytest.approx(full["val_error"].tolist())
    assert csv_only["epochs"].tolist() == full["epochs"].tolist() and csv_only["k"].tolist() == full["k"].tolist()


def test_trial_that_never_started_is_listed_as_unfinished(sweeps, tmp_path):
    """A folder copied mid-sweep: the experiment state lists a PENDING trial that has no folder yet."""
    copy = Path(shutil.copytree(sweeps[0], tmp_path / "grid"))
    state_file = max(copy.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    index, trial = next(
        (i, t)
        for i, t in enumerate(json.loads(d[0]) for d in state["trial_data"])
        if t["config"]["gate.selection"] == "none"
    )
    shutil.rmtree(copy / trial["relative_logdir"])
    trial.update(status="PENDING", relative_logdir=None)
    state["trial_data"][index][0] = json.dumps(trial)
    state_file.write_text(json.dumps(state))
    partial = load.load(copy)
    assert len(partial.trials) == 18
    pending = partial.trials.set_index("trial_id").loc[trial["trial_id"]]
    assert pending["status"] == "running" and pending["epochs"] == 0
    assert pending["config/seed"] == trial["config"]["seed"]
    text = tables.render(tables.arm_table(partial.trials, partial.arm_keys), "md")
    assert "2/3 done, 1/3 unfinished" in text


def test_loading_does_not_import_or_start_ray(sweeps):
    code = (
        "import sys; from analysis.load import load; r = load(sys.argv[1]); "
        "assert 'ray' not in sys.modules, 'ray imported'; print(len(r.trials))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(sweeps[0])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "18"


def test_asha_stopped_trials_in_a_tuning_sweep(tuning):
    trials = tuning.trials
    assert tuning.search == "search"
    assert tuning.arm_keys == ["curriculum.start", "mix.weight", "train.lr"]
    assert set(trials["status"]) <= {"done", "stopped"} and (trials["status"] == "stopped").any()
    stopped = trials[trials["status"] == "stopped"]
    assert (stopped["epochs"] < TUNE_EPOCHS).all() and stopped["test_error"].isna().all()
    done = trials[trials["status"] == "done"]
    assert (done["epochs"] == TUNE_EPOCHS).all()
    for _, t in done.iterrows():
        assert t["val_error"] == pytest.approx(
            tuned_error({"train.lr": t["config/train.lr"], "curriculum.start": t["config/curriculum.start"]})
        )
    assert sorted(trials["trial_number"]) == list(range(1, len(trials) + 1))


# -- statistics and tables on the real folder -------------------------------------------------------


def test_arm_statistics_match_the_reported_values(grid):
    table = stats.arm_stats(grid.trials, grid.arm_keys).set_index("arm")
    for selection in SELECTION:
        for shape in SHAPE:
            seeds = [
                s for s in range(3) if {"gate.selection": selection, "curriculum.shape": shape, "seed": s} != FAILS
            ]
            values = [
                expected_final({"gate.selection": selection, "curriculum.shape": shape, "seed": s}) + 0.02
                for s in seeds
            ]
            row = table.loc[f"shape={shape}, selection={selection}"]
            assert row["test_error_n"] == len(values) and row["n_failed"] == 3 - len(values)
            assert row["test_error_mean"] == pytest.approx(sum(values) / len(values))
            half = scipy.stats.t.ppf(0.975, len(values) - 1) * scipy.stats.sem(values)
            assert row["test_error_ci_high"] == pytest.approx(sum(values) / len(values) + half)


def test_paired_test_against_the_default_control(grid):
    result = stats.compare_to_control(grid.trials, grid.arm_keys).set_index("arm")
    control = {"gate.selection": "none", "curriculum.shape": "cosine"}  # first arm with selection=none
    assert set(result["control"]) == {"shape=cosine, selection=none"}
    arm = {"gate.selection": "random", "curriculum.shape": "linear"}
    x = [expected_final({**arm, "seed": s}) + 0.02 for s in range(3)]
    y = [expected_final({**control, "seed": s}) + 0.02 for s in range(3)]
    row = result.loc["shape=linear, selection=random"]
    assert row["n_pairs"] == 3
    assert row["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(x, y).pvalue)
    assert result.loc["shape=cosine, selection=topk", "n_pairs"] == 2  # seed 2 failed


def test_table_cli_shows_the_failed_trial(sweeps, capsys):
    """The first run goes through ``python -m`` as a user types it; the other formats and the refused
    control call the same ``main`` in this process (a subprocess each would cost ~2 CPU-s of imports)."""
    command = [sys.executable, "-m", "analysis.print_table", str(sweeps[0])]
    control = ["--control", "gate.selection=random,curriculum.shape=linear"]
    typed = subprocess.run([*command, "--format", "md", *control], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert typed.returncode == 0, typed.stderr

    def print_table(*flags: str) -> tuple[int, str, str]:
        code = print_table_main([str(sweeps[0]), *flags])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, latex, _ = print_table("--format", "latex", *control)
    assert code == 0
    for table in (typed.stdout, latex):
        failed_row = next(line for line in table.splitlines() if "topk" in line and "cosine" in line)
        assert "2/3 done, 1/3 failed" in failed_row
        assert "Control arm: shape=linear, selection=random" in table
    frame = pd.read_csv(io.StringIO(print_table("--format", "csv")[1])).set_index("arm")
    assert frame.loc["shape=cosine, selection=topk", "n_failed"] == 1
    code, _, err = print_table("--control", "seed=1")
    assert code == 2 and "seed is not a swept key" in err


# -- every figure -----------------------------------------------------------------------------------


def figure_files(out: Path) -> set[str]:
    return {p.stem for p in out.glob("*.png")}


def assert_index_complete(out: Path) -> str:
    """Every file index.md links exists and is non-empty, and every figure written is linked."""
    index = (out / "index.md").read_text()
    links = set(re.findall(r"\]\(([^)]+)\)", index))
    assert links and all((out / link).stat().st_size > 0 for link in links)
    assert {p.name for p in out.glob("*.png")} | {p.name for p in out.glob("*.pdf")} <= links
    return index


def test_figures_for_a_grid_sweep(sweeps, tmp_path):
    report = report_module.build(sweeps[0], tmp_path)
    assert figure_files(tmp_path) == {  # one ablation figure per metric; no key is numeric: no sweep figure
        "curves",
        "ablation_val_error",
        "ablation_test_error",
        "curriculum",
        "cost",
    }
    assert report.layout == []
    skipped = dict(report.skipped)
    assert "tuning figures" in skipped and "gate figure" in skipped  # fixture checkpoints hold no real model
    index = assert_index_complete(tmp_path)
    assert "## Failed trials" in index and "always fails at epoch 3" in index
    assert "2/3 done, 1/3 failed" in (tmp_path / "table.md").read_text()
    assert "\\toprule" in (tmp_path / "table.tex").read_text()


def test_figures_for_a_tuning_sweep(sweeps, tmp_path):
    report = report_module.build(sweeps[1], tmp_path)
    assert figure_files(tmp_path) == {"curves", "tuning_history", "tuning_parallel", "tuning_importance", "cost"}
    assert {"ablation charts", "curriculum figure", "arm table"} <= set(dict(report.skipped))
    assert_index_complete(tmp_path)
    table = (tmp_path / "trials_table.md").read_text()
    assert table.count("| stopped") == (load.load(sweeps[1]).trials["status"] == "stopped").sum()


def test_study_rebuilt_from_the_tuning_folder(tuning):
    study = tuning_module.build_study(tuning.trials, tuning.arm_keys, "val_error", "min", tuning.curves)
    states = [t.state.name for t in study.trials]
    ordered = tuning.trials.sort_values("trial_number")
    assert states == ["COMPLETE" if s == "done" else "PRUNED" for s in ordered["status"]]
    assert study.best_value == pytest.approx(ordered.loc[ordered["status"] == "done", "val_error"].min())
    distributions = study.trials[0].distributions
    assert distributions["train.lr"].log and not distributions["curriculum.start"].log
    importances = tuning_module.importances(study)
    assert set(importances) == set(tuning.arm_keys) and sum(importances.values()) == pytest.approx(1.0)


def test_gate_figure_uses_the_kept_checkpoint_that_replaced_most_tokens(sweeps, tmp_path):
    """The fixture checkpoints at epochs 2 and 4; the curriculum replaces tokens at epoch 2, none at 4."""
    copy = load.load(shutil.copytree(sweeps[0], tmp_path / "grid"))
    trial = copy.trials[copy.trials["status"] == "done"].iloc[0]
    rows = [json.loads(line) for line in (copy.path / trial["trial_dir"] / "result.json").read_text().splitlines()]
    by_epoch = {r["epoch"]: r["checkpoint_dir_name"] for r in rows if r.get("checkpoint_dir_name")}
    k = {r["epoch"]: r["k"] for r in rows}
    assert sorted(by_epoch) == [2, 4] and k[2] > 0 == k[4]
    assert report_module._gate_checkpoint(copy, trial) == copy.path / trial["trial_dir"] / by_epoch[2]
    shutil.rmtree(copy.path / trial["trial_dir"] / by_epoch[2])  # as if num_to_keep had deleted it
    assert report_module._gate_checkpoint(copy, trial) == copy.path / trial["trial_dir"] / by_epoch[4]
