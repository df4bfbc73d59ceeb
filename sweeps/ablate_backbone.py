"""Backbone ablation: pretrained body x method (fine-tune, scratch, PaRe) x seeds.

Run from the repo root: `python sweeps/ablate_backbone.py [--smoke-test] [--dry-run] [--set KEY=VALUE] ...`
(spec: sweeps/configs/ablate_backbone.yaml; flags: docs/sweeps.md).
"""

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run by path: import the repo, not this folder's modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from sweeps.cli import main  # noqa: E402  (after the sys.path line above)

if __name__ == "__main__":
    sys.exit(main("ablate_backbone", __doc__))
