"""The private local Ray a sweep starts without ``--address``: on loopback only, and refusing trials it cannot fit.

Without ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` in the environment (conftest sets it for the other
tests; here it is removed), Ray on Linux binds the machine's network address: the runner must keep
every service of its private Ray on 127.0.0.1 by itself.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import ray
from sweep_results import SERIAL, read_trials, write_spec

from sweeps.cli import main

ROOT = Path(__file__).resolve().parents[1]


def listening(pid: int) -> set[tuple[str, str]]:
    """(process name, address) of every listening TCP socket of ``pid`` and its descendants."""
    try:
        procs = {p.pid: p.name() for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]}
    except psutil.NoSuchProcess:
        return set()
    return {
        (procs[c.pid], c.laddr.ip)
        for c in psutil.net_connections("tcp")
        if c.pid in procs and c.status == psutil.CONN_LISTEN
    }


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return address.is_loopback or (
        address.version == 6 and address.ipv4_mapped is not None and address.ipv4_mapped.is_loopback
    )


@pytest.mark.slow
def test_local_sweep_keeps_every_ray_service_on_loopback(tmp_path):
    spec = write_spec(tmp_path / "loop.yaml", arms=[{"train.lr": 1e-3}, {"train.lr": 2e-3}], seeds=[0], **SERIAL)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeps", str(spec), "--storage-path", str(tmp_path / "res")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 240
    while driver.poll() is None and time.monotonic() < deadline:  # sample the sockets while the sweep runs
        seen |= listening(driver.pid)
        time.sleep(0.5)
    driver.kill()
    out = driver.communicate()[0]
    assert driver.returncode == 0, out[-5000:]
    names = {name for name, _ in seen}
    assert {"gcs_server", "raylet"} <= names, seen  # Ray's control plane was seen listening ...
    assert all(is_loopback(ip) for _, ip in seen), seen  # ... and nothing listened beyond loopback
    trials = read_trials(tmp_path / "res" / "loop")
    assert len(trials) == 2 and {row["node_ip"] for t in trials for row in t["rows"]} == {"127.0.0.1"}


@pytest.mark.slow
def test_trials_the_machine_cannot_fit_are_refused_before_they_start(tmp_path, capsys):
    assert main("ablate_backbone", argv=["--storage-path", str(tmp_path)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: trials ask for 2 CPU, 0.5 GPU (arm minilm, method=scratch)")
    assert "--gpus-per-trial 0 runs on the CPU" in line
    assert not list((tmp_path / "ablate_backbone").glob("*/params.json"))  # no trial started
    assert not ray.is_initialized()  # and the Ray it started to find that out is stopped
