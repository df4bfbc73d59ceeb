"""Training methods: finetune, scratch, pare (Cai et al., ICML 2024), orca and mona (baselines from the literature).

A method decides what a training step's loss is and may run a stage before training; the loop,
evaluation and checkpointing in ``pare_core.train`` are shared by all of them.
"""

from pare_core.methods.base import Aux, Method, StepOut, TrainContext, build_aux, build_method

__all__ = ["Aux", "Method", "StepOut", "TrainContext", "build_aux", "build_method"]
