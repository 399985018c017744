"""Every public analysis leaves the user's model exactly as it found it, and checks its images once.

`@guarded` wraps each public analysis in `model_untouched(...)` for every `nn.Module` argument:

- the model runs in eval mode (BatchNorm uses its running statistics and never updates them,
  Dropout is off), and afterwards every module's own training flag is back, not only the top
  one's (`Normalized(resnet.eval())` leaves `resnet` in eval mode even though the wrapper was in
  training mode);
- parameters are frozen while it runs, so no analysis computes or accumulates weight gradients;
  afterwards each parameter has its own `requires_grad` and its very `.grad` tensor back;
- gradients are enabled inside, so the analyses work in a caller's `torch.no_grad()` or
  `torch.inference_mode()` block (inference-mode input tensors are copied first);
- each module's hook dictionaries and torch's CPU thread count are as they were;
- input tensors are never written to (tests check their version counters).

`check_images` and `check_fits` are the one image check every analysis shares.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn

from netscope.errors import NetscopeError

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)

Function = TypeVar("Function", bound=Callable)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Yields `model` in eval mode; afterwards each module has its own training flag back."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


@contextmanager
def model_untouched(*models: nn.Module) -> Iterator[None]:
    """Yields with the models in eval mode, their parameters frozen and gradients enabled; then
    restores every module's training flag and hook dictionaries, every parameter's
    `requires_grad` and `.grad`, and torch's thread count."""
    modules = list({id(m): m for model in models for m in model.modules()}.values())
    flags = [m.training for m in modules]
    hooks = [
        {name: dict(getattr(m, name)) for name in HOOK_DICTS if hasattr(m, name)} for m in modules
    ]
    params = list({id(p): p for m in modules for p in m.parameters(recurse=False)}.values())
    grads = [(p.requires_grad, p.grad) for p in params]
    threads = torch.get_num_threads()
    try:
        for model in models:
            model.eval()
        for p in params:
            p.requires_grad_(False)
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for module, training, saved in zip(modules, flags, hooks):
            module.training = training
            _restore_hooks(module, saved)
        for p, (requires_grad, grad) in zip(params, grads):
            p.requires_grad_(requires_grad)
            p.grad = grad
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _restore_hooks(module: nn.Module, saved: dict[str, dict]) -> None:
    for name, hooks in saved.items():
        current = getattr(module, name)
        if current != hooks:
            current.clear()
            current.update(hooks)


def guarded(function: Function) -> Function:
    """Returns `function` run inside `model_untouched` for every `nn.Module` argument, with
    inference-mode tensor arguments copied to ordinary tensors (so autograd can use them)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        models = [a for a in (*args, *kwargs.values()) if isinstance(a, nn.Module)]
        with model_untouched(*models):
            args = tuple(_ordinary(a) for a in args)
            kwargs = {k: _ordinary(v) for k, v in kwargs.items()}
            return function(*args, **kwargs)

    return wrapper


def _ordinary(value):
    if isinstance(value, torch.Tensor) and value.is_inference():
        return value.clone()
    return value


# ---------------------------------------------------------------- the shared input checks


def check_images(images: torch.Tensor, *, pixels: bool = False) -> torch.Tensor:
    """Returns `images` if they are a float N×C×H×W tensor with N ≥ 1 (and, with `pixels`,
    values in [0, 1]); raises NetscopeError otherwise."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = (
            f"{images.dtype} {tuple(images.shape)}"
            if isinstance(images, torch.Tensor)
            else type(images).__name__
        )
        uint8 = isinstance(images, torch.Tensor) and images.dtype == torch.uint8
        hint = "uint8 pixels: divide by 255 (or use `dataset.float_images()`); " if uint8 else ""
        raise NetscopeError(
            f"images: {hint}expected a float tensor N×C×H×W of pixels in [0, 1], got {got}"
        )
    if len(images) == 0:
        raise NetscopeError("images: expected at least one image, got an empty batch")
    if pixels and (images.min() < 0 or images.max() > 1):
        raise NetscopeError(
            f"images: pixels must lie in [0, 1] (found {images.min().item():.3g} .. "
            f"{images.max().item():.3g}); pass pixel-space images and a model that normalises "
            "inside (Run.pixel_model(), or nn.Sequential(your normalisation, model))"
        )
    return images


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


def check_fits(model: nn.Module, images: torch.Tensor) -> int:
    """Returns the number of classes after one forward pass of the first image, or raises
    NetscopeError when the images do not fit the model or it does not return N×K logits."""
    with torch.no_grad():
        logits = forward(model, images[:1])
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or len(logits) != 1:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise NetscopeError(
            f"the model returned {shape} for one image; expected logits of shape 1×classes"
        )
    return logits.shape[1]


def model_device(model: nn.Module) -> torch.device:
    """Returns the device of the model's first parameter (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def check_positive_int(value: int, name: str) -> None:
    """Raises NetscopeError unless value is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NetscopeError(f"{name} {value!r}: expected an integer >= 1")
