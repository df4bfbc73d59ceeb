"""The footer every table and figure carries: which trials, which code, which configs.

A table read months later, or pasted into a paper, must say what produced it. The footer names the
number of trials (and how many were reused from earlier sweeps), the code version(s) they ran
(``code_version`` in each trial's params.json: the commit, plus a hash of uncommitted changes), and
a hash of their configs. Trials of different code versions in one table are flagged loudly: their
differences may come from the code, not from the ablated keys.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from analysis.load import CONFIG
from sweeps.identity import CODE_KEY


def config_hash(trials: pd.DataFrame) -> str:
    """One short, order-free hash of the trials' configs: equal hashes mean the same set of runs."""
    columns = sorted(c for c in trials.columns if c.startswith(CONFIG))
    lines = sorted(
        json.dumps({c: trials.at[i, c] for c in columns}, sort_keys=True, default=repr) for i in trials.index
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def code_versions(trials: pd.DataFrame) -> list[str]:
    """The distinct code versions of the trials, in first-seen order (trials from before they were
    recorded have none)."""
    if CODE_KEY not in trials:
        return []
    return list(dict.fromkeys(v for v in trials[CODE_KEY] if isinstance(v, str) and v))


def warning(trials: pd.DataFrame) -> str | None:
    """A loud sentence when the trials ran different code, else None."""
    versions = code_versions(trials)
    if len(versions) <= 1:
        return None
    return (
        f"WARNING: these {len(trials)} trials ran {len(versions)} different code versions "
        f"({', '.join(versions)}): differences between arms may come from the code, not from the swept keys."
    )


def footer(trials: pd.DataFrame) -> str:
    """``Provenance: 25 trials (5 reused); code 1a2b3c4d5e6f; configs 0f1e2d3c4b5a.``"""
    reused = int(trials["reused"].sum()) if "reused" in trials else 0
    versions = code_versions(trials)
    code = ", ".join(versions) if versions else "not recorded"
    text = f"Provenance: {len(trials)} trials ({reused} reused); code {code}; configs {config_hash(trials)}."
    loud = warning(trials)
    return f"{text} {loud}" if loud else text
