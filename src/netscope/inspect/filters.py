"""The learned kernels of a convolutional layer (by default the first one)."""

from __future__ import annotations

import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.inspect.hooks import layer_names, resolve_layer


def conv_layers(model: nn.Module) -> list[str]:
    """Returns the names of the model's Conv2d layers, in definition order."""
    names = layer_names(model)
    return [name for name in names if isinstance(resolve_layer(model, name)[1], nn.Conv2d)]


def filters(model: nn.Module, layer: str | None = None) -> tuple[str, torch.Tensor]:
    """Returns the layer's name and its kernels, out×in×kh×kw (default: the first Conv2d)."""
    if layer is None:
        convs = conv_layers(model)
        if not convs:
            raise NetscopeError(
                "filters: the model has no Conv2d layer (name one with --filters-layer)"
            )
        layer = convs[0]
    module = resolve_layer(model, layer)[1]
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise NetscopeError(
            f"filters: layer {layer!r} ({type(module).__name__}) has no 4-d kernel "
            f"(convolutional layers: {', '.join(conv_layers(model)) or 'none'})"
        )
    return layer, weight.detach()
