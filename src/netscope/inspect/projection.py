"""Projections of single units back to pixel space: Zeiler & Fergus's deconvnet (2014) and guided
backpropagation (Springenberg et al. 2015), and each unit's top-k projections beside its top-k
patches (Zeiler & Fergus 2014, Fig. 2).

Both are the gradient of one unit's activation with respect to the input pixels with one change,
in the backward pass of every ReLU. The true gradient passes grad·[x > 0]. The deconvnet passes
relu(grad): its signal going down is rectified whatever the forward input was. Guided
backpropagation passes relu(grad)·[x > 0], both masks at once. The rest of the deconvnet is
what backward already does: max pooling sends the signal to the recorded switch (where the
maximum was), a convolution's backward applies the transposed (flipped) filters, and biases drop
out. Eval-mode BatchNorm is a fixed per-channel scale on the way down.

The ReLUs are changed by a torch function mode, so every ReLU the forward pass calls is changed:
nn.ReLU modules, F.relu, torch.relu, Tensor.relu and their in-place forms. Captum's
`Deconvolution` and `GuidedBackprop` hook nn.ReLU modules only: through a ReLU written as F.relu
in a model's forward they pass the plain gradient. On models whose ReLUs are all nn.ReLU modules
(the lecture CNN, ResNetCifar) both give the same numbers; tests/test_projection.py checks it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from netscope.display import Shows, figure_of
from netscope.errors import NetscopeError
from netscope.inspect.as_found import eval_mode, frozen
from netscope.inspect.context import Context, save_figure
from netscope.inspect.hooks import Capture, check_images, forward
from netscope.inspect.plots import as_picture, matplotlib, mosaic, plt, save
from netscope.inspect.receptive import (
    TopPatches,
    crop,
    receptive_field,
    top_patch_layers,
    top_patches,
)
from netscope.inspect.stage import Stage
from netscope.record import Figure

METHODS = ("deconvnet", "guided")
RELUS = {F.relu, torch.relu, torch.Tensor.relu}
IN_PLACE_RELUS = {torch.relu_, torch.Tensor.relu_}


class _RectifiedReLU(torch.autograd.Function):
    """ReLU on the way up; relu(grad) (deconvnet) or relu(grad)·[x > 0] (guided) on the way down."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, guided: bool, in_place: bool) -> torch.Tensor:
        out = x.clamp_(min=0) if in_place else x.clamp(min=0)
        if in_place:
            ctx.mark_dirty(x)
        ctx.guided = guided
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clamp(min=0)
        if ctx.guided:
            (out,) = ctx.saved_tensors
            grad = grad * (out > 0)
        return grad, None, None


class _RectifiedBackward(TorchFunctionMode):
    """Within it, every ReLU call records `_RectifiedReLU` instead of the true ReLU."""

    def __init__(self, guided: bool):
        super().__init__()
        self.guided = guided

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in RELUS or func in IN_PLACE_RELUS:
            in_place = func in IN_PLACE_RELUS or bool(kwargs.get("inplace", False))
            return _RectifiedReLU.apply(args[0], self.guided, in_place)
        return func(*args, **kwargs)


def check_method(method: str) -> str:
    """Returns `method` if it is "deconvnet" or "guided", or raises a NetscopeError."""
    if method not in METHODS:
        raise NetscopeError(f"projection method {method!r}: expected one of {', '.join(METHODS)}")
    return method


def _unit_values(
    output: torch.Tensor, channels: torch.Tensor, positions: torch.Tensor | None, layer: str
) -> torch.Tensor:
    """Returns one activation per image: channel channels[n] at positions[n] (default: the
    channel's strongest position in that image)."""
    bad = channels[(channels < 0) | (channels >= output.shape[1])]
    if bad.numel():
        raise NetscopeError(
            f"channel {bad[0].item()} out of range: layer {layer!r} has {output.shape[1]} "
            f"channels (0..{output.shape[1] - 1})"
        )
    rows = torch.arange(len(output), device=output.device)
    maps = output[rows, channels].flatten(1)  # N×(H·W), or N×1 for a vector layer
    width = output.shape[-1] if output.ndim == 4 else 1
    if positions is None:
        flat = maps.argmax(1)
    else:
        positions = positions.to(output.device).reshape(-1, 2)
        flat = positions[:, 0] * width + positions[:, 1]
    return maps[rows, flat]


