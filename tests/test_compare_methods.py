"""``sweeps/compare_methods.py --smoke-test``: a real local Ray sweep of every method (scratch, fine-tuning + LSG,
ORCA, MoNA, PaRe) on two tasks of different modalities, ending in the main table (methods as rows, tasks as
columns) with each method's budget."""

from __future__ import annotations

import pytest
from sweep_results import read_trials

from sweeps.compare_methods import main
from sweeps.options import Overrides
from sweeps.spec import build

pytestmark = pytest.mark.slow  # real sweeps or long fits: in CI, not in the fast tier


def test_compare_methods_smoke_sweep_prints_the_main_table(tmp_path, capsys):
    # in this process, like tune_task in tests/test_sweeps_smoke.py: a driver process of its own imports Ray,
    # Tune and the trackers again (8.6 CPU-s for a smoke launch's driver); tests/test_sweeps_help.py runs the
    # script by path
    code = main(["--smoke-test", "--storage-path", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-5000:]
    sweep = build("compare_methods", Overrides(smoke_test=True))
    experiment = tmp_path / sweep.name
    trials = read_trials(experiment)
    assert len(trials) == sweep.n_trials >= 4
    assert sorted(repr(sorted(t["config"].items())) for t in trials) == sorted(
        repr(sorted(t.items())) for t in sweep.trials
    )
    tasks = {t["config"]["task.name"] for t in trials}
    methods = {t["config"]["method"] for t in trials}
    assert tasks == {"digits", "dna"} and methods == {"scratch", "finetune", "orca", "mona", "pare"}
    for t in trials:
        first, last = t["rows"][0], t["rows"][-1]
        assert last["epoch"] == sweep.base["train.epochs"] and 0 <= last["test_error"] <= 1
        stage = {"orca": 2, "mona": 2 + 2}.get(t["config"]["method"], 0)  # align epochs; warm-up + meta steps
        assert last["optimizer_steps"] == stage + sweep.base["train.epochs"] * sweep.base["train.steps_per_epoch"]
        if t["config"]["method"] == "orca":  # the stage's metrics reach Ray with epoch 1
            assert first["align/after"] < first["align/before"]
        if t["config"]["method"] == "mona":
            assert first["mona/outer_after"] < first["mona/outer_before"]

    # the main table: one column per task, one row per method (x aux), printed and saved
    table = (experiment / "main_table.md").read_text()
    assert table in out
    header, _, *rows = [line for line in table.splitlines() if line.startswith("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    task = columns.index("digits")  # after the method's key columns (method, aux, align epochs)
    assert columns[task : task + 2] == ["digits", "dna"] and columns[task + 2].startswith("optimizer steps")
    assert sorted(row.strip("|").split("|")[0].strip() for row in rows) == sorted(methods)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for cell in cells[task : task + 2]:
            mean = cell.split(" (")[0]  # "(1/1 degenerate)" follows a mean at its majority baseline
            assert 0 <= float(mean.strip("*")) <= 1  # one seed: a mean, no ± std
        steps = [float(v.replace(",", "")) for v in cells[task + 2].split(" / ")]  # per task: digits / dna
        assert len(steps) == 2 and min(steps) >= sweep.base["train.epochs"] * sweep.base["train.steps_per_epoch"]
