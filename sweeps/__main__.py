"""``python -m sweeps SPEC [flags]``: run any sweep spec, a YAML path or a name in sweeps/configs/.

The scripts (``sweeps/ablate_gate.py``...) are this with the spec name filled in; this entry serves
one-off specs (a new ablation, a test's spec) without writing a script first.
"""

import sys

from sweeps.runner import main

if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
    sys.exit("usage: python -m sweeps SPEC [flags]   (SPEC: a .yaml file or a name in sweeps/configs/, e.g. ablate_gate)")
sys.exit(main(sys.argv[1], __doc__, sys.argv[2:]))
