"""Bad launches end before Ray starts (sweeps/preflight.py): exit 2, one ``error:`` line naming the
flag or variable, no traceback, in seconds. Real sockets and a real HTTP server; no Ray is started."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sweeps import preflight
from sweeps.cli import main
from sweeps.options import parse_seeds

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 30  # the bound for a refused launch


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "flags, env, names",
    [
        (["--address", "127.0.0.1:{port}"], {}, "--address"),  # hung > 120 s in ray.init before
        (["--tracker", "mlflow"], {"MLFLOW_TRACKING_URI": "file:///{tmp}/mlruns"}, "MLFLOW_TRACKING_URI"),
        (["--name", "../outside"], {}, "--name"),
    ],
    ids=["dead-address", "mlflow-file-store", "name-escapes"],
)
def test_bad_launch_is_refused_in_one_line_before_ray(flags, env, names, tmp_path):
    fill = {"port": closed_port(), "tmp": tmp_path}
    ray_tmp = tmp_path / "ray"  # Ray puts every session it starts under RAY_TMPDIR
    env = {
        **os.environ,
        "RAY_TMPDIR": str(ray_tmp),
        "PYTHONPATH": str(ROOT),
        **{k: v.format(**fill) for k, v in env.items()},
    }
    env.pop("MLFLOW_ALLOW_FILE_STORE", None)
    argv = [f.format(**fill) for f in flags]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sweeps", "ablate_gate", "--smoke-test", "--storage-path", str(tmp_path / "r"), *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S + 30,
    )
    took = time.monotonic() - start
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert took < LIMIT_S, took
    assert not ray_tmp.exists()  # Ray never started
    assert not (tmp_path / "outside").exists()


def test_name_must_be_one_folder_under_the_storage_path():
    for bad in ["", ".", "..", "a/b", "/abs", "..\\x", "x" * (preflight.MAX_NAME_CHARS + 1)]:
        assert "--name" in preflight.name_problem(bad), bad
    assert preflight.name_problem("ablate_gate_smoke") is None


def test_address_is_refused_only_when_nothing_answers():
    port = closed_port()
    assert "--address" in preflight.address_problem(f"127.0.0.1:{port}")
    assert "--address" in preflight.address_problem(f"ray://127.0.0.1:{port}")
    assert "malformed" in preflight.address_problem("127.0.0.1:http")
    with socket.socket() as listener:  # something that accepts: a head's GCS port, as far as TCP tells
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert preflight.address_problem(f"127.0.0.1:{listener.getsockname()[1]}") is None
    assert preflight.address_problem(None) is None and preflight.address_problem("auto") is None


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


def test_mlflow_uri_file_store_and_server(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in [f"file://{tmp_path}/mlruns", str(tmp_path / "mlruns")]:
        assert "MLFLOW_ALLOW_FILE_STORE=true" in preflight.mlflow_problem(uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-out is honoured
    assert preflight.mlflow_problem(f"file://{tmp_path}/mlruns") is None
    assert preflight.mlflow_problem(f"sqlite:///{tmp_path}/mlflow.db") is None
    assert "does not answer" in preflight.mlflow_problem(f"http://127.0.0.1:{closed_port()}")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert preflight.mlflow_problem(f"http://127.0.0.1:{server.server_port}") is None
    finally:
        server.shutdown()


def test_seed_ranges_are_bounded_before_they_are_built():
    with pytest.raises(ValueError, match="more than"):
        parse_seeds("0-999999999999")  # refused at once, not after a list of a trillion ints
    with pytest.raises(ValueError, match="more than"):
        parse_seeds("0-999,1000-1005")
    assert len(parse_seeds("0-999")) == 1000


def test_a_dry_run_prints_the_plan_then_what_the_launch_would_refuse(tmp_path, capsys):
    # the same checks as a launch (exit 2, one line), after the trial table; no Ray starts either way
    dead = f"127.0.0.1:{closed_port()}"
    for flags, names in [(["--address", dead], "--address"), (["--storage-path", "/proc/pare"], "--storage-path")]:
        assert main("ablate_gate", argv=["--dry-run", "--smoke-test", "--storage-path", str(tmp_path), *flags]) == 2
        out, err = capsys.readouterr()
        assert "trials" in out and err.count("\n") == 1 and err.startswith(f"error: {names}"), err
    fresh = tmp_path / "new" / "results"
    assert main("ablate_gate", argv=["--dry-run", "--smoke-test", "--storage-path", str(fresh)]) == 0
    assert not (tmp_path / "new").exists()  # the storage was tried, and left as it was
