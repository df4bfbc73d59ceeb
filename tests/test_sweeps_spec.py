"""Sweep specs and flags, before any Ray: trial expansion, precedence, and bad input named clearly."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from sweep_results import write_spec

from pare_core.config import TrialConfig
from sweeps import spec as spec_mod
from sweeps.cli import main, parse_args
from sweeps.options import Overrides, parse_seeds
from sweeps.packing import Node, pack
from sweeps.plan import describe
from sweeps.spec import SpecError, build
from sweeps.storage import storage_problem

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p.stem for p in spec_mod.SPEC_DIR.glob("*.yaml"))  # every spec, also ones added later


def arms(sweep) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for t in sweep.trials:
        out.setdefault(tuple(t[k] for k in sweep.swept), []).append(t["seed"])
    return out


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    for bad in ("a", "0-", "1,1", "-1", ""):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("smoke", [False, True])
def test_every_spec_builds_and_validates(name, smoke):
    sweep = build(name, Overrides(smoke_test=smoke))
    assert sweep.metric == "val_error" and sweep.mode == "min"
    if sweep.search["type"] == "grid":
        assert all(TrialConfig.from_flat(t).to_flat() == t for t in sweep.trials)
        assert sweep.scheduler["type"] == "fifo"  # ablations: every arm gets its full budget
    else:
        assert sweep.scheduler["type"] == "asha"
    if smoke:
        assert sweep.n_trials >= 4 and sweep.name.endswith("_smoke")
        assert sweep.base["train.epochs"] <= 3


def test_gate_ablation_default_grid_is_meaningful():
    sweep = build("ablate_gate", Overrides())
    table = arms(sweep)
    selections = [arm[sweep.swept.index("gate.selection")] for arm in table]
    assert {"none", "random", "threshold"} <= set(selections) and selections.count("topk") == 2  # official, pre-audit
    assert 4 <= len(table) <= 6 and all(len(seeds) >= 5 for seeds in table.values())
    assert {t["method"] for t in sweep.trials} == {"pare"}


def test_precedence_base_file_arms_seeds_smoke_set(tmp_path):
    base = tmp_path / "tuned.yaml"
    base.write_text("train.lr: 0.002\ngate.threshold: 0.9\ntrain.epochs: 7\n")
    sweep = build("ablate_gate", Overrides(smoke_test=True, base=str(base), seeds=[3, 4], sets=["train.batch_size=8"]))
    for t in sweep.trials:
        assert t["train.lr"] == 0.002  # --base over the spec's base
        assert t["train.epochs"] == 2  # smoke overrides over --base
        assert t["train.batch_size"] == 8  # --set over everything, typed by the config
        assert t["seed"] in (3, 4)
    assert {t["gate.threshold"] for t in sweep.trials if t["gate.selection"] == "threshold"} == {0.5}  # arm over --base
    assert {t["gate.threshold"] for t in sweep.trials if t["gate.selection"] == "random"} == {0.9}


@pytest.mark.parametrize(
    "sets, message",
    [
        (["gate.treshold=0.5"], r"--set: unknown config key 'gate.treshold': allowed keys are .*gate.threshold"),
        (
            ["gate.selection=best"],
            r"--set: gate.selection='best' is invalid: allowed values are topk, threshold, random, none",
        ),
        (["train.epochs=ten"], r"--set: train.epochs='ten' has the wrong type: allowed values are of type int"),
        (["gate.threshold"], r"--set 'gate.threshold' is invalid: expected KEY=VALUE"),
        (["seed=3"], r"use --seeds"),
        (["gate.selection=random"], r"identical configs"),  # collapses the none, random, topk and threshold arms
    ],
)
def test_bad_set_is_named(sets, message):
    with pytest.raises(SpecError, match=message):
        build("ablate_gate", Overrides(sets=sets))


def test_bad_yaml_is_named(tmp_path, monkeypatch):
    bad_base = tmp_path / "base.yaml"
    bad_base.write_text("curriculum.start: 1.5\n")
    with pytest.raises(
        SpecError,
        match=rf"--base {bad_base}: curriculum.start=1.5 is out of range: allowed values "
        r"are in \[0, 1\]",
    ):
        build("ablate_curriculum", Overrides(base=str(bad_base)))
    monkeypatch.setattr(spec_mod, "SPEC_DIR", tmp_path)
    (tmp_path / "typo.yaml").write_text("base: {method: pare}\nseedz: [0]\n")
    with pytest.raises(SpecError, match=r"unknown field 'seedz': allowed fields are .*seeds"):
        build("typo", Overrides())
    (tmp_path / "badarm.yaml").write_text("arms:\n  - {gate.selection: topk}\n  - {curriculum.shape: zigzag}\n")
    with pytest.raises(
        SpecError,
        match=r"badarm.yaml arms.shape=zigzag: curriculum.shape='zigzag' is invalid: allowed values "
        r"are linear, cosine, step, exp, constant",
    ):
        build("badarm", Overrides())
    (tmp_path / "badspace.yaml").write_text(
        "search: {type: optuna, num_samples: 4}\nspace: {gate.threshold: {uniform: [0.2, 1.2]}}\n"
    )
    with pytest.raises(SpecError, match=r"space.gate.threshold: gate.threshold=1.2 is out of range"):
        build("badspace", Overrides())


def test_bad_input_fails_before_ray(tmp_path, capsys):
    rc = main("ablate_gate", argv=["--set", "gate.threshold=2", "--storage-path", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "gate.threshold=2.0 is out of range: allowed values are in [0, 1]" in err
    assert not ray.is_initialized() and not any(tmp_path.iterdir())


def test_bad_input_by_script_path_exits_nonzero_fast(tmp_path):
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "sweeps/ablate_gate.py", "--set", "gate.selection=best", "--storage-path", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "gate.selection='best' is invalid: allowed values are topk, threshold, random, none" in proc.stderr
    assert not any(tmp_path.iterdir())
    assert time.perf_counter() - start < 60


def test_dry_run_prints_table_and_gpu_hours(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PARE_DATA", str(tmp_path))  # no measurement cached: the estimate is the spec's guess
    assert main("ablate_gate", argv=["--dry-run", "--seeds", "0-2", "--gpus-per-trial", "0.5"]) == 0
    out = capsys.readouterr().out
    sweep = build("ablate_gate", Overrides(seeds=[0, 1, 2]))
    assert (
        len([line for line in out.splitlines() if line.split("|")[1:2] and line.split("|")[1].strip().isdigit()])
        == sweep.n_trials
    )  # one row per trial
    hours = sweep.n_trials * sweep.base["train.epochs"] * sweep.gpu_s_per_epoch * 0.5 / 3600
    assert f"estimated GPU-hours: {hours:.2f}" in out and f"{len(arms(sweep))} arms x 3 seeds" in out
    assert re.search(r"\|\s*guess\s*\|", out) and "add --calibrate" in out
    assert not ray.is_initialized()
    assert describe(build("tune_task", Overrides())).count("searched key") == 1


def test_resume_refuses_flags_that_change_trials():
    with pytest.raises(SystemExit):
        parse_args("x", "", ["--resume", "--set", "train.lr=0.1"])
    assert parse_args("x", "", ["--resume", "--name", "n"]).launch.resume


def test_storage_rule():
    mounts = "/dev/sda1 / ext4 rw 0 0\nfs-1.efs:/ /mnt/efs nfs4 rw 0 0\ns3fs /mnt/s3 fuse.s3fs rw 0 0\n"
    one, many = {"127.0.0.1"}, {"10.0.0.1", "10.0.0.2"}
    assert storage_problem("/home/u/results", one, mounts) is None  # one machine: its disk is shared
    assert storage_problem("s3://bucket/x", many, mounts) is None
    assert storage_problem("/mnt/efs/pare", many, mounts) is None
    assert storage_problem("/mnt/s3/pare", many, mounts) is None
    problem = storage_problem("/home/u/results", many, mounts)
    assert "local folder (ext4 filesystem)" in problem and "s3://" in problem


# What an AUTO value resolves from (pare_core.config.resolve): arms that differ in these keys may differ
# in the resolved value too; that difference is part of what the arm ablates.
RESOLVED_FROM = {
    "mix.weight": {"task.name"},
    "gate.warm_frac": {"task.name"},
    "curriculum.end": {"task.name"},
    "align.epochs": {"method"},
    "align.lr": {"method", "train.lr"},
}


def _declared(name: str, smoke: bool) -> set[str]:
    """The keys the spec itself says it sweeps: every key of its arms and its grid."""
    raw = spec_mod.load_yaml(spec_mod.spec_path(name))
    part = {**raw, **(raw.get("smoke") or {})} if smoke else raw
    arms = part.get("arms") or {}
    return {k for arm in (arms.values() if isinstance(arms, dict) else arms) for k in arm if k != "resources"} | set(
        part.get("grid") or {}
    )


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("smoke", [False, True])
def test_arms_with_one_seed_differ_only_in_what_the_spec_sweeps(name, smoke):
    from pare_core.config import resolve
    from pare_core.tasks import task_spec

    sweep = build(name, Overrides(smoke_test=smoke))
    declared = _declared(name, smoke)
    by_seed: dict[int, list[dict]] = {}
    for trial in sweep.trials:
        task = task_spec(trial["task.name"])
        by_seed.setdefault(trial["seed"], []).append(
            resolve(TrialConfig.from_flat(trial), task.kind, task.layout).to_flat()
        )
    for trials in by_seed.values():
        for a, b in itertools.combinations(trials, 2):
            differ = {k for k in a if a[k] != b[k]}
            derived = {k for k in differ if RESOLVED_FROM.get(k, set()) & declared & differ}
            assert differ - derived <= declared, (name, differ - derived - declared)


def test_arms_carry_their_own_resources_and_the_flags_override_them():
    sweep = build("ablate_backbone", Overrides())
    by_backbone = {t["backbone.name"]: sweep.trial_resources(t) for t in sweep.trials}
    assert by_backbone == {"minilm": {"cpu": 2.0, "gpu": 0.5}, "efficientnet_lite0": {"cpu": 2.0, "gpu": 0.25}}
    gpu_only = build("ablate_backbone", Overrides(gpus_per_trial=1))  # one flag overrides its kind only
    assert {json.dumps(gpu_only.trial_resources(t)) for t in gpu_only.trials} == {json.dumps({"cpu": 2.0, "gpu": 1.0})}
    both = build("ablate_backbone", Overrides(gpus_per_trial=0, cpus_per_trial=1))
    assert both.arm_resources == [] and both.resources == {"cpu": 1.0, "gpu": 0.0}
    smoke = build("ablate_backbone", Overrides(smoke_test=True))  # smoke arms fit a CPU-only machine
    assert smoke.arm_resources == [] and smoke.resources["gpu"] == 0


@pytest.mark.parametrize(
    "search, message",
    [
        (
            {"max_concurent": 2},
            r"search \(type grid\): unknown field 'max_concurent': allowed fields are max_concurrent, type",
        ),
        ({"max_concurrent": 0}, r"search.max_concurrent=0 is invalid: allowed values are integers >= 1"),
        ({"type": "optuna"}, r"search: type optuna needs num_samples"),
        (
            {"type": "optuna", "num_samples": 2.5},
            r"search.num_samples=2.5 is invalid: allowed values are integers >= 1",
        ),
    ],
)
def test_bad_search_is_named(tmp_path, search, message):
    space = {"space": {"train.lr": {"loguniform": [1e-4, 1e-2]}}} if search.get("type") == "optuna" else {}
    spec = write_spec(tmp_path / "search.yaml", search=search, **space)
    with pytest.raises(SpecError, match=message):
        build(str(spec), Overrides())


def test_the_recorded_command_reruns_the_launch(monkeypatch):
    """sweep.json's provenance keeps a command line that a shell reruns: the process's own, or, when
    ``main`` is called with ``argv`` in a process of its own (a notebook, a test), the equivalent one;
    that process's ``sys.argv`` is not the launch's."""
    flags = ["--seeds", "0-1", "--set", "gate.threshold=0.7", "--name", "two words"]
    script = parse_args("sweeps/ablate_gate.py", "", flags).launch.command
    assert script == "python sweeps/ablate_gate.py --seeds 0-1 --set gate.threshold=0.7 --name 'two words'"
    assert (
        parse_args("python -m sweeps my.yaml", "", flags[:2]).launch.command == "python -m sweeps my.yaml --seeds 0-1"
    )
    monkeypatch.setattr(sys, "argv", ["sweeps/ablate_gate.py", *flags])
    assert parse_args("sweeps/ablate_gate.py", "", None).launch.command.endswith(script.removeprefix("python"))


def test_a_grid_runs_at_most_max_concurrent_trials_at_once(tmp_path):
    node = Node("here", cpus=8, gpus=0)
    for search, at_once in (({}, 2), ({"max_concurrent": 1}, 1)):
        spec = write_spec(tmp_path / "grid.yaml", grid={"train.lr": [1e-3, 2e-3]}, search=search)
        assert pack(build(str(spec), Overrides()), node).trials == at_once


@pytest.mark.parametrize(
    "resources, message",
    [
        ({"cpu": 0}, r"arms.fast: resources: cpu=0 is invalid: allowed values are numbers > 0"),
        ({"gpu": 1.5}, r"arms.fast: resources: gpu=1.5 is invalid: allowed values are 0, a fraction of one GPU"),
        ({"gpus": 1}, r"arms.fast: resources: unknown field 'gpus': allowed fields are cpu, gpu"),
    ],
)
def test_bad_arm_resources_are_named(tmp_path, resources, message):
    spec = write_spec(
        tmp_path / "res.yaml", arms={"slow": {"train.lr": 1e-3}, "fast": {"train.lr": 2e-3, "resources": resources}}
    )
    with pytest.raises(SpecError, match=message):
        build(str(spec), Overrides())


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--storage-path", "/proc/x"],
            "error: --storage-path /proc/x is not usable: [Errno 2] Cannot create directory '/proc/x'",
        ),
        (["--cpus-per-trial", "0"], "error: argument --cpus-per-trial: '0' is invalid: allowed values are numbers > 0"),
        (
            ["--gpus-per-trial", "1.5"],
            "error: argument --gpus-per-trial: '1.5' is invalid: allowed values are 0, a fraction of one GPU",
        ),
    ],
)
def test_bad_launch_input_is_one_clear_line_before_ray(argv, message, capsys):
    try:
        rc = main("ablate_gate", argv=["--smoke-test", *argv])
    except SystemExit as exit:  # a malformed flag: argparse prints usage + the error line, exit 2
        rc = exit.code
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert any(message in line for line in err.splitlines())  # the whole reason on one line
    assert not ray.is_initialized()
