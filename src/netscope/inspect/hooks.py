"""The one layer resolver and layer capture that inspect, attack, compare and the web page share,
and the target check of the inspect methods (the image checks are in netscope.guard).

Layers are named by `named_modules()`. For a `Normalized` wrapper (what `Run.pixel_model()`
returns) the inner model's names work too: "conv1" means "model.conv1".

A module called more than once in one forward pass (a residual block whose one ReLU module is
applied twice) is one layer per call: "block.relu" is its first call, "block.relu#1" its second,
"block.relu#2" its third. Operations written as functions in `forward` (`F.relu(x)`, `x + y`,
`torch.flatten(x)`) are not modules, so they are not layers: their results can be looked at
through the next module, or by making them modules (`nn.ReLU()`).

Outputs are copied when the layer returns, so an in-place operation later in the pass
(`ReLU(inplace=True)`, `out += identity`) cannot change them, and gradients flow through the copy.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.guard import check_images, eval_mode, forward, guarded, model_device
from netscope.models import Normalized

FUNCTIONAL_NOTE = (
    "Only modules are layers: operations applied as functions in forward (F.relu, torch.flatten, "
    "x + y) have no name (make them modules, e.g. nn.ReLU(), to look at their outputs); "
    "'name#1' is a module's second call in one forward pass"
)


class StopPass(Exception):
    """Raised by a hook to end a forward pass once every wanted layer has run."""


def _prefix(model: nn.Module) -> str:
    return "model." if isinstance(model, Normalized) else ""


def named_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Returns (name a user may pass, module) of every module below `model` (a `Normalized`
    wrapper's inner names), in definition order."""
    prefix = _prefix(model)
    return [
        (name[len(prefix) :], module)
        for name, module in model.named_modules()
        if name.startswith(prefix) and len(name) > len(prefix)
    ]


def layer_names(model: nn.Module) -> list[str]:
    """Returns the layer names a user may pass (a `Normalized` wrapper's inner names)."""
    return [name for name, _ in named_layers(model)]


def split_call(name: str) -> tuple[str, int]:
    """Returns the module name and the call index of a layer name ("relu#1" -> ("relu", 1))."""
    base, _, call = name.partition("#")
    if not call:
        return name, 0
    if not call.isdigit():
        raise NetscopeError(f"layer {name!r}: expected NAME or NAME#CALL with CALL a number")
    return base, int(call)


