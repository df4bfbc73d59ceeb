"""Where the time of one trial goes: wall-clock timers around the real code paths of ``fit``.

Not a test: prints a table of seconds and shares for the default trial (``python -m pare_core``'s
defaults: PaRe on digits with MiniLM), so we know which part to make faster. The run is the real one:
``ProfiledRun`` subclasses ``pare_core.train.Run`` and wraps the functions it calls (data, backbone
and source loading, the method's step, ``Tensor.backward``, the optimiser, evaluation, baselines)
without changing what they compute. Times are exclusive: an item nested in another (the test pass
inside the final metrics) is counted once, in the inner item. After every epoch the report callback
saves a checkpoint, as a sweep trial does (``checkpoint_every`` 1); ``python -m pare_core`` alone saves
none. On a GPU every timer synchronises, which the unprofiled loop does not: shares, not the total.

    python bench/trial_profile.py [--set train.epochs=2 --set train.steps_per_epoch=3 ...]
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the imports, which are the first item

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402
from unittest import mock  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import pare_core.tasks.baselines  # noqa: E402
from pare_core import train  # noqa: E402
from pare_core.config import TrialConfig, parse_sets  # noqa: E402

IMPORTS_S = time.perf_counter() - STARTED

FORWARD, BACKWARD, OPTIMISER, DATA = "forward (method step + aux loss)", "backward", "optimiser", "data"


class Timer:
    """Exclusive wall-clock seconds per item: time spent in a nested item is not counted in its parent."""

    def __init__(self, sync: Callable[[], None]):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.sync = sync
        self._stack: list[list] = []  # [item, start, seconds in nested items]

    def start(self, item: str) -> None:
        self.sync()
        self._stack.append([item, time.perf_counter(), 0.0])

    def stop(self) -> None:
        self.sync()
        item, start, nested = self._stack.pop()
        elapsed = time.perf_counter() - start
        self.seconds[item] += elapsed - nested
        self.calls[item] += 1
        if self._stack:
            self._stack[-1][2] += elapsed

    @contextlib.contextmanager
    def __call__(self, item: str) -> Iterator[None]:
        self.start(item)
        try:
            yield
        finally:
            self.stop()

    def wrap(self, item: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self(item):
                return fn(*args, **kwargs)

        return timed


class TimedRows:
    """Stands in for ``ctx.x_train`` / ``ctx.y_train``: gathering a batch's rows is timed as data."""

    def __init__(self, tensor: torch.Tensor, timer: Timer):
        self.tensor, self.timer = tensor, timer

    def __len__(self) -> int:
        return len(self.tensor)

    def __getitem__(self, idx):
        with self.timer(DATA):
            return self.tensor[idx]


