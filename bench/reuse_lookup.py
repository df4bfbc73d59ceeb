"""What reuse costs at launch: the lookup of finished trials in a store of ~1,000 trials.

Before a sweep starts, the runner computes every trial's key (``sweeps.identity.trial_key``) and
scans the storage root for finished trials (``sweeps.reuse.finished_trials``). This builds a local
store of N finished trial folders shaped like Tune's (params.json with a key, a 12-row result.json,
a checkpoint folder), then times both steps for a 1,000-trial sweep. Target: well under a second.

Not a test (nothing asserted); run by hand:  python bench/reuse_lookup.py [--trials 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pare_core.config import TrialConfig
from sweeps.identity import CODE_KEY, TRIAL_KEY, code_version, trial_key
from sweeps.reuse import finished_trials


def make_store(root: Path, configs: list[dict], version: str, per_experiment: int = 50) -> None:
    for i, config in enumerate(configs):
        trial = root / f"sweep_{i // per_experiment:03d}" / f"t{i:05d}_seed={config['seed']}"
        (trial / "checkpoint_000000").mkdir(parents=True)
        (trial / "params.json").write_text(
            json.dumps({**config, TRIAL_KEY: trial_key(config, version), CODE_KEY: version})
        )
        rows = [{"epoch": e, "train_loss": 0.5, "val_error": 0.1, "trial_id": f"t{i:05d}"} for e in range(1, 13)]
        rows[-1]["test_error"] = 0.12
        (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    base = TrialConfig.from_flat({"method": "pare"}).to_flat()
    arms = ({"gate.selection": s} for s in ("none", "random", "topk", "threshold"))
    arms = list(arms)
    configs = [{**base, **arms[i % len(arms)], "seed": i // len(arms)} for i in range(args.trials)]
    version = code_version()["version"]
    with tempfile.TemporaryDirectory() as tmp:
        make_store(Path(tmp), configs, version)
        keys_s, scan_s = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            keys = [trial_key(c, version) for c in configs]
            keys_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            found = finished_trials(tmp)
            scan_s.append(time.perf_counter() - start)
        assert sum(k in found for k in keys) == args.trials
    keys_med, scan_med = statistics.median(keys_s), statistics.median(scan_s)
    print(f"| step | {args.trials} trials, median of {args.repeats} (s) |\n|---|---|")
    print(f"| keys of every trial (resolve + hash) | {keys_med:.3f} |")
    print(f"| scan of the store (params.json + tail of result.json) | {scan_med:.3f} |")
    print(f"| total launch overhead | {keys_med + scan_med:.3f} |")
    print(json.dumps({"trials": args.trials, "keys_s": keys_med, "scan_s": scan_med}))


if __name__ == "__main__":
    main()
