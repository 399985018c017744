"""Receptive fields, and each unit's top-k image patches (Zeiler & Fergus 2014).

A layer's receptive field is traced through every torch operation of one forward pass
(`geometry.py`), so residual additions, concatenations, downsample shortcuts and operations written
as functions in `forward` count: unit (i, j) of a layer sees input rows start + i·jump … start +
i·jump + size − 1 (and likewise columns). Where no finite field exists (global pooling, linear
layers) or an operation's effect on positions is unknown, the answer is a clear refusal.

As everywhere in the literature, the field is a box on the input's grid: a unit depends on no
pixel outside it, and on every pixel of it away from the border (where a branch that reaches
only padding may leave a strip of the box unused). So a top patch pasted alone on a blank canvas
gives back its unit's activation exactly (`recompute_on_canvas`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from netscope.display import Shows, figure_of
from netscope.errors import NetscopeError
from netscope.guard import check_images, guarded
from netscope.inspect.context import Context, save_figure
from netscope.inspect.filters import conv_layers
from netscope.inspect.geometry import Field, trace_fields
from netscope.inspect.hooks import activations, resolve_layer, split_call
from netscope.inspect.plots import as_picture, matplotlib, mosaic, plt, save, styled
from netscope.inspect.stage import Stage
from netscope.progress import progress_bar
from netscope.record import Figure


@dataclass(frozen=True)
class ReceptiveField:
    """Where unit (i, j) of a layer looks in the input: per axis (rows, columns)."""

    layer: str
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """Returns (top, left, bottom, right) of unit (i, j)'s field; bottom/right exclusive,
        and the box may reach outside the image where the layers pad."""
        top = self.start[0] + i * self.jump[0]
        left = self.start[1] + j * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]

    def corners(self, position: torch.Tensor) -> torch.Tensor:
        """Returns the (top, left) input pixel of the fields of units at `position` (…×2)."""
        start = torch.tensor(self.start, device=position.device)
        return start + position * torch.tensor(self.jump, device=position.device)


@guarded
def receptive_field(model: nn.Module, layer: str, image_shape: tuple[int, ...]) -> ReceptiveField:
    """Returns the receptive field of `layer`'s units for images of `image_shape` (C×H×W),
    traced through every operation of the forward pass; raises NetscopeError where it has none."""
    key = resolve_layer(model, layer)[0]
    traced = trace_fields(model, image_shape, until=key)
    if key not in traced:
        runs = sum(1 for call in traced if split_call(call)[0] == split_call(key)[0])
        raise NetscopeError(
            f"layer {layer!r} is never called in the model's forward pass (its module runs "
            f"{runs} time{'s' * (runs != 1)}; 'name#k' is call k, counting from 0)"
        )
    state, shape = traced[key]
    if len(shape) != 4:
        raise NetscopeError(
            f"layer {layer!r} is not spatial: it outputs shape {shape}, but receptive fields need "
            "N×C×H×W outputs (choose a conv or pool layer)"
        )
    if not isinstance(state, Field):
        reason = state or "its output is not computed from the input by torch operations"
        raise NetscopeError(f"layer {layer!r} has no exact receptive field: {reason}")
    if state.edge and not state.reaches_in(shape[2:], image_shape[1:]):
        raise NetscopeError(
            f"layer {layer!r} has no exact receptive field: the boxes of its border units lie "
            "wholly in the input's replicate padding, outside the image"
        )
    return ReceptiveField(layer, state.size, state.jump, state.start)


@dataclass
class TopPatches(Shows):
    """The k images that drive each channel of a layer most, and the patch each unit saw."""

    field: ReceptiveField
    values: torch.Tensor  # C×k, the maximal activations, best first
    image_index: torch.Tensor  # C×k, into the searched images
    position: torch.Tensor  # C×k×2, (i, j) of the unit in the layer's output
    patches: torch.Tensor  # C×k×Cin×size×size, cropped to the receptive field

    def __repr__(self) -> str:
        units, k = self.values.shape
        h, w = self.field.size
        return f"TopPatches({self.field.layer}: {units} units × top {k}, receptive field {h}×{w})"


def crop(
    images: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int], fill: float
) -> torch.Tensor:
    """Returns the `boxes` (top, left per image) of `images` as size-sized crops; outside the
    image is `fill`."""
    n, c, h, w = images.shape
    pad_h, pad_w = size
    padded = torch.full((n, c, h + 2 * pad_h, w + 2 * pad_w), fill, device=images.device)
    padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w] = images
    rows = boxes[:, 0, None] + pad_h + torch.arange(size[0], device=images.device)
    cols = boxes[:, 1, None] + pad_w + torch.arange(size[1], device=images.device)
    index = torch.arange(n, device=images.device)[:, None, None]
    return padded[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@guarded
def top_patches(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    *,
    k: int = 9,
    batch_size: int = 500,
    fill: float = 0.0,
    progress: bool = False,
) -> TopPatches:
    """Returns, for each channel of `layer`, the k images with the highest activation of any of
    its units (one unit per image), and the receptive-field patch of that unit."""
    check_images(images)
    field = receptive_field(model, layer, tuple(images.shape[1:]))
    best_values, best_flat = [], []
    for batch in progress_bar(
        images.split(batch_size), desc=f"top patches {layer}", disable=not progress
    ):
        out = activations(model, batch, [layer], batch_size)[layer]
        value, flat = out.flatten(2).max(dim=2)  # N×C: each image's best unit per channel
        best_values.append(value)
        best_flat.append(flat)
    values, flat = torch.cat(best_values), torch.cat(best_flat)
    if k > len(values):
        raise NetscopeError(f"top-k: k={k} but only {len(values)} images were searched")
    top, index = values.topk(k, dim=0)  # k×C
    width = out.shape[3]
    flat = flat.gather(0, index)
    position = torch.stack([flat // width, flat % width], dim=-1).transpose(0, 1)  # C×k×2
    corners = field.corners(position).reshape(-1, 2)
    patches = crop(images[index.T.reshape(-1)], corners, field.size, fill)
    c = values.shape[1]
    return TopPatches(field, top.T, index.T, position, patches.reshape(c, k, *patches.shape[1:]))


@guarded
def recompute_on_canvas(
    model: nn.Module, image_shape: tuple[int, ...], top: TopPatches, fill: float = 0.0
) -> torch.Tensor:
    """Returns each unit's activation with only its patch pasted on a blank canvas (C×k); it
    equals `top.values` exactly when the receptive field is right."""
    c, k = top.values.shape
    device = top.values.device
    canvas_h, canvas_w = image_shape[1:]
    size = top.field.size
    big = torch.full(
        (c * k, image_shape[0], canvas_h + 2 * size[0], canvas_w + 2 * size[1]), fill, device=device
    )
    corners = top.field.corners(top.position).reshape(-1, 2)
    for n, (row, col) in enumerate(corners.tolist()):
        big[n, :, row + size[0] : row + 2 * size[0], col + size[1] : col + 2 * size[1]] = (
            top.patches.reshape(c * k, *top.patches.shape[2:])[n]
        )
    canvases = big[:, :, size[0] : size[0] + canvas_h, size[1] : size[1] + canvas_w]
    out = activations(model, canvases.contiguous(), [top.field.layer])[top.field.layer]
    channel = torch.arange(c, device=device).repeat_interleave(k)
    i, j = top.position.reshape(-1, 2).unbind(1)
    return out[torch.arange(c * k, device=device), channel, i, j].reshape(c, k)


# ---------------------------------------------------------------- as `netscope inspect` runs it


@styled
def plot_top_patches(top: TopPatches, max_units: int = 64, columns: int = 8) -> plt.Figure:
    """Returns, for each unit (channel), its k best patches as a small mosaic (best first,
    row by row), all units in one image labelled with their number and best activation."""
    units = min(max_units, top.values.shape[0])
    k = top.values.shape[1]
    side = math.ceil(math.sqrt(k))
    # patches framed by blue lines (NaN), so white strokes at their edges stay apart
    patches = top.patches[:units].float().cpu()
    blocks = torch.stack([mosaic(patches[u], side, 1) for u in range(units)])
    blocks = torch.nn.functional.pad(blocks, (1, 1, 1, 1), value=float("nan"))
    columns = min(columns, units)
    gap = max(4, blocks.shape[-1] // 4)
    grid = mosaic(blocks, columns, gap=gap, fill=1.0)
    height, width = grid.shape[-2:]
    scale = 1.7 / (blocks.shape[-1] + gap)  # inches per pixel: a block is about 1.7 in wide
    fig, ax = plt.subplots(figsize=(width * scale + 0.4, height * scale + 1.0))
    picture = as_picture(grid)
    if picture.ndim == 3:  # colour images: frames in mid grey instead
        picture = np.nan_to_num(picture, nan=0.5)
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="#4f7fc0")
    ax.imshow(picture, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    step_y, step_x = blocks.shape[-2] + gap, blocks.shape[-1] + gap
    for unit in range(units):
        row, col = divmod(unit, columns)
        ax.text(
            col * step_x,
            row * step_y - 0.5,
            f"unit {unit}  max {top.values[unit, 0]:.1f}",
            fontsize=9,
            va="bottom",
        )
    ax.set_ylim(height - 0.5, -gap)
    ax.axis("off")
    h, w = top.field.size
    ax.set_title(
        f"{top.field.layer}: the {k} images that excite each unit most, cropped to its "
        f"{h}×{w} receptive field"
    )
    return fig


@figure_of(TopPatches)
def top_patches_figure(top: TopPatches, path: Path) -> Path:
    """Returns `path` after drawing the top patches there (what Jupyter shows)."""
    return save(plot_top_patches(top), path)


def top_patch_layers(ctx: Context) -> list[str]:
    """Returns the layers whose top patches `netscope inspect` shows (default: every Conv2d)."""
    return ctx.config.layers if ctx.config.layers is not None else conv_layers(ctx.model)


def check(ctx: Context) -> None:
    """Raises NetscopeError before any work when a layer has no receptive field."""
    for layer in top_patch_layers(ctx):
        receptive_field(ctx.model, layer, ctx.shape)


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns the receptive fields, top patches and canvas check of each layer, and figures."""
    entry, figures = {}, []
    for layer in top_patch_layers(ctx):
        top = top_patches(
            ctx.model, ctx.test, layer, k=ctx.config.top_k, progress=ctx.config.progress
        )
        recomputed = recompute_on_canvas(ctx.model, ctx.shape, top)
        field = top.field
        entry[layer] = {
            "receptive_field": {"size": field.size, "jump": field.jump, "start": field.start},
            "searched_images": len(ctx.test),
            "max_recompute_error": float((recomputed - top.values).abs().max()),
            "values": top.values.cpu().tolist(),
            "image_index": top.image_index.cpu().tolist(),
            "position": top.position.cpu().tolist(),
        }
        h, w = field.size
        figures.append(
            save_figure(
                ctx,
                plot_top_patches(top),
                f"top_patches_{layer.replace('.', '_')}.png",
                f"Top patches of {layer}",
                f"Each block is one unit's {ctx.config.top_k} strongest {h}×{w} test patches: what "
                "it responds to is what they share.",
            )
        )
    return entry, figures


STAGE = Stage("top_patches", "top patches in their receptive fields", stage, check)
