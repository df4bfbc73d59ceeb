"""``python -m pare_core.tasks [NAME ...]``: the task table (Markdown) for the README.

Loads every task with its defaults and seed 0 (the first load of a generated task also generates
and caches it, which the load time then includes) and computes the three baselines on that split.
"""

from __future__ import annotations

import argparse
import time

from pare_core.config import TaskConfig
from pare_core.formatting import markdown_table
from pare_core.tasks import TASKS, load_task
from pare_core.tasks.base import TaskData
from pare_core.tasks.baselines import baselines

HEADER = (
    "task",
    "modality",
    "train/val/test",
    "input shape",
    "tokens",
    "metric",
    "stands in for",
    "load (s)",
    "majority",
    "logreg",
    "1-NN",
)


def row(data: TaskData, load_s: float) -> list[str]:
    spec = data.spec
    errors = baselines(data)
    return [
        f"`{spec.name}`",
        spec.modality,
        "/".join(str(n) for n in data.sizes),
        "×".join(str(d) for d in spec.input_shape),
        str(spec.default_tokens),
        f"{spec.metric} (error)",
        spec.stands_in_for,
        f"{load_s:.2f}",
        *(f"{errors[k]:.3f}" for k in ("majority", "logreg", "1nn")),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"tasks (default: all of {', '.join(TASKS)})")
    args = parser.parse_args(argv)
    rows = []
    for name in args.names or TASKS:
        start = time.perf_counter()
        rows.append(row(load_task(TaskConfig(name=name), seed=0), time.perf_counter() - start))
    print(markdown_table(HEADER, rows))
    print(
        "\nBaselines: test errors (lower is better) on the same split; for dense tasks `majority` is the mean "
        "training field and `logreg` is ridge regression."
    )


if __name__ == "__main__":
    main()
