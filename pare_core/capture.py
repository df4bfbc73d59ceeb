"""``runtime.capture``: training steps without launch overhead (issue 21).

A step of the default model is small: on a GPU it is bound by kernel launches, not by arithmetic. With
``runtime.capture=true`` the step's loss (the method's forward and loss, the auxiliary loss) is one
``torch.compile``d function, and AOTAutograd compiles its backward with it; evaluation's forward is
compiled too. On CUDA the compiled graphs are replayed as CUDA graphs (``triton.cudagraphs``, the
option that ``mode="reduce-overhead"`` turns on), on the CPU they run as inductor's default mode.

What keeps the graphs few and valid:

- static shapes: training batches are always full (``Run._batch_order``); evaluation pads its last
  chunk to ``train.eval_batch_size`` and drops the padded rows' outputs (``Run.predict``);
- what changes during a run changes no graph: the batch, the source samples and the gate's noise are
  drawn outside the compiled function (``Method.draw``) and passed in as tensors, and PaRe's k, which the
  curriculum changes every epoch, is read from a tensor (``pare_core.gate``). Flags that change the
  graph's structure are few: fine-tune compiles one training graph, PaRe at most three (the warm phase,
  the hard top-k phase, a phase with nothing replaced), each once for the whole run;
- dropout draws eager's masks: ``fallback_random`` keeps the random ops as aten calls on the global
  generator, which the loop reseeds every step (``train.BODY_STREAM``), so a captured run pairs with
  other arms as an eager one does; inductor's own generator would draw other masks;
- the optimiser step, gradient clip and scheduler stay eager (the learning rate, a Python float there,
  is in no graph); on CUDA, AdamW then runs fused (one kernel for every parameter).

The default is off (eager): whether capture pays for its compile time in a default-length trial has to
be measured on a GPU, and none was available; ``bench/gpu.sh`` measures it (its "captured" column).
On this 2-CPU machine, compiling the tiny test model's graphs takes 15-40 s per method (cold cache,
``tests/test_capture.py``), more than a default trial's steps take eagerly.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

F = TypeVar("F", bound=Callable)


def capture(fn: F, device: torch.device) -> F:
    """``fn`` compiled for ``runtime.capture`` on ``device``: CUDA graphs on CUDA, eager's random ops."""
    options = {"fallback_random": True}
    if device.type == "cuda":
        options["triton.cudagraphs"] = True  # what mode="reduce-overhead" sets (mode and options exclude each other)
    return torch.compile(fn, options=options)


def begin_step() -> None:
    """Tell the CUDA graph trees that a new step starts, so the last step's outputs, already read, may be
    overwritten (a no-op without CUDA graphs)."""
    torch.compiler.cudagraph_mark_step_begin()
