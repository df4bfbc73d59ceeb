#!/usr/bin/env bash
# The runs behind docs/results.md, one sweep at a time (each uses both CPUs of a 2-core machine):
# - the gate ablation as shipped (digits, 12 epochs, 5 arms x 5 seeds);
# - the gate ablation on dna, and on a tuned dna base (train.lr 5.5e-3, found by tune_task.py), and the
#   curriculum ablation on digits and dna, at a budget a 2-CPU session could afford: 6 epochs, for dna
#   400 training samples (task.n_train; the default is 1000), and for the tuned base and the curriculum
#   only the core arms (scripts/remeasure/*.yaml: none / random / topk; linear / constant).
# Results: results/remeasure/<sweep>; paper material: results/remeasure/paper/<sweep>/.
# Run with --from N to start at the N-th sweep (1-based), e.g. after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=results/remeasure
first=1
[ "${1:-}" = "--from" ] && first=$2
short=(--set train.epochs=6)
dna=(--set task.name=dna --set task.n_train=400 "${short[@]}")
sweeps=(
  "gate_digits sweeps/ablate_gate.py"
  "gate_dna sweeps/ablate_gate.py ${dna[*]}"
  "gate_dna_lr5.5e-3 scripts/remeasure/gate_core.yaml ${dna[*]} --set train.lr=5.5e-3"
  "curriculum_digits scripts/remeasure/curriculum_core.yaml ${short[*]}"
  "curriculum_dna scripts/remeasure/curriculum_core.yaml ${dna[*]}"
)
for i in "${!sweeps[@]}"; do
  read -r name script args <<< "${sweeps[$i]}"
  if [ $((i + 1)) -ge "$first" ]; then
    # shellcheck disable=SC2086
    case "$script" in *.yaml) run=(-m sweeps "$script") ;; *) run=("$script") ;; esac
    "$py" "${run[@]}" --name "$name" --storage-path "$out" $args
    "$py" -m analysis.report "$out/$name" --out "$out/paper/$name"
  fi
done
