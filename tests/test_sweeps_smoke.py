"""Every sweep script in --smoke-test mode: a real local Ray sweep of real fits, to the end. The ablation
scripts run by path, as a user types them (the conftest ``smoke_sweep`` fixture); tune_task calls the same
``main`` in this process (its script is those few lines too, and a process of its own cost 7.2 CPU-s, measured).

What the analysis layer relies on is checked on the folder each sweep leaves behind: one trial
folder per trial with the full flat config in params.json, per-epoch rows in progress.csv, a
checkpoint at the last epoch, and a summary.md with one row per arm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sweep_results import summary_rows

from pare_core.config import TrialConfig
from pare_core.train import load_checkpoint
from sweeps.cli import main
from sweeps.identity import ARM_KEY, CODE_KEY, TRIAL_KEY, config_only
from sweeps.options import Overrides
from sweeps.spec import build

pytestmark = pytest.mark.slow  # real sweeps or long fits: in CI, not in the fast tier


def trial_dirs(experiment: Path) -> list[Path]:
    return sorted(p.parent for p in experiment.glob("*/params.json"))


@pytest.mark.parametrize("script", ["ablate_gate", "ablate_curriculum", "ablate_backbone"])
def test_ablation_smoke_sweep(script, smoke_sweep):
    sweep = build(script, Overrides(smoke_test=True))
    experiment = smoke_sweep(script) / sweep.name
    dirs = trial_dirs(experiment)
    assert len(dirs) == sweep.n_trials >= 4
    params = [json.loads((d / "params.json").read_text()) for d in dirs]
    assert all(p[TRIAL_KEY] and p[CODE_KEY] for p in params)  # each trial's identity (sweeps.identity)
    configs = [config_only(p) for p in params]
    canon = lambda c: json.dumps(c, sort_keys=True)  # noqa: E731
    assert sorted(map(canon, configs)) == sorted(map(canon, sweep.trials))  # every planned trial ran, full config
    epochs = sweep.base["train.epochs"]
    batches_by_seed: dict[int, set[tuple]] = {}
    for d, config in zip(dirs, configs):
        progress = pd.read_csv(d / "progress.csv")
        batches_by_seed.setdefault(config["seed"], set()).add(tuple(progress["batch_order_hash"]))
        assert list(progress["epoch"]) == list(range(1, epochs + 1))
        assert progress["val_error"].between(0, 1).all()
        final = json.loads((d / "result.json").read_text().splitlines()[-1])  # progress.csv keeps the first
        assert 0 <= final["test_error"] <= 1 and "baseline/logreg" in final  # report's columns: no test_error
        assert load_checkpoint(max(d.glob("checkpoint_*")))["epoch"] == epochs  # the last epoch is always saved
        assert TrialConfig.from_flat(config).seed == config["seed"]
    for d, p in zip(dirs, params):  # each trial carries its arm's name, and its folder is named by it
        assert p[ARM_KEY] in set(sweep.arm_names) and d.name.endswith(
            f"_{p[ARM_KEY]}_seed={p['seed']}".replace(", ", "--")
        )
    assert all(len(orders) == 1 for orders in batches_by_seed.values())  # arms paired by seed: the same batches
    assert len(set().union(*batches_by_seed.values())) == len(batches_by_seed)  # ... and seeds differ
    summary = (experiment / "summary.md").read_text()
    n_arms = len({tuple(t[k] for k in sweep.swept) for t in sweep.trials})
    rows = summary_rows(summary)
    assert len(rows) == n_arms and all(
        [r[k] for k in ("done", "reused", "failed", "pending")] == ["2", "0", "0", "0"] for r in rows
    )  # 2 seeds done per arm
    assert f"{sweep.n_trials} trials: {sweep.n_trials} done, 0 failed" in summary
    assert [config_only(t) for t in json.loads((experiment / "sweep.json").read_text())["trials"]] == sweep.trials


def test_tune_task_smoke_writes_a_base_file(tmp_path, capsys):
    assert main("tune_task", argv=["--smoke-test", "--storage-path", str(tmp_path)]) == 0
    sweep = build("tune_task", Overrides(smoke_test=True))
    experiment = tmp_path / sweep.name
    dirs = trial_dirs(experiment)
    assert len(dirs) == sweep.n_trials >= 4
    configs = [json.loads((d / "params.json").read_text()) for d in dirs]
    assert len({c["train.lr"] for c in configs}) == len(configs)  # Optuna proposed distinct configs
    tuned_file = experiment / "tuned" / "digits.yaml"  # smoke: inside the experiment, never sweeps/configs/tuned
    tuned = yaml.safe_load(tuned_file.read_text())
    assert set(tuned) == {"task.name", *sweep.space}
    finals = {
        json.dumps({k: c[k] for k in sweep.space}): pd.read_csv(d / "progress.csv")["val_error"].iloc[-1]
        for d, c in zip(dirs, configs)
    }
    assert finals[json.dumps({k: tuned[k] for k in sweep.space})] == min(finals.values())
    # ... and an ablation accepts it as --base
    capsys.readouterr()
    assert main("ablate_gate", argv=["--dry-run", "--base", str(tuned_file)]) == 0
    assert f"train.lr={tuned['train.lr']}" in capsys.readouterr().out
