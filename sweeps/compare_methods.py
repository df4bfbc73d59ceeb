"""Method comparison, the papers' main table: finetune / scratch / ORCA / MoNA / PaRe (x aux=lsg) x tasks x seeds.

Run from the repo root: `python sweeps/compare_methods.py [--smoke-test] [--dry-run] [--set KEY=VALUE] ...`
(spec: sweeps/configs/compare_methods.yaml; flags: docs/sweeps.md). When the sweep finishes, the main
table (methods as rows, tasks as columns, test error mean ± std over seeds) is printed and written to
`<experiment>/main_table.md` by `python -m analysis.print_table --main task.name`, run as its own
process: analysis reads results folders and sits beside sweeps/, not below it.
"""

import subprocess
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run by path: import the repo, not this folder's modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from sweeps.cli import command  # noqa: E402  (after the sys.path line above)


def print_main_table(experiment: str) -> None:
    """Render the finished sweep's main table (local storage only: analysis reads plain folders)."""
    args = ["-m", "analysis.print_table", experiment, "--main", "task.name"]
    table = " ".join(["python", *args])
    if "://" in experiment:
        print(f"main table: {table} (after copying the folder locally)")
        return
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    if done.returncode:
        print(f"main table: {table} failed: {done.stderr.strip()}", file=sys.stderr)
        return
    Path(experiment, "main_table.md").write_text(done.stdout)
    print(done.stdout, end="")


def main(argv: list[str] | None = None) -> int:
    """The sweep, then its main table; the exit code as ``sweeps.cli.main`` returns it. ``argv``: as
    ``sweeps.cli.main`` takes it (a notebook or a test calls it in its own process)."""
    outcome = command("compare_methods", __doc__, argv)
    if outcome.code in (0, 1) and outcome.experiment:  # 1: some trials failed; the table shows them
        print_main_table(outcome.experiment)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
