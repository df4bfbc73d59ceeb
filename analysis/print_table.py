"""``python -m analysis.print_table RESULTS_DIR [--format md|latex|csv] [--control key=value]``: print a sweep's table.

A grid sweep gets the arm table (or, with ``--main task.name``, the methods x tasks main table);
a tuning sweep gets its trials, best first.
"""

from __future__ import annotations

import argparse
import sys

from analysis import tables
from analysis.load import load
from analysis.stats import CONTROL_HELP, parse_control


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.print_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", help="a Ray Tune experiment folder, e.g. results/ablate_gate")
    parser.add_argument("--format", choices=tables.FORMATS, default="md")
    parser.add_argument("--control", help=CONTROL_HELP)
    parser.add_argument(
        "--main",
        metavar="COLUMN_KEY",
        help="the main-table shape: one column per value of this swept key (e.g. task.name), one row per other arm",
    )
    parser.add_argument("--digits", type=int, default=3, help="decimals shown (default 3)")
    args = parser.parse_args(argv)
    try:
        results = load(args.results_dir)
        trials, keys = results.trials, results.arm_keys
        if args.main:
            table = tables.main_table(trials, keys, args.main, digits=args.digits)
        elif results.search == "search":
            table = tables.trials_table(trials, keys, results.metric, results.mode, digits=args.digits + 1)
        else:
            control = parse_control(args.control, trials, keys) if args.control else None
            table = tables.arm_table(trials, keys, control, digits=args.digits)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(tables.render(table, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