def project(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    channels: int | Sequence[int] | torch.Tensor,
    positions: torch.Tensor | None = None,
    *,
    method: str = "deconvnet",
) -> torch.Tensor:
    """Returns N×C×H×W: each image's chosen unit (channel `channels[n]` of `layer` at
    positions[n] = (i, j), default its strongest position) projected to pixel space by the
    deconvnet or guided backpropagation. Runs in eval mode; the model is left as it was."""
    guided = check_method(method) == "guided"
    check_images(images)
    channels = torch.as_tensor(channels, dtype=torch.int64, device=images.device).reshape(-1)
    channels = channels.expand(len(images)) if channels.numel() == 1 else channels
    if channels.numel() != len(images):
        raise NetscopeError(
            f"channels: expected one per image ({len(images)}), got {channels.numel()}"
        )
    pixels = images.detach().clone().requires_grad_(True)
    with frozen(model), torch.enable_grad(), Capture(model, [layer]) as captured:
        with _RectifiedBackward(guided):
            forward(model, pixels)
        units = _unit_values(captured.check()[layer], channels, positions, layer)
        (grad,) = torch.autograd.grad(units.sum(), pixels)
    return grad


@dataclass
class Projections(Shows):
    """Each chosen unit's k strongest activations over a data set, projected to pixel space."""

    top: TopPatches  # the search: every channel's k best images, positions and patches
    method: str  # "deconvnet" or "guided"
    units: list[int]  # the channels projected
    projections: torch.Tensor  # U×k×C×h×w, each cropped to its unit's receptive field
    outside: float  # largest |projection| outside the receptive fields: 0 when they are right

    def __repr__(self) -> str:
        k = self.projections.shape[1]
        return (
            f"Projections({self.top.field.layer}: {len(self.units)} units × top {k} by "
            f"{self.method}, largest value outside the receptive fields {self.outside:.2g})"
        )


def _outside_field(projections: torch.Tensor, corners: torch.Tensor, size) -> float:
    """Returns the largest |value| of N×C×H×W projections outside each one's field box."""
    n, _, h, w = projections.shape
    rows = torch.arange(h, device=projections.device)[None]
    cols = torch.arange(w, device=projections.device)[None]
    top, left = corners[:, :1], corners[:, 1:]
    inside_rows = (rows >= top) & (rows < top + size[0])
    inside_cols = (cols >= left) & (cols < left + size[1])
    inside = inside_rows[:, :, None] & inside_cols[:, None, :]
    return float(projections.abs().amax(1).masked_fill(inside, 0).max()) if n else 0.0


def top_projections(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    *,
    k: int = 9,
    units: Sequence[int] | None = None,
    method: str = "deconvnet",
    batch_size: int = 500,
    progress: bool = False,
) -> Projections:
    """Returns, for each unit (channel) of `layer` (default: all), its k strongest activations
    over `images` (one per image, as `top_patches` finds them), each projected to pixel space and
    cropped to the unit's receptive field, beside the patches they come from."""
    check_method(method)
    with eval_mode(model):
        top = top_patches(model, images, layer, k=k, batch_size=batch_size, progress=progress)
        channels = top.values.shape[0]
        units = list(range(channels)) if units is None else [int(u) for u in units]
        bad = [u for u in units if not 0 <= u < channels]
        if bad:
            raise NetscopeError(
                f"unit {bad[0]} out of range: layer {layer!r} has {channels} channels"
            )
        index = top.image_index[units].reshape(-1)
        position = top.position[units].reshape(-1, 2)
        unit_of = torch.tensor(units, device=index.device).repeat_interleave(k)
        crops, outside = [], 0.0
        for part in torch.arange(len(index), device=index.device).split(batch_size):
            full = project(
                model, images[index[part]], layer, unit_of[part], position[part], method=method
            )
            corners = top.field.corners(position[part])
            crops.append(crop(full, corners, top.field.size, 0.0))
            outside = max(outside, _outside_field(full, corners, top.field.size))
    crops = torch.cat(crops)
    return Projections(top, method, units, crops.reshape(len(units), k, *crops.shape[1:]), outside)


def strongest_units(top: TopPatches, n: int) -> list[int]:
    """Returns the n channels with the highest best activation, strongest first."""
    return top.values[:, 0].topk(min(n, len(top.values))).indices.tolist()


EXAMPLES = 6  # data set examples kept per unit for the growth and units stages


def unit_examples(ctx: Context, layer: str) -> TopPatches:
    """Returns each unit's top EXAMPLES patches over the first `unit_images` test images, found
    once per `netscope inspect` (the growth and units stages pick their units from them)."""
    key = ("unit_examples", layer)
    if key not in ctx.memo:
        images = ctx.test[: ctx.config.unit_images]
        ctx.memo[key] = top_patches(ctx.model, images, layer, k=EXAMPLES)
    return ctx.memo[key]


# ---------------------------------------------------------------- as `netscope inspect` runs it

UNITS_PER_FIGURE = 6
METHOD_TITLES = {"deconvnet": "deconvnet", "guided": "guided backpropagation"}
PROJECTION_COLOURS = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d0d0d0")
PATCH_COLOURS = matplotlib.colormaps["gray"].with_extremes(bad="#4f7fc0")


