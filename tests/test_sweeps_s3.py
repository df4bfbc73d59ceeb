"""Results on S3, against a real S3 server: moto's server mode on 127.0.0.1, started by the test.

The sweep, Ray's trial workers and the analysis all find the server the way they would find AWS:
through the standard variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...), read by pyarrow's
S3 filesystem, which Ray's storage and ``sweeps.storage`` both use. Nothing leaves the machine: the
endpoint is 127.0.0.1 and the instance-metadata lookup is off.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Iterator

import pyarrow.fs
import pytest
import ray
from sweep_results import SERIAL, TINY, read_trials, wait_for, write_spec
from tcp_relay import Relay

from analysis.load import load
from sweeps import storage
from sweeps.cli import main

BUCKET = "pare-test-sweeps"
OUTAGE_S = 20  # the outage
EPOCHS = 12  # ~0.6 s each: the trials still run when the first checkpoint cuts S3 off


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=2).close()
        return True
    except urllib.error.HTTPError:  # any HTTP answer: the server is up
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """The endpoint of a moto S3 server holding an empty BUCKET; AWS variables point at it meanwhile."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(endpoint), 30, "the moto S3 server")
        with pytest.MonkeyPatch.context() as env:
            for key, value in {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "pare-test",
                "AWS_SECRET_ACCESS_KEY": "pare-test",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true",
            }.items():
                env.setenv(key, value)
            pyarrow.fs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True).create_dir(BUCKET)
            yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def iam_enforced(endpoint: str) -> Iterator[None]:
    """Make the server check credentials (moto accepts any by default), as real S3 does."""

    def post(count: str) -> None:
        urllib.request.urlopen(
            urllib.request.Request(
                f"{endpoint}/moto-api/reset-auth",
                data=count.encode(),
                method="POST",
                headers={"Content-Type": "text/plain"},
            ),
            timeout=10,
        ).close()

    post("0")
    try:
        yield
    finally:
        post("inf")


def objects(uri: str) -> dict[str, object]:
    """Every object under ``uri``: its key relative to ``uri`` -> when it was last written."""
    fs, root = pyarrow.fs.FileSystem.from_uri(uri)
    return {
        info.path[len(root) + 1 :]: info.mtime
        for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
        if info.type == pyarrow.fs.FileType.File
    }


@pytest.mark.slow
def test_sweep_writes_checkpoints_to_s3_resumes_from_them_and_analysis_reads_them(s3, tmp_path):
    # fail_at_epoch 2 with no retries: that trial ends in error after its epoch-1 checkpoint; --resume
    # continues it from that checkpoint (fit only fails when not resumed), read back from the bucket.
    spec = write_spec(
        tmp_path / "s3.yaml",
        arms=[{"runtime.fail_at_epoch": -1}, {"runtime.fail_at_epoch": 2}],
        seeds=[0],
        max_failures=0,
        **SERIAL,
    )
    storage_path = f"s3://{BUCKET}/sweeps"
    assert main(str(spec), argv=["--storage-path", storage_path]) == 1  # 1: a trial failed
    experiment = f"{storage_path}/s3"
    stored = objects(experiment)
    assert {"sweep.json", "summary.md"} <= set(stored) and any(k.startswith("experiment_state-") for k in stored)
    assert len({k.split("/")[0] for k in stored if "/checkpoint_" in k}) == 2  # both trials checkpointed there

    assert main(str(spec), argv=["--storage-path", storage_path, "--resume"]) == 0
    results = load(experiment)  # straight from s3://, no sync by hand
    trials = results.trials.set_index("config/runtime.fail_at_epoch")
    assert list(trials["status"]) == ["done", "done"] and list(trials["epochs"]) == [3, 3]
    assert trials.loc[2, "retries"] >= 1 and trials.loc[-1, "retries"] == 0
    assert trials.loc[2, "test_error"] == trials.loc[-1, "test_error"]  # resumed = the uninterrupted run
    curve = results.curves[results.curves["trial_id"] == trials.loc[2, "trial_id"]]
    assert list(curve["epoch"]) == [1, 2, 3]
    finished = f"{trials.loc[-1, 'trial_dir']}/result.json"  # the trial that had finished was not run again
    assert objects(experiment)[finished] == stored[finished]
    assert "2 trials: 2 done" in storage.read_text(f"{experiment}/summary.md")


@pytest.mark.slow
def test_sweep_outlives_an_s3_outage_and_no_epoch_is_lost_or_repeated(s3, tmp_path, monkeypatch):
    # The sweep reaches S3 through a relay; once the first checkpoint is in the bucket the relay is cut
    # for OUTAGE_S (connections refused, open ones reset) while moto keeps what it holds, then restored.
    relay = Relay(int(s3.rpartition(":")[2]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{relay.port}")
    spec = write_spec(tmp_path / "outage.yaml", base={**TINY["base"], "train.epochs": EPOCHS}, seeds=[0])
    experiment = f"s3://{BUCKET}/outage/outage"
    moto = pyarrow.fs.S3FileSystem(endpoint_override=s3)  # the server itself, not through the relay
    outage: list[float] = []

    def cut_at_first_checkpoint() -> None:
        wait_for(
            lambda: any(
                "/checkpoint_" in i.path
                for i in moto.get_file_info(
                    pyarrow.fs.FileSelector(f"{BUCKET}/outage/outage", recursive=True, allow_not_found=True)
                )
            ),
            120,
            "the first checkpoint in the bucket",
        )
        outage.append(time.time())
        relay.cut()
        time.sleep(OUTAGE_S)
        relay.restore()
        outage.append(time.time())

    cutter = threading.Thread(target=cut_at_first_checkpoint, daemon=True)
    cutter.start()
    try:
        rc = main(str(spec), argv=["--storage-path", f"s3://{BUCKET}/outage"])
    finally:
        cutter.join()
        relay.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    trials = read_trials(storage.download(experiment))
    assert rc == 0
    assert len(trials) == 1
    for t in trials:  # every curve whole, no epoch reported twice
        assert [r["epoch"] for r in t["rows"]] == list(range(1, EPOCHS + 1)), t["dir"]
    cut, restored = outage  # the outage fell mid-trial: reports before it and after it (whole seconds)
    assert any(t["rows"][0]["timestamp"] <= cut and t["rows"][-1]["timestamp"] >= restored for t in trials)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing bucket", "is not usable: Bucket 'no-such-bucket' not found"),
        (
            "wrong credentials",
            "is not usable: When testing for existence of bucket 'pare-test-sweeps': AWS Error ACCESS_DENIED",
        ),
    ],
)
def test_unusable_s3_storage_fails_before_ray_with_one_line(s3, monkeypatch, capsys, case, expected):
    bucket = "no-such-bucket" if case == "missing bucket" else BUCKET
    argv = ["--smoke-test", "--storage-path", f"s3://{bucket}/sweeps"]
    with iam_enforced(s3) if case == "wrong credentials" else contextlib.nullcontext():
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKEY" if case == "wrong credentials" else "pare-test")
        rc = main("ablate_gate", argv=argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: --storage-path s3://") and expected in err
    assert not ray.is_initialized()
