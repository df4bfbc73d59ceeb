"""The dry run's cost estimate: measured by a real calibration probe (pare_core.train.fit), cached like a
trial, placed on the sweep's concurrency; and what a dry run shows (no GPU-hours for a CPU sweep,
"—" for keys without effect, a warning for an existing results folder)."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from sweep_results import write_spec

from pare_core.config import inert_keys
from pare_core.formatting import fmt_duration
from sweeps import cost
from sweeps.cli import main
from sweeps.options import Overrides
from sweeps.spec import build


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def trial_rows(out: str) -> list[list[str]]:
    """The dry run's trial table: the rows whose first cell is the trial number."""
    return [cells(line) for line in out.splitlines() if line.startswith("|") and cells(line)[0].isdigit()]


def group_row(out: str) -> list[str]:
    """The first row of the dry run's group table (its first cells: arms, then task.name)."""
    return next(cells(line) for line in out.splitlines() if line.startswith("|") and cells(line)[1] == "digits")


def test_arms_that_step_differently_are_priced_apart_and_an_lr_grid_is_one_group(tmp_path):
    """PaRe without replacement makes one backbone pass per step, a mixing arm two: one probe of the
    first arm priced the default gate ablation 1.8x low (issue 23). A learning rate changes no work."""
    arms = {
        "none": {"method": "pare", "gate.selection": "none"},
        "topk": {"method": "pare", "gate.selection": "topk"},
        "topk_lr": {"method": "pare", "gate.selection": "topk", "train.lr": 0.003},
    }
    sweep = build(str(write_spec(tmp_path / "spec.yaml", arms=arms, seeds=[0, 1])), Overrides())
    est = cost.estimate(sweep, slots=2)
    assert [(g.trials, g.arms) for g in est.groups] == [(2, "none"), (4, "topk, topk_lr")]


def test_makespan_places_trials_in_launch_order_on_free_slots():
    assert cost.makespan([10, 10, 10], 2) == 20
    assert cost.makespan([5, 5], 2, busy=[3, 8]) == 13  # the first waits 3 s, the second 8 s
    assert cost.makespan([], 4) == 0 and cost.makespan([1, 2, 3], 8) == 3
    assert math.isnan(cost.makespan([1, math.nan], 2))  # an unknown trial time: an unknown total


def test_durations_read_at_a_glance():
    assert [fmt_duration(s) for s in (42, 725, 11040, 190000)] == ["42s", "12m05s", "3h04m", "2d04h"]
    assert fmt_duration(math.nan) == "—"


def test_cost_key_is_the_trial_identity_minus_seed_plus_the_machine():
    sweep = build("ablate_gate", Overrides())
    by_arm = {}
    for t in sweep.trials:
        by_arm.setdefault(tuple(t[k] for k in sweep.swept), []).append(cost.cost_key(t, "cpu: X", 1))
    assert all(len(set(keys)) == 1 for keys in by_arm.values())  # seeds of an arm share a measurement
    assert len({keys[0] for keys in by_arm.values()}) == len(by_arm)  # arms do not
    topk = next(t for t in sweep.trials if t["gate.selection"] == "topk")
    assert cost.cost_key({**topk, "gate.threshold": 0.9}, "cpu: X", 1) == cost.cost_key(topk, "cpu: X", 1)  # no effect
    assert len({cost.cost_key(topk, d, n) for d, n in (("cpu: X", 1), ("cpu: X", 2), ("cuda: Y", 1))}) == 3


def test_cpu_dry_run_shows_cpu_hours_inert_keys_and_an_existing_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PARE_DATA", str(tmp_path / "data"))
    assert main("ablate_gate", argv=["--dry-run", "--storage-path", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "estimated CPU-hours: " in out and "GPU-hours" not in out
    assert err == ""
    sweep = build("ablate_gate", Overrides())
    rows = trial_rows(out)
    assert len(rows) == sweep.n_trials
    for row, trial, arm in zip(rows, sweep.trials, sweep.arm_names):  # the arm's name, then "—" exactly where
        assert row[1] == arm  # a swept key has no effect on the trial
        assert [cell == "—" for cell in row[2 : 2 + len(sweep.swept)]] == [k in inert_keys(trial) for k in sweep.swept]
    assert any("—" in row for row in rows)
    (tmp_path / sweep.name).mkdir()
    assert main("ablate_gate", argv=["--dry-run", "--storage-path", str(tmp_path)]) == 0
    assert f"warning: {tmp_path / sweep.name} already exists" in capsys.readouterr().err


def test_calibrate_needs_a_dry_run():
    with pytest.raises(SystemExit) as exit_info:
        main("ablate_gate", argv=["--calibrate"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_calibration_measures_caches_and_is_reused(capsys, tmp_path, monkeypatch):
    from pare_core.cache import data_root
    from pare_core.corpora import text_corpus

    # An empty data folder, to count the calibration files, but with the machine's text corpus in it: this
    # test checks the calibration's cache, not the corpus's (tests/test_sources.py), and extracting the
    # corpus again made it take 22 s instead of 9.
    text_corpus()  # built into the machine's cache if this is the first test that needs it
    shutil.copytree(data_root() / "sources", tmp_path / "data" / "sources")
    monkeypatch.setenv("PARE_DATA", str(tmp_path / "data"))
    spec = str(write_spec(tmp_path / "spec.yaml", arms=[{"train.lr": 0.001}, {"train.lr": 0.003}], seeds=[0, 1]))
    assert main(spec, argv=["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert group_row(out)[-1] == "guess" and "estimated wall-clock: —" in out  # nothing measured, no guess in the spec

    assert main(spec, argv=["--dry-run", "--calibrate"]) == 0
    out = capsys.readouterr().out
    assert out.count("calibrating task.name=digits, backbone.name=minilm, method=finetune on cpu") == 1  # one group
    files = list((tmp_path / "data" / "calibration").glob("*.json"))
    assert len(files) == 1
    m = cost.Measurement(**json.loads(files[0].read_text()))
    assert m.steps_per_epoch == 3 and m.threads == 1 and 0 < m.step_s < 30 and 0 < m.val_s < 30
    assert m.setup_s > 0 and "seed" not in m.config and m.config["method"] == "finetune"
    trial_s = m.trial_s(3)
    assert group_row(out)[-3:] == [f"{m.epoch_s():.2f}", fmt_duration(trial_s), "measured"]
    assert f"estimated wall-clock: {fmt_duration(2 * trial_s)} at 2 trials at a time" in out  # 4 trials, 2 slots
    assert f"estimated CPU-hours: {4 * trial_s / 3600:.2f}" in out

    assert main(spec, argv=["--dry-run"]) == 0  # the cached measurement, no new probe
    out = capsys.readouterr().out
    assert "calibrating" not in out and group_row(out)[-1] == "measured"
    assert main(spec, argv=["--dry-run", "--cpus-per-trial", "2"]) == 0  # other threads: not measured yet
    assert group_row(capsys.readouterr().out)[-1] == "guess"