def signed_tiles(projections: torch.Tensor) -> torch.Tensor:
    """Returns k×C×h×w projections summed over colour channels and divided by their largest
    |value|, so that −1 … 1 spans each unit's own range and 0 stays 0."""
    summed = projections.float().sum(1)
    return summed / summed.abs().max().clamp_min(1e-12)


def show_tiles(ax, tiles: torch.Tensor, signed: bool):
    """Draws k tiles as a square mosaic, signed projections (k×h×w, −1 … 1, red/blue) or
    patches (k×C×h×w, 0 … 1, grey or colour); returns the image."""
    side = math.ceil(math.sqrt(len(tiles)))
    colour = tiles.ndim == 4 and tiles.shape[1] == 3
    grid = mosaic(tiles.float().cpu(), side, gap=1, fill=1.0 if colour else float("nan"))
    ax.set_xticks([])
    ax.set_yticks([])
    picture = (
        grid.numpy()
        if signed
        else as_picture(grid if colour else grid.reshape(1, *grid.shape[-2:]))
    )
    cmap, low = (PROJECTION_COLOURS, -1) if signed else (PATCH_COLOURS, 0)
    return ax.imshow(picture, cmap=cmap, vmin=low, vmax=1, interpolation="nearest")


def plot_projections(
    projections: Projections, units: Sequence[int] | None = None, columns: int = 3
) -> plt.Figure:
    """Returns, for each unit (default: the first six projected), its k projections (left, red
    positive, blue negative, scaled to the unit's largest |value|) beside the k receptive-field
    patches they come from (right): Zeiler & Fergus's Fig. 2."""
    units = list(units) if units is not None else projections.units[:UNITS_PER_FIGURE]
    columns = min(columns, len(units))
    rows = math.ceil(len(units) / columns)
    fig = plt.figure(figsize=(4.9 * columns, 2.7 * rows + 0.5))
    blocks = fig.subfigures(rows, columns, squeeze=False, wspace=0.04).flat
    top = projections.top
    for unit, block in zip(units, blocks):
        slot = projections.units.index(unit)
        left, right = block.subplots(1, 2)
        block.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.86, wspace=0.06)
        image = show_tiles(left, signed_tiles(projections.projections[slot]), signed=True)
        show_tiles(right, top.patches[unit], signed=False)
        block.suptitle(f"unit {unit} · strongest {top.values[unit, 0]:.2f}", fontsize=13)
    h, w = top.field.size
    k = top.values.shape[1]
    fig.suptitle(
        f"{top.field.layer}: {METHOD_TITLES[projections.method]} projections of each unit's {k} "
        f"strongest activations (left) beside their {h}×{w} patches (right)",
        y=1.0 + 0.3 / fig.get_figheight(),
    )
    bar = fig.colorbar(image, cax=fig.add_axes([0.3, -0.05, 0.4, 0.025]), orientation="horizontal")
    bar.set_label("projection ÷ the unit's largest |value| (red +, blue −, white 0)")
    return fig


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns each layer's projection check and pages of projection figures (six units each)."""
    method = ctx.config.projection
    entry: dict = {"method": method}
    figures = []
    for layer in top_patch_layers(ctx):
        result = top_projections(
            ctx.model, ctx.test, layer, k=ctx.config.top_k, method=method,
            progress=ctx.config.progress,
        )  # fmt: skip
        peak = result.projections[:, 0].flatten(1).abs().amax(1)
        entry[layer] = {
            "units": len(result.units),
            "max_outside_receptive_field": result.outside,
            "strongest_projection_peak": peak.cpu().tolist(),
        }
        for page, start in enumerate(range(0, len(result.units), UNITS_PER_FIGURE)):
            shown = result.units[start : start + UNITS_PER_FIGURE]
            figures.append(
                save_figure(
                    ctx,
                    plot_projections(result, shown),
                    f"projections_{layer.replace('.', '_')}_{page + 1:02d}.png",
                    f"{METHOD_TITLES[method].capitalize()} projections of {layer}, units "
                    f"{shown[0]}–{shown[-1]}",
                    "Left: what each of a unit's strongest activations saw, projected back to "
                    "pixels; right: the patches themselves (Zeiler & Fergus 2014, Fig. 2).",
                )
            )
    return entry, figures


def check(ctx: Context) -> None:
    """Raises NetscopeError before any work for an unknown method or a layer with no field."""
    check_method(ctx.config.projection)
    for layer in top_patch_layers(ctx):
        receptive_field(ctx.model, layer, ctx.shape)


STAGE = Stage("projections", "deconvnet projections of every unit's top patches", stage, check)


@figure_of(Projections)
def projections_figure(projections: Projections, path: Path) -> Path:
    """Returns `path` after drawing the first units' projections there (what Jupyter shows)."""
    return save(plot_projections(projections), path)
