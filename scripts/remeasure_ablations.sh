#!/usr/bin/env bash
# The runs behind docs/results.md: the gate and curriculum ablations, 5 seeds each, on digits and dna
# (both 1D tasks here), the gate ablation also on a tuned dna base (train.lr 5.5e-3, from tune_task.py),
# then every table and figure. Sequential: one sweep at a time uses both CPUs of a 2-core machine.
# About 70 minutes on a quiet 2-CPU machine. Results: results/remeasure/<sweep>, paper material: results/remeasure/paper/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=results/remeasure
run() { "$py" "$@" --storage-path "$out"; }
run sweeps/ablate_gate.py --name gate_digits
run sweeps/ablate_gate.py --name gate_dna --set task.name=dna
run sweeps/ablate_curriculum.py --name curriculum_digits
run sweeps/ablate_curriculum.py --name curriculum_dna --set task.name=dna
run sweeps/ablate_gate.py --name gate_dna_lr5.5e-3 --set task.name=dna --set train.lr=5.5e-3
for sweep in gate_digits gate_dna curriculum_digits curriculum_dna gate_dna_lr5.5e-3; do
    "$py" -m analysis.figures "$out/$sweep" --out "$out/paper/$sweep"
done
