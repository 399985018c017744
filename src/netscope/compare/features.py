"""A layer's responses to N images, computed batch by batch through the shared layer capture and
kept as the measures need them, exactly and in bounded memory:

- `gram`: the N×N matrix of inner products of the images' responses over all the layer's units
  (float64). Linear CKA and ridge predictivity *from* a layer are functions of it alone.
- `units`: up to `max_targets` (default 500) of the layer's real units, drawn at random, as
  regression *targets*; a target layer's score is the median over this sample.

The Gram matrix is summed over slices of units, K = Σ X_s X_sᵀ: at most `max_units` (default
32768) units of all layers together are held per pass over the images, so memory stays within
images × max_units floats (plus N×N per layer) whatever the layers' sizes; wider layers take
more passes (the lecture CNN's hidden layers fit in one).

Default layers (`default_layers`): every call of an activation module (nn.ReLU, nn.Tanh, ...) in
the order of the forward pass, then the model's last layer; a model that applies its activations
as functions has no such modules, and then every layer without children is compared. Two
writings of one network (nn.Sequential vs F.relu in `forward`) may thus get different default
layers; name the layers to compare the same ones.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.guard import guarded
from netscope.inspect.hooks import layer_calls, named_layers, resolve_layer, run_to
from netscope.progress import progress_bar

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ReLU6)


@dataclass
class LayerFeatures:
    """A layer's responses to N images: `gram`, N×N inner products over all its units (float64),
    and `units`, N × (a random sample of its real units) as regression targets."""

    gram: torch.Tensor
    units: torch.Tensor
    total_units: int


def gram_of(responses: torch.Tensor) -> torch.Tensor:
    """Returns the N×N float64 Gram matrix of an N × units matrix."""
    x = responses.flatten(1).double()
    return x @ x.T


def default_layers(model: nn.Module, image_shape: tuple[int, ...] | None = None) -> list[str]:
    """Returns the model's activation layers followed by its last layer: in call order, each call
    named ("relu", "relu#1", ...), when `image_shape` is given; else in definition order."""
    modules = dict(named_layers(model))
    if image_shape is None:
        leaves = [name for name, module in modules.items() if not list(module.children())]
    else:
        leaves = layer_calls(model, image_shape)
    chosen = [n for n in leaves if isinstance(modules[n.partition("#")[0]], ACTIVATIONS)]
    if not chosen:  # activations applied functionally: every leaf layer is a candidate
        return leaves
    return chosen if chosen[-1] == leaves[-1] else chosen + [leaves[-1]]


def check_layers(model: nn.Module, layers: list[str], argument: str = "--layers") -> list[str]:
    """Returns `layers` unchanged, or raises NetscopeError listing the valid names."""
    for name in layers:
        try:
            resolve_layer(model, name)
        except NetscopeError as err:
            raise NetscopeError(f"{argument}: {err}") from None
    if len(set(layers)) != len(layers):
        raise NetscopeError(f"{argument}: layer names repeat ({layers})")
    return list(layers)


def flatten_response(output: torch.Tensor, spatial: str) -> torch.Tensor:
    """Returns one row per image: all values (`flatten`) or the mean over positions (`pool`)."""
    if spatial == "pool" and output.dim() > 2:
        return output.flatten(2).mean(2)
    return output.flatten(1)


def target_sample(total: int, max_targets: int, seed: int) -> torch.Tensor | None:
    """Returns the sorted indices of up to `max_targets` units drawn at random (None: all)."""
    if total <= max_targets:
        return None
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:max_targets].sort().values


def add_gram(gram: torch.Tensor, responses: torch.Tensor, chunk: int = 4096) -> None:
    """Adds responses·responsesᵀ to `gram` in float64, a few thousand units at a time."""
    for start in range(0, responses.shape[1], chunk):
        part = responses[:, start : start + chunk].double()
        gram.addmm_(part, part.T)


class GramReader:
    """One layer's Gram matrix, summed over slices of its units (one slice per pass over the
    images), and its target units (read in the first pass)."""

    def __init__(self, n: int, size: int, passes: int, sample: torch.Tensor | None, device):
        self.size, self.width = size, math.ceil(size / passes)
        self.sample = None if sample is None else sample.to(device)
        self.gram = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.units: list[torch.Tensor] = []
        self.held: torch.Tensor | None = None
        self.columns = slice(0, 0)

    def start_pass(self, part: int) -> bool:
        """Returns whether this layer has units left to read in pass `part`."""
        first = part * self.width
        self.columns = slice(first, min(first + self.width, self.size))
        return first < self.size

    def read(self, start: int, flat: torch.Tensor, first_pass: bool) -> None:
        """Keeps this pass's slice of a batch's responses (images start, start + 1, ...)."""
        if self.held is None:
            width = self.columns.stop - self.columns.start
            self.held = flat.new_empty(len(self.gram), width)
        self.held[start : start + len(flat)] = flat[:, self.columns]
        if first_pass:
            self.units.append(flat if self.sample is None else flat[:, self.sample])

    def end_pass(self) -> None:
        add_gram(self.gram, self.held)
        self.held = None

    def features(self) -> LayerFeatures:
        return LayerFeatures(self.gram, torch.cat(self.units), self.size)


@guarded
@torch.inference_mode()
def layer_features(
    model: nn.Module,
    images: torch.Tensor,
    layers: list[str],
    *,
    spatial: str = "flatten",
    max_units: int = 32768,
    max_targets: int = 500,
    seed: int = 0,
    batch_size: int = 250,
    progress: bool = False,
) -> dict[str, LayerFeatures]:
    """Returns the Gram matrices and target units of `layers` (names from `named_modules()`) on
    `images` (pixels in [0, 1] for a `Normalized` model), computed in batches on the images'
    device, in as many passes over the images as `max_units` requires (in eval mode: @guarded)."""
    check_layers(model, layers)
    starts = range(0, len(images), batch_size)
    first = run_to(model, images[:1], layers)
    sizes = {name: flatten_response(out, spatial).shape[1] for name, out in first.items()}
    passes = math.ceil(sum(sizes.values()) / max_units)
    readers = {
        name: GramReader(
            len(images),
            sizes[name],
            passes,
            target_sample(sizes[name], max_targets, seed * 1000 + index),
            images.device,
        )
        for index, name in enumerate(layers)
    }
    bar = progress_bar(
        total=passes * len(starts),
        desc="activations",
        disable=not progress,
        leave=False,
        file=sys.stderr,
    )
    for part in range(passes):
        active = [name for name in layers if readers[name].start_pass(part)]
        for start in starts if active else ():
            outputs = run_to(model, images[start : start + batch_size], active)
            for name, output in outputs.items():
                readers[name].read(start, flatten_response(output, spatial), part == 0)
            bar.update()
        for name in active:
            readers[name].end_pass()
    bar.close()
    return {name: reader.features() for name, reader in readers.items()}


def response_features(
    responses: torch.Tensor, max_targets: int = 500, seed: int = 0
) -> LayerFeatures:
    """Returns an images × units response matrix (e.g. recordings) as a layer's features."""
    flat = responses.flatten(1).float()
    sample = target_sample(flat.shape[1], max_targets, seed)
    units = flat if sample is None else flat[:, sample.to(flat.device)]
    return LayerFeatures(gram_of(flat), units, flat.shape[1])
