#!/usr/bin/env bash
# One-time setup: a virtual environment with the project and its test tools, plus the offline data
# packages. Idempotent; safe to re-run. Works without a GPU (pip picks torch, torchvision and timm
# together; the CUDA build of torch runs on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
bash scripts/setup_data.sh