def resolve_layer(model: nn.Module, name: str) -> tuple[str, nn.Module]:
    """Returns the full `named_modules()` name and the module of a user's layer name (a call
    suffix "#k" is kept on the name, "#0" is the plain name)."""
    base, call = split_call(name)
    modules = dict(model.named_modules())
    for full in (_prefix(model) + base, base):
        if full and full in modules:
            return full + (f"#{call}" if call else ""), modules[full]
    valid = layer_names(model)
    close = difflib.get_close_matches(base, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise NetscopeError(
        f"unknown layer {name!r} ({hint}valid layers: {', '.join(valid)}). {FUNCTIONAL_NOTE}"
    )


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


Keep = Callable[[str, torch.Tensor], torch.Tensor]


def copy(_name: str, output: torch.Tensor) -> torch.Tensor:
    return output.clone()


class Capture:
    """Copies of the outputs of `layers` (names as in `resolve_layer`, "#k" for later calls),
    filled by each forward pass inside `with Capture(...)`; `outputs` is emptied when a pass
    starts. With `stop`, a pass ends as soon as every layer has run. `keep(name, output)` makes
    the copy as the layer returns (default: a clone, through which gradients flow)."""

    def __init__(
        self, model: nn.Module, layers: Sequence[str], stop: bool = False, keep: Keep = copy
    ):
        self.model, self.layers, self.stop = model, list(dict.fromkeys(layers)), stop
        self.keep = keep
        self.outputs: dict[str, torch.Tensor] = {}
        self.calls: dict[nn.Module, int] = {}  # calls of each hooked module in this pass
        self.wanted: dict[nn.Module, dict[int, list[str]]] = {}
        for name in self.layers:
            module, call = resolve_layer(model, name)[1], split_call(name)[1]
            self.wanted.setdefault(module, {}).setdefault(call, []).append(name)
        self._handles: list = []

    def _start(self, _module, _inputs) -> None:
        self.outputs.clear()
        self.calls = dict.fromkeys(self.wanted, 0)

    def _record(self, module, _inputs, output) -> None:
        call = self.calls[module]
        self.calls[module] = call + 1
        names = self.wanted[module].get(call, [])
        if names and not isinstance(output, torch.Tensor):
            raise NetscopeError(f"layer {names[0]!r} returns {type(output).__name__}, not a tensor")
        for name in names:
            self.outputs[name] = self.keep(name, output)
        if names and self.stop and len(self.outputs) == len(self.layers):
            raise StopPass

    def __enter__(self) -> Capture:
        self._handles = [self.model.register_forward_pre_hook(self._start)]
        self._handles += [m.register_forward_hook(self._record) for m in self.wanted]
        return self

    def __exit__(self, *_exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def check(self) -> dict[str, torch.Tensor]:
        """Returns the outputs of the last pass, or raises NetscopeError naming the layers that
        did not run (and how often their modules did)."""
        missing = [name for name in self.layers if name not in self.outputs]
        if not missing:
            return {name: self.outputs[name] for name in self.layers}
        counts = []
        for name in missing:
            calls = self.calls.get(resolve_layer(self.model, name)[1], 0)
            counts.append(f"{name!r} (its module ran {calls} time{'s' * (calls != 1)})")
        raise NetscopeError(
            f"layer(s) never run in the model's forward pass: {', '.join(counts)}; "
            "'name#k' is the module's call number k, counting from 0"
        )


def run_to(
    model: nn.Module, images: torch.Tensor, layers: Sequence[str], keep: Keep = copy
) -> dict[str, torch.Tensor]:
    """Returns the outputs of `layers` on `images`, running the model only as far as needed
    (so inputs of another size work for the convolutional part); gradients flow."""
    check_images(images)
    with Capture(model, layers, stop=True, keep=keep) as captured:
        try:
            forward(model, images)
        except StopPass:
            pass
    return captured.check()


@guarded
def activations(
    model: nn.Module, images: torch.Tensor, layers: list[str], batch_size: int = 500
) -> dict[str, torch.Tensor]:
    """Returns each layer's output on `images` (detached, on the images' device), in batches;
    all layers come from one forward pass per batch, each copied as its layer returns."""
    found: dict[str, torch.Tensor] = {}

    def into(name: str, output: torch.Tensor, start: int) -> torch.Tensor:
        if name not in found:  # straight into the result: one copy, whatever the batches
            found[name] = output.new_empty((len(images), *output.shape[1:]))
        return found[name][start : start + len(output)].copy_(output)

    with torch.no_grad():
        for start in range(0, len(check_images(images)), batch_size):
            keep = functools.partial(into, start=start)
            run_to(model, images[start : start + batch_size], layers, keep)
    return {name: found[name] for name in layers}


def layer_calls(model: nn.Module, image_shape: Sequence[int]) -> list[str]:
    """Returns the name of every call of a module without children in one forward pass on a blank
    image (eval mode, no gradients), in call order; repeated calls as "name#1", "name#2", ..."""
    calls, counts = [], {}

    def record(name: str):
        def hook(_module, _inputs, _output):
            calls.append(name if name not in counts else f"{name}#{counts[name]}")
            counts[name] = counts.get(name, 0) + 1

        return hook

    handles = [
        module.register_forward_hook(record(name))
        for name, module in named_layers(model)
        if not list(module.children())
    ]
    device = model_device(model)
    try:
        with eval_mode(model), torch.no_grad():
            forward(model, torch.zeros(1, *image_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return calls
