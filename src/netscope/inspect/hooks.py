"""Layer outputs through forward hooks, and the input checks every analysis shares.

Layers are named by `named_modules()`. For a `Normalized` wrapper (what `Run.pixel_model()`
returns) the inner model's names work too: "conv1" means "model.conv1".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.models import Normalized


class _Stop(Exception):
    """Raised by a hook to end a forward pass once every wanted layer has run."""


def _prefix(model: nn.Module) -> str:
    return "model." if isinstance(model, Normalized) else ""


def layer_names(model: nn.Module) -> list[str]:
    """Returns the layer names a user may pass (a `Normalized` wrapper's inner names)."""
    prefix = _prefix(model)
    names = [name for name, _ in model.named_modules() if name.startswith(prefix)]
    return [name[len(prefix) :] for name in names if len(name) > len(prefix)]


def resolve_layer(model: nn.Module, name: str) -> tuple[str, nn.Module]:
    """Returns the full `named_modules()` name and the module for a user's layer name."""
    modules = dict(model.named_modules())
    for full in (_prefix(model) + name, name):
        if full and full in modules:
            return full, modules[full]
    raise NetscopeError(f"unknown layer {name!r} (valid layers: {', '.join(layer_names(model))})")


def check_images(images: torch.Tensor, shape: Sequence[int] | None = None) -> torch.Tensor:
    """Returns `images` if they are a float N×C×H×W tensor (of `shape` C×H×W when given)."""
    expected = "N×" + "×".join(map(str, shape)) if shape else "N×C×H×W"
    ok = isinstance(images, torch.Tensor) and images.ndim == 4 and images.is_floating_point()
    ok = ok and len(images) > 0
    if not ok or (shape is not None and tuple(images.shape[1:]) != tuple(shape)):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        uint8 = isinstance(images, torch.Tensor) and images.dtype == torch.uint8
        hint = "uint8 pixels: divide by 255 (or use `dataset.float_images()`); " if uint8 else ""
        raise NetscopeError(
            f"images: {hint}expected a float tensor {expected} of pixels in [0, 1], got {got}"
        )
    return images


def check_targets(targets, n: int, num_classes: int, device: torch.device) -> torch.Tensor:
    """Returns `targets` (an int or one class per image) as an int64 tensor of length `n`."""
    targets = torch.as_tensor(targets, dtype=torch.int64, device=device).reshape(-1)
    if targets.numel() == 1:
        targets = targets.expand(n)
    if targets.numel() != n:
        raise NetscopeError(f"targets: expected one class per image ({n}), got {targets.numel()}")
    bad = targets[(targets < 0) | (targets >= num_classes)]
    if bad.numel():
        raise NetscopeError(
            f"target class {bad[0].item()} out of range (the model has {num_classes} classes: "
            f"0..{num_classes - 1})"
        )
    return targets


def forward(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Returns `model(images)`, turning a shape mismatch into a NetscopeError."""
    try:
        return model(images)
    except RuntimeError as err:
        if "shape" not in str(err) and "size" not in str(err):
            raise
        raise NetscopeError(
            f"images of size {'×'.join(map(str, images.shape[1:]))} (C×H×W) do not fit the model "
            f"({str(err).splitlines()[0]})"
        ) from None


@contextmanager
def capture(model: nn.Module, layers: Sequence[str], stop: bool = False) -> Iterator[dict]:
    """Yields a dict that forward passes fill with each layer's output (graph kept). With
    `stop`, the pass ends (raising `_Stop`) once every layer has run; a module called twice
    records its first call."""
    modules = {name: resolve_layer(model, name)[1] for name in layers}
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            if name in outputs:
                return
            if not isinstance(output, torch.Tensor):
                raise NetscopeError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            outputs[name] = output
            if stop and len(outputs) == len(modules):
                raise _Stop

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in modules.items()]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def run_to(
    model: nn.Module, images: torch.Tensor, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Returns the outputs of `layers` on `images`, running the model only as far as needed
    (so inputs of another size work for the convolutional part); gradients flow."""
    check_images(images)
    with capture(model, layers, stop=True) as outputs:
        try:
            forward(model, images)
        except _Stop:
            pass
    missing = [name for name in layers if name not in outputs]
    if missing:
        raise NetscopeError(f"layer(s) {missing} never run in the model's forward pass")
    return outputs


def activations(
    model: nn.Module, images: torch.Tensor, layers: list[str], batch_size: int = 500
) -> dict[str, torch.Tensor]:
    """Returns each layer's output on `images` (detached, on the images' device), in batches."""
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with torch.no_grad():
        for batch in check_images(images).split(batch_size):
            for name, output in run_to(model, batch, layers).items():
                parts[name].append(output.detach())
    return {name: torch.cat(chunks) for name, chunks in parts.items()}