class ProfiledRun(train.Run):
    """``train.Run`` with its parts timed; the loop and everything it computes are unchanged."""

    def __init__(self, cfg: TrialConfig, timer: Timer):
        self.timer = timer
        build_method = train.build_method

        def timed_method(*args):
            method = build_method(*args)
            method.draw = timer.wrap(FORWARD, method.draw)
            method.loss = timer.wrap(FORWARD, method.loss)
            method.before_training = timer.wrap("stage before fine-tuning (ORCA/MoNA)", method.before_training)
            for hook in ("start_epoch", "end_epoch"):
                setattr(method, hook, timer.wrap("method epoch hooks (curriculum, gate probe)", getattr(method, hook)))
            return method

        patches = {
            "load_task": timer.wrap("start-up: data load (task module imports included)", train.load_task),
            "build_backbone": timer.wrap("start-up: backbone load (transformers imported here)", train.build_backbone),
            "load_source": timer.wrap("start-up: source load", train.load_source),
            "CrossModalModel": timer.wrap(
                "start-up: model build (token stats: tokenises the corpus)", train.CrossModalModel
            ),
            "build_method": timed_method,
        }
        with timer("start-up: other (method set-up, optimiser, to device)"), mock.patch.multiple(train, **patches):
            super().__init__(cfg, resume=None)
        self.ctx.x_train, self.ctx.y_train = (TimedRows(t, timer) for t in (self.ctx.x_train, self.ctx.y_train))
        self.aux.loss = timer.wrap(FORWARD, self.aux.loss)
        self.optimizer.zero_grad = timer.wrap(OPTIMISER, self.optimizer.zero_grad)
        self.optimizer.register_step_pre_hook(lambda *_: timer.start(OPTIMISER))
        self.optimizer.register_step_post_hook(lambda *_: timer.stop())

    def train(self, report):
        timer = self.timer
        with contextlib.ExitStack() as stack:  # class-level patches: instance attributes would be checkpointed
            stack.enter_context(
                mock.patch.object(torch.Tensor, "backward", timer.wrap(BACKWARD, torch.Tensor.backward))
            )
            clip = timer.wrap(OPTIMISER, torch.nn.utils.clip_grad_norm_)
            stack.enter_context(mock.patch.object(torch.nn.utils, "clip_grad_norm_", clip))
            scheduler_step = timer.wrap(OPTIMISER, type(self.scheduler).step)
            stack.enter_context(mock.patch.object(type(self.scheduler), "step", scheduler_step))
            baselines = timer.wrap(
                "baselines (cached on disk after a task's first trial)", pare_core.tasks.baselines.baselines
            )
            stack.enter_context(mock.patch.object(pare_core.tasks.baselines, "baselines", baselines))
            with timer("fit, other (epoch bookkeeping)"):
                return super().train(report)

    def _train_epoch(self) -> dict[str, Any]:
        with self.timer("train loop, other (seeding, loss sums, finiteness check)"):
            return super()._train_epoch()

    def _batch_order(self, n_samples: int) -> torch.Tensor:
        with self.timer(DATA):
            return super()._batch_order(n_samples)

    def _evaluate(self, split: str, x, y) -> dict[str, float]:
        with self.timer(f"eval: {split}"):
            return super()._evaluate(split, x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, repeatable")
    args = parser.parse_args()
    cfg = TrialConfig.from_flat(parse_sets(args.set))
    cuda = train.resolve_device(cfg.runtime.device).type == "cuda"
    timer = Timer(torch.cuda.synchronize if cuda else lambda: None)
    timer.seconds["start-up: imports (torch, pare_core)"] = IMPORTS_S
    with tempfile.TemporaryDirectory() as directory:

        def report(metrics: dict[str, Any], checkpointer: train.Checkpointer) -> None:
            with timer("checkpoint save"):
                checkpointer.save(directory)
            with timer("report (metrics to JSON; a sweep's tune.report is not timed)"):
                json.dumps(metrics)

        run = ProfiledRun(cfg, timer)
        run.train(report)
    total = time.perf_counter() - STARTED
    timer.seconds["unaccounted (config, glue)"] = total - sum(timer.seconds.values())
    steps = run.steps_per_epoch * run.cfg.train.epochs
    print(
        f"task {cfg.task.name}, method {cfg.method}, backbone {cfg.backbone.name}, {cfg.train.epochs} epochs x "
        f"{run.steps_per_epoch} steps, batch {cfg.train.batch_size}, device {run.device}, threads {torch.get_num_threads()}"
    )
    print("| item | s | share |\n|---|---|---|")
    for item, seconds in timer.seconds.items():
        print(f"| {item} | {seconds:.2f} | {seconds / total:.1%} |")
    print(f"| total (process start-up before the imports not included) | {total:.2f} | 100% |")
    largest = max(timer.seconds, key=timer.seconds.get)
    per_step = {item: 1000 * timer.seconds[item] / steps for item in (DATA, FORWARD, BACKWARD, OPTIMISER)}
    print(f"largest: {largest}; per optimiser step (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in per_step.items()))
    print(json.dumps({"total_s": total, "steps": steps, "seconds": timer.seconds, "overrides": args.set}))


if __name__ == "__main__":
    main()
