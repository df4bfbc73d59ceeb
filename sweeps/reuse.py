"""Finished trials in a results store, found by key, so a sweep runs only what no earlier sweep ran.

Researchers extend sweeps ("I ran 5 seeds, now I want 10", "add one arm"); Ray Tune's restore is
for resuming the same experiment, not for a changed spec (ray-project/ray PR #33495, #30223). Here a
launch computes every trial's key (``sweeps.identity.trial_key``) and looks it up among the trials
already finished anywhere under the storage root; a match is reused, not re-run.

What counts as finished: a trial folder whose ``params.json`` holds a key and whose last
``result.json`` row holds ``test_error`` (written only after the last epoch, so a trial that crashed
for good, was stopped early, or is still running never matches). A fused trial (``sweeps.fused``) is
one finished trial per seed that has ``test_error``, under that seed's own key: the key its unfused
run has, so fused and unfused launches reuse each other's seeds. A folder that cannot be read is
skipped with a warning, never reused.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import pyarrow.fs

from sweeps.fused import TrialRecord, seed_records, seeds_of
from sweeps.identity import TRIAL_KEY

TAIL_BYTES = 1 << 16  # the last result row is at the end of result.json; rows are a few kB per seed at most


def finished_trials(storage_root: str, warn: Callable[[str], None] = print) -> dict[str, TrialRecord]:
    """Every finished trial under ``storage_root`` (``<root>/<experiment>/<trial>/``) by key.

    Trials without a key (older results) are ignored; unreadable folders are skipped and reported
    once through ``warn``. When two finished trials share a key, the first in path order wins.
    """
    fs, root = pyarrow.fs.FileSystem.from_uri(storage_root)
    found: dict[str, TrialRecord] = {}
    skipped: list[str] = []
    for experiment in sorted(_subdirs(fs, root)):
        for trial_dir in sorted(_subdirs(fs, experiment)):
            try:
                runs = _read_finished(fs, trial_dir)
            except (OSError, ValueError, KeyError, TypeError) as err:  # torn, partial or foreign files
                skipped.append(f"{trial_dir} ({type(err).__name__}: {err})")
                continue
            for run in runs:
                found.setdefault(run.config[TRIAL_KEY], run)
    if skipped:
        warn(
            f"warning: skipped {len(skipped)} unreadable trial folder(s) in {storage_root} (never reused); "
            f"first: {skipped[0]}"
        )
    return found


def _subdirs(fs: pyarrow.fs.FileSystem, path: str) -> list[str]:
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except OSError:
        return []
    return [i.path for i in infos if i.type == pyarrow.fs.FileType.Directory and not i.base_name.startswith(".")]


def _read_finished(fs: pyarrow.fs.FileSystem, trial_dir: str) -> list[TrialRecord]:
    """The trial's finished runs that carry a key (a fused trial's finished seeds, each under its own
    key); none if it is not a trial or not finished."""
    params = fs.get_file_info(f"{trial_dir}/params.json")
    if params.type == pyarrow.fs.FileType.NotFound:
        return []  # not a trial folder (e.g. analysis output)
    with fs.open_input_stream(params.path) as f:
        config = json.loads(f.readall())
    if TRIAL_KEY not in config:
        return []
    result = fs.get_file_info(f"{trial_dir}/result.json")
    if result.type == pyarrow.fs.FileType.NotFound:
        return []  # never reported
    with fs.open_input_file(result.path) as f:
        f.seek(max(0, result.size - TAIL_BYTES * len(seeds_of(config))))
        lines = [line for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return []
    last = json.loads(lines[-1])
    trial = TrialRecord(str(last.get("trial_id") or os.path.basename(trial_dir)), trial_dir, config, last, reused=True)
    return [run for run in seed_records(trial, trial.status) if "test_error" in run.last_result]
