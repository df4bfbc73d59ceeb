"""PaRe mixing-step time / fine-tune step time on the default task, measured side by side.

Not a test: prints the ratio for the closing note / README. Both methods run interleaved in one
process, same data, same batch; PaRe keeps k > 0 in every epoch (constant curriculum) so every PaRe
step is a mixing step. Epoch 1 is PaRe's Gumbel straight-through warm phase; later epochs use hard
top-k. The first epoch of each run also pays one-off costs, so the warm-phase figure is an upper bound.

    python bench/step.py [--repeats 3] [--set finetune.body=full] [--set task.tokens=12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pare_core.config import (
    TrialConfig,  # noqa: E402
    parse_sets,  # noqa: E402
)
from pare_core.train import fit  # noqa: E402


def step_ms(flat: dict) -> list[float]:
    """Milliseconds per optimiser step, one value per epoch."""
    cfg = TrialConfig.from_flat(flat)
    out: list[float] = []
    fit(cfg, lambda m, _c: out.append(1000.0 * cfg.train.batch_size / m["samples_per_s"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    base = {"train.epochs": args.epochs, "gate.warm_frac": 0.5, "curriculum.shape": "constant"}
    base.update(parse_sets(args.set))
    times: dict[str, list[list[float]]] = {"finetune": [], "pare": []}
    for _ in range(args.repeats):
        for method in times:
            times[method].append(step_ms({**base, "method": method}))
    warm = {m: statistics.median(run[0] for run in runs) for m, runs in times.items()}
    hard = {m: statistics.median(v for run in runs for v in run[1:]) for m, runs in times.items()}
    cfg = TrialConfig.from_flat({**base, "method": "pare"})
    print(
        f"default task {cfg.task.name}, backbone {cfg.backbone.name}, body={cfg.finetune.body}, "
        f"batch {cfg.train.batch_size}, curriculum ratio {cfg.curriculum.start}, threads {os.cpu_count()}"
    )
    print("| phase | finetune ms/step | pare ms/step | ratio pare/finetune |")
    print("|---|---|---|---|")
    print(
        f"| hard top-k (epochs 2+) | {hard['finetune']:.1f} | {hard['pare']:.1f} | {hard['pare'] / hard['finetune']:.2f} |"
    )
    print(
        f"| warm: Gumbel ST (epoch 1) | {warm['finetune']:.1f} | {warm['pare']:.1f} | {warm['pare'] / warm['finetune']:.2f} |"
    )
    print(
        json.dumps(
            {
                "ratio_hard": hard["pare"] / hard["finetune"],
                "ratio_warm": warm["pare"] / warm["finetune"],
                "ms": {"hard": hard, "warm": warm},
                "overrides": args.set,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
