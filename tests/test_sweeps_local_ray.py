"""The private local Ray a sweep starts without ``--address``: on loopback only, and refusing trials it cannot fit.

Without ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` in the environment, Ray on Linux binds the machine's network
address: the runner must keep every service of its private Ray on 127.0.0.1 by itself. The ``smoke_sweep``
fixture runs the gate ablation by path without the variable (conftest sets it for the tests' own
processes), as from a user's shell, and samples the sockets of the driver and every process under it while
the sweep runs; that sweep is shared with the tests that read its results.
"""

from __future__ import annotations

import json

import pytest
import ray
from ray_sockets import is_loopback
from sweep_results import read_trials

from sweeps.cli import main
from sweeps.options import Overrides
from sweeps.spec import build


@pytest.mark.slow
def test_local_sweep_keeps_every_ray_service_on_loopback(smoke_sweep):
    storage = smoke_sweep("ablate_gate")
    seen = {tuple(s) for s in json.loads((storage.parent / "run.json").read_text())["listening"]}
    names = {name for name, _ in seen}
    assert {"gcs_server", "raylet"} <= names, seen  # Ray's control plane was seen listening ...
    assert all(is_loopback(ip) for _, ip in seen), seen  # ... and nothing listened beyond loopback
    sweep = build("ablate_gate", Overrides(smoke_test=True))
    trials = read_trials(storage / sweep.name)
    assert len(trials) == sweep.n_trials and {row["node_ip"] for t in trials for row in t["rows"]} == {"127.0.0.1"}


@pytest.mark.slow
def test_trials_the_machine_cannot_fit_are_refused_before_they_start(tmp_path, capsys):
    assert main("ablate_backbone", argv=["--storage-path", str(tmp_path)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: trials ask for 2 CPU, 0.5 GPU (arm minilm, method=scratch)")
    assert "--gpus-per-trial 0 runs on the CPU" in line
    assert not list((tmp_path / "ablate_backbone").glob("*/params.json"))  # no trial started
    assert not ray.is_initialized()  # and the Ray it started to find that out is stopped
