"""``python -m pare_core --task digits --method pare --set gate.selection=threshold --set gate.threshold=0.6``

One training run with a progress bar; the last line printed is the final metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from pare_core.config import TrialConfig, parse_sets
from pare_core.train import fit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pare_core", description=__doc__.splitlines()[0])
    parser.add_argument("--task", help="task name (task.name)")
    parser.add_argument("--method", help="finetune | scratch | pare | orca | mona")
    parser.add_argument("--backbone", help="backbone name (backbone.name)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, repeatable")
    args = parser.parse_args(argv)
    flat: dict[str, object] = {}
    for key, value in (
        ("task.name", args.task),
        ("method", args.method),
        ("backbone.name", args.backbone),
        ("seed", args.seed),
    ):
        if value is not None:
            flat[key] = value
    try:
        flat.update(parse_sets(args.set))
        cfg = TrialConfig.from_flat(flat)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    bar = tqdm(total=cfg.train.epochs, desc=f"{cfg.method} on {cfg.task.name}", unit="epoch", file=sys.stderr)

    def report(metrics: dict, _checkpointer) -> None:
        bar.update(1)
        shown = {"loss": f"{metrics['train_loss']:.3f}", "val_error": f"{metrics['val_error']:.3f}"}
        if "k" in metrics:  # methods that replace tokens (PaRe)
            shown["k"] = int(metrics["k"])
        bar.set_postfix(shown)

    final = fit(cfg, report)
    bar.close()
    print(json.dumps(final, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
