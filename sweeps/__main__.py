"""``python -m sweeps SPEC [flags]``: run any sweep spec, a YAML path or a name in sweeps/configs/.

The scripts (``sweeps/ablate_gate.py``...) are this with the spec name filled in; this entry serves
one-off specs (a new ablation, a test's spec) without writing a script first.
"""

import argparse
import sys

from sweeps.cli import main
from sweeps.spec import spec_names

if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    sys.exit(main(sys.argv[1], __doc__, sys.argv[2:]))
# No spec given: usage, the specs there are, and where each spec's flags are listed (--help exits 0).
parser = argparse.ArgumentParser(
    prog="python -m sweeps",
    description=__doc__,
    epilog="specs in sweeps/configs/ (paper/: the paper's ablations at its scale): " + ", ".join(spec_names()),
)
parser.add_argument("spec", metavar="SPEC", help="a .yaml file, or the name of a spec in sweeps/configs/")
parser.add_argument(
    "flags", nargs="*", default=[], metavar="FLAGS", help="the sweep's flags: python -m sweeps SPEC --help lists them"
)
args = parser.parse_args()  # exits: 0 for --help, 2 without a spec
sys.exit(main(args.spec, __doc__, args.flags))  # e.g. python -m sweeps -- SPEC
