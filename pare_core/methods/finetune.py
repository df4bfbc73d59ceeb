"""Fine-tuning baselines: the pretrained body, and the same architecture from random init."""

from pare_core.methods.base import Method


class FinetuneMethod(Method):
    """Plain fine-tuning: the base method's loss, no stage."""


class ScratchMethod(Method):
    """Identical to finetune except the body's weights are randomly initialised: the control that
    tells whether the pretrained weights transfer at all."""

    pretrained = False
