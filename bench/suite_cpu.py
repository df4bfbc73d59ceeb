"""Where a test run's CPU goes: per kind of process and per test file, for bench/suite_time.py ``--where``.

The suite is CPU-bound (bench/suite_time.py: 1.88 of 2 cores busy), so its time is its CPU-seconds over the
cores, and ``pytest --durations`` (wall time, in the pytest process) misses most of them: the sweeps' Ray
trial processes, Ray's own services, the compiler that inductor runs. This samples every process's
cumulative CPU time twice a second and attributes each process two ways:

- by kind, from its command line (a Ray trial process, a Ray service, the C++ compiler, a pytest worker...);
- by test, from ``PYTEST_CURRENT_TEST`` in its environment: pytest sets it while a test runs and every
  process started meanwhile inherits it (a sweep's driver, its Ray and Ray's workers). The pytest workers'
  own CPU carries no test name; ``--durations`` covers it.

Processes that are not descendants of the test run (the VM's own, this sampler) are counted apart: on a
small VM they are a visible share of the busy CPU-seconds that bench/suite_time.py reports.
A process that lives less than half a second may be missed; its CPU then goes uncounted.
"""

from __future__ import annotations

import collections
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
RAY_SERVICES = (
    "gcs_server",
    "raylet",
    "dashboard",
    "log_monitor",
    "monitor.py",
    "runtime_env",
    "ray::Dashboard",
    "ray::RuntimeEnv",
)
COMPILER = ("cc1plus", "g++", "gcc", "ld", "as", "collect2")
OUTSIDE = "outside the test run (the machine's own processes)"


def kind(command: str, name: str) -> str:
    """What a process is, from its command line (as Ray retitles its workers) and its executable's name
    (Ray's retitled workers can show an empty command line; their name then starts ``ray::``)."""
    command = command or name
    if any(service in command for service in RAY_SERVICES):
        return "Ray services (GCS, raylet, agents, monitors)"
    if command.startswith("ray::") or "default_worker.py" in command:
        return "Ray workers (trial processes)"
    if name in COMPILER:
        return "C++ compiler (inductor's kernels)"
    if "exec(eval(sys.stdin.readline()))" in command:  # how pytest-xdist (execnet) starts its workers
        return "pytest workers (in-process tests)"
    if "-m pytest" in command:
        return "pytest (the main process)"
    if "sweeps" in command:
        return "sweep drivers"
    return "other processes of the test run"


@dataclass
class Process:
    inside: bool  # a descendant of the test run
    command: str | None = None  # None: not read yet (a retitled Ray worker's can be "")
    kind: str = OUTSIDE
    test: str = ""  # the test file whose run started it; "" for none
    cpu_s: float = 0.0  # since sampling started
    before_s: float = 0.0  # its CPU-seconds before sampling started (processes already running then)


@dataclass
class ProcessSampler:
    """Samples /proc every ``interval`` seconds, from ``start()`` to ``stop()``; ``root`` is the test run's pid."""

    root: int
    interval: float = 0.5
    seen: dict[tuple[int, str], Process] = field(default_factory=dict)

    def start(self) -> None:
        self.scan()
        for process in self.seen.values():  # count from now on
            process.before_s, process.cpu_s = process.cpu_s, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.scan()
            if self._done.wait(self.interval):
                return

    def scan(self) -> None:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    self._sample(int(entry))
                except (OSError, ValueError, IndexError):  # it exited meanwhile
                    pass

    def _sample(self, pid: int) -> None:
        name, fields = _stat(pid)
        key = (pid, fields[19])  # a pid and its start time: one process, even where pids are reused
        process = self.seen.get(key)
        if process is None:
            process = self.seen[key] = Process(inside=self._descends_from_root(pid))
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        if process.inside and command != process.command:
            # first sight, or it exec'd (a child seen between fork and exec shows its parent's command and
            # environment), or Ray retitled it
            process.command, process.kind = command, kind(command, name)
            process.test = process.test or _test_of(pid)
        process.cpu_s = (int(fields[11]) + int(fields[12])) / TICK - process.before_s

    def _descends_from_root(self, pid: int) -> bool:
        while pid > 1:
            if pid == self.root:
                return True
            pid = int(_stat(pid)[1][1])
        return False

    def by(self, attribute: str) -> list[tuple[str, float, int]]:
        """(value, CPU-seconds, processes) per value of ``attribute`` ("kind" or "test"), most CPU first."""
        cpu, count = collections.Counter(), collections.Counter()
        for process in self.seen.values():
            cpu[getattr(process, attribute)] += process.cpu_s
            count[getattr(process, attribute)] += 1
        return [(value, seconds, count[value]) for value, seconds in cpu.most_common()]

    def report(self, top: int = 15) -> str:
        lines = ["CPU-seconds by kind of process (processes):"]
        lines += [f"  {seconds:7.0f}  {value} ({n})" for value, seconds, n in self.by("kind")]
        lines.append(
            f"CPU-seconds of the processes each test file started (the {top} largest; "
            "pytest workers' own CPU excluded, see --durations):"
        )
        tests = [row for row in self.by("test") if row[0]][:top]
        lines += [f"  {seconds:7.0f}  {value} ({n})" for value, seconds, n in tests]
        return "\n".join(lines)


def _stat(pid: int) -> tuple[str, list[str]]:
    """A process's executable name and the fields of /proc/PID/stat after it (fields[1] is the parent)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()


def _test_of(pid: int) -> str:
    """The test file running when ``pid`` (or the process it was forked from) was started, or ""."""
    for variable in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if variable.startswith(b"PYTEST_CURRENT_TEST="):
            return variable.split(b"=", 1)[1].decode(errors="replace").split("::")[0]
    return ""
