"""The calibrated cost estimate against a sweep that ran: how close ``--dry-run --calibrate`` comes.

Runs ``sweeps.cost.estimate(..., calibrate=True)`` for a spec (probing each group now, on this
machine) and reads what the finished experiment folder's trials took: each trial's span, from the
start of its fit (its first report's timestamp less that report's ``wall_s``) to its last report,
and the sweep's span from the first start to the last end. ``--wall`` adds the launch's own wall
time (``/usr/bin/time``: Ray start and shutdown included). Issue 23's gate ablation was estimated
1.8x low because one probe of its first arm (``none``: one backbone pass per step) priced every arm
(two passes); see ``sweeps.cost._step_work``.

Not a test (nothing asserted); run by hand on a quiet machine, after the sweep:
    python bench/cost_estimate.py ablate_gate results/ablate_gate [--wall 515.8]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pare_core.formatting import fmt_duration
from sweeps.cost import estimate
from sweeps.options import Overrides
from sweeps.spec import build


def trial_spans(experiment: Path) -> list[tuple[float, float]]:
    """(start, end) epoch seconds of each finished trial's fit, from its per-epoch reports."""
    spans = []
    for path in sorted(experiment.glob("*/result.json")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            spans.append((rows[0]["timestamp"] - rows[0]["wall_s"], rows[-1]["timestamp"]))
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="the spec the experiment ran (a name in sweeps/configs/ or a .yaml path)")
    parser.add_argument("experiment", type=Path, help="the finished experiment folder (results/<name>)")
    parser.add_argument("--wall", type=float, help="the launch's measured wall seconds (/usr/bin/time), if known")
    args = parser.parse_args()
    spans = trial_spans(args.experiment)
    if not spans:
        parser.error(f"{args.experiment}: no trial reports (*/result.json) to compare with")
    est = estimate(build(args.spec, Overrides()), calibrate=True)
    span = max(e for _, e in spans) - min(s for s, _ in spans)
    trial_sum = sum(e - s for s, e in spans)
    print(
        f"estimate (calibrated now): {fmt_duration(est.wall_s)} wall at {est.slots} at a time, trials sum {fmt_duration(est.trial_s)}"
    )
    for g in est.groups:
        print(f"  {g.arms or '-'}: {g.epoch_s:.2f} s/epoch, {fmt_duration(g.trial_s)} per trial")
    print(
        f"actual: {len(spans)} trials, trials sum {fmt_duration(trial_sum)}, first start to last end {fmt_duration(span)}"
    )
    print(f"estimate / actual (trial spans): {est.wall_s / span:.2f}; trials sum {est.trial_s / trial_sum:.2f}")
    if args.wall:
        print(f"estimate / actual (launch wall {fmt_duration(args.wall)}): {est.wall_s / args.wall:.2f}")


if __name__ == "__main__":
    main()
