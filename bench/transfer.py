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

import numpy as np  # noqa: E402

from analysis.stats import paired_test  # noqa: E402
from pare_core.config import TrialConfig, parse_sets  # noqa: E402
from pare_core.formatting import markdown_table, mean_std_of  # noqa: E402
from pare_core.train import fit  # noqa: E402

PAIRS = (("finetune", "scratch", "pretrained vs scratch"), ("pare", "finetune", "pare vs finetune"))


def pct(values: list[float]) -> str:
    return mean_std_of(values, digits=1, scale=100)


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
            print(
                json.dumps(
                    {
                        "method": method,
                        "seed": seed,
                        "test_error": final["test_error"],
                        "val_error": final["val_error"],
                        "run_s": round(final["run_s"], 1),
                    }
                ),
                flush=True,
            )
    cfg = TrialConfig.from_flat(overrides)
    print(
        f"\ntask {cfg.task.name}, backbone {cfg.backbone.name}, body={cfg.finetune.body}, epochs {cfg.train.epochs}, "
        f"{args.seeds} paired seeds; test error % (lower is better), mean ± std over seeds"
    )
    rows = [
        [
            method,
            pct([f["test_error"] for f in finals]),
            pct([f["val_error"] for f in finals]),
            f"{statistics.mean(f['run_s'] for f in finals):.0f}",
        ]
        for method, finals in runs.items()
    ]
    per_seed = next(iter(runs.values()))  # every method's run of a seed sees the same split and baselines
    rows += [
        [name, pct([f[name] for f in per_seed]), "", ""] for name in sorted(per_seed[0]) if name.startswith("baseline/")
    ]
    print(markdown_table(["arm", "test error %", "val error %", "s per run"], rows))
    rows = []
    for a, b, label in PAIRS:
        if a in runs and b in runs:
            x, y = ([100 * r["test_error"] for r in runs[m]] for m in (a, b))
            test = paired_test(x, y)
            rows.append(
                [
                    label,
                    f"{test['mean_diff']:+.1f}",
                    ", ".join(f"{d:+.1f}" for d in np.subtract(x, y)),
                    f"{test['d_z']:.2f}",
                    f"{test['p_ttest']:.3f}",
                ]
            )
    print()
    print(
        markdown_table(
            ["comparison", "mean paired diff (pts, negative = first is better)", "per seed", "d_z", "p (paired t)"],
            rows,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
