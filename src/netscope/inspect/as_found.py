"""Working on a user's model and giving it back as found: each module's train/eval flag, and
each parameter's requires_grad (so an input's gradient never lands in a parameter's .grad)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Yields `model` in eval mode (BatchNorm uses its running statistics, dropout is off), then
    restores each module's own flag, so a model that was partly in train mode stays so."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Yields `model` in eval mode with no parameter requiring a gradient (backward then
    reaches the input alone, faster, and leaves every .grad as it was); restores both after."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    try:
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        with eval_mode(model):
            yield model
    finally:
        for parameter, requires_grad in flags:
            parameter.requires_grad_(requires_grad)
