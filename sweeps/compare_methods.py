"""Method comparison, the papers' main table: finetune / scratch / ORCA / MoNA / PaRe (x aux=lsg) x tasks x seeds.

Run from the repo root: `python sweeps/compare_methods.py [--smoke-test] [--dry-run] [--set KEY=VALUE] ...`
(spec: sweeps/configs/compare_methods.yaml; flags: docs/sweeps.md). When the sweep finishes, the main
table (methods as rows, tasks as columns, test error mean ± std over seeds) is printed and written to
`<experiment>/main_table.md` by `analysis.tables.main_table`.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run by path: import the repo, not this folder's modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from sweeps.cli import main  # noqa: E402  (parses flags before torch and Ray are imported)

SPEC = "compare_methods"


def print_main_table(argv: list[str]) -> None:
    """Render the finished sweep's main table (local storage only: analysis reads plain folders)."""
    from analysis.load import load
    from analysis.tables import main_table, render
    from sweeps import storage
    from sweeps.cli import parse_args
    from sweeps.spec import build

    args = parse_args(f"sweeps/{SPEC}.py", __doc__, argv)
    experiment = storage.join(storage.resolve(args.storage_path), build(SPEC, args).name)
    if "://" in experiment:
        print(f"main table: python -m analysis.print_table {experiment} --main task.name (after copying it locally)")
        return
    results = load(experiment)
    text = render(main_table(results.trials, results.arm_keys, "task.name"), "md")
    Path(experiment, "main_table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    code = main(SPEC, __doc__)
    if code in (0, 1) and "--dry-run" not in sys.argv:  # 1: some trials failed; the table shows them
        print_main_table(sys.argv[1:])
    sys.exit(code)
