"""Does the pretrained body transfer, and does PaRe help? Paired seeds on the default task.

Not a test: runs finetune (pretrained), scratch (same model, random init) and pare for N paired seeds
(same split, same batch order per seed) and prints test error (%) with the LR / 1-NN / majority
baselines of the same splits, and paired differences. Whatever it shows is reported as it is.

    python bench/transfer.py [--seeds 5] [--set task.name=dna] [--methods finetune,scratch,pare]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pare_core.config import parse_sets  # noqa: E402
from pare_core.config import TrialConfig  # noqa: E402
from pare_core.train import fit  # noqa: E402

PAIRS = (("finetune", "scratch", "pretrained vs scratch"), ("pare", "finetune", "pare vs finetune"))


def mean_std(values: list[float]) -> str:
    pct = [100 * v for v in values]
    return f"{statistics.mean(pct):.1f} ± {statistics.stdev(pct) if len(pct) > 1 else 0.0:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default="finetune,scratch,pare")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    overrides = parse_sets(args.set)
    methods = args.methods.split(",")
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for seed in range(args.seeds):
        for method in methods:
            start = time.perf_counter()
            final = fit(TrialConfig.from_flat({**overrides, "method": method, "seed": seed}))
            final["run_s"] = time.perf_counter() - start
            runs[method].append(final)
            print(json.dumps({"method": method, "seed": seed, "test_error": final["test_error"],
                              "val_error": final["val_error"], "run_s": round(final["run_s"], 1)}), flush=True)
    cfg = TrialConfig.from_flat(overrides)
    print(f"\ntask {cfg.task.name}, backbone {cfg.backbone.name}, body={cfg.finetune.body}, epochs {cfg.train.epochs}, "
          f"{args.seeds} paired seeds; test error % (lower is better), mean ± std over seeds")
    print("| arm | test error % | val error % | s per run |")
    print("|---|---|---|---|")
    for method, finals in runs.items():
        print(f"| {method} | {mean_std([f['test_error'] for f in finals])} | {mean_std([f['val_error'] for f in finals])} "
              f"| {statistics.mean(f['run_s'] for f in finals):.0f} |")
    per_seed = next(iter(runs.values()))  # every method's run of a seed sees the same split and baselines
    for name in sorted(k for k in per_seed[0] if k.startswith("baseline/")):
        print(f"| {name} | {mean_std([f[name] for f in per_seed])} | | |")
    print("\n| comparison | mean paired diff (pts, negative = first is better) | per seed | first better |")
    print("|---|---|---|---|")
    for a, b, label in PAIRS:
        if a in runs and b in runs:
            diffs = [100 * (x["test_error"] - y["test_error"]) for x, y in zip(runs[a], runs[b])]
            wins = sum(d < 0 for d in diffs)
            print(f"| {label} | {statistics.mean(diffs):+.1f} | {', '.join(f'{d:+.1f}' for d in diffs)} | {wins}/{len(diffs)} |")


if __name__ == "__main__":
    sys.exit(main())
