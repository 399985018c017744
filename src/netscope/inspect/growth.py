"""Features growing through training (Zeiler & Fergus 2014, Fig. 4): chosen units' strongest
patch and its projection at epochs 0, 1, 2, 5, 10, 20, …, last, and the first layer's filters at
every epoch (a strip and an animated GIF), from the weights a run keeps after each epoch.

A unit is followed by its index: channel 12 at epoch 1 is channel 12 at epoch 10. Nothing ties
a channel to one role, so a unit may find another feature on the way (its strongest image then
changes); the strips show it. Zeiler & Fergus searched the whole training set at each epoch; we
search the first `images` test images.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm  # tqdm.write: a line that does not break a bar

from netscope.display import Shows, figure_of
from netscope.inspect.context import Context, save_figure
from netscope.inspect.filters import filters
from netscope.inspect.plots import matplotlib, mosaic, plt, save, styled
from netscope.inspect.projection import (
    METHOD_TITLES,
    show_tiles,
    signed_tiles,
    strongest_units,
    top_projections,
    unit_examples,
)
from netscope.inspect.receptive import top_patch_layers
from netscope.inspect.stage import Stage
from netscope.progress import progress_bar
from netscope.record import Figure
from netscope.run import Run, load_run

EPOCH_FILE = re.compile(r"checkpoints/epoch_(\d+)\.safetensors")


def checkpoint_epochs(run: Run) -> dict[int, str]:
    """Returns {epoch: checkpoint name} for the per-epoch weights the run kept (00 = the
    initialisation), empty when it kept none."""
    found = (EPOCH_FILE.fullmatch(name) for name in run.checkpoints())
    return {int(match[1]): match[0] for match in found if match}


def shown_epochs(epochs: Iterable[int]) -> list[int]:
    """Returns the epochs a strip shows: 0, 1, 2, 5, then every 10th, and the last, of those
    kept (Zeiler & Fergus show epochs 1, 2, 5, 10, 20, 30, 40, 64)."""
    epochs = sorted(epochs)
    wanted = {0, 1, 2, 5, epochs[-1]} | set(range(10, epochs[-1], 10))
    return [epoch for epoch in epochs if epoch in wanted]


@dataclass
class Growth(Shows):
    """Chosen units of one layer at several epochs: the strongest patch and its projection."""

    layer: str
    epochs: list[int]
    units: list[int]  # channel indices, the same at every epoch
    values: torch.Tensor  # E×U, the strongest activation over the searched images
    image_index: torch.Tensor  # E×U, which image gave it
    patches: torch.Tensor  # E×U×C×h×w, its receptive-field patch
    projections: torch.Tensor  # E×U×C×h×w, that activation projected to pixels
    method: str = "deconvnet"

    def __repr__(self) -> str:
        return (
            f"Growth({self.layer}: units {self.units} at epochs {self.epochs}, "
            f"{self.method} projections)"
        )


def unit_growth(
    models: Iterable[tuple[int, nn.Module]],
    images: torch.Tensor,
    units: dict[str, Sequence[int]],
    *,
    method: str = "deconvnet",
    batch_size: int = 500,
) -> dict[str, Growth]:
    """Returns, per layer, the `units` (channels) followed through the (epoch, model) pairs:
    at each epoch the strongest activation over `images`, its patch and its projection."""
    found: dict[str, list] = {layer: [] for layer in units}
    epochs = []
    for epoch, model in models:
        epochs.append(epoch)
        for layer, chosen in units.items():
            result = top_projections(
                model, images, layer, k=1, units=chosen, method=method, batch_size=batch_size
            )
            top = result.top
            found[layer].append(
                (top.values[chosen, 0], top.image_index[chosen, 0], top.patches[chosen, 0],
                 result.projections[:, 0])
            )  # fmt: skip
    return {
        layer: Growth(layer, epochs, list(units[layer]), *map(torch.stack, zip(*rows)), method)
        for layer, rows in found.items()
    }


# ---------------------------------------------------------------- figures


@styled
def plot_growth(growth: Growth) -> plt.Figure:
    """Returns one row per unit: at each epoch its strongest patch (grey) beside that
    activation's projection (red +, blue −, each scaled to its own largest |value|)."""
    n_epochs, n_units = len(growth.epochs), len(growth.units)
    fig = plt.figure(figsize=(2.5 * n_epochs + 0.6, 1.25 * n_units + 0.5))
    columns = fig.subfigures(1, n_epochs, wspace=0.02, squeeze=False)[0]
    for e, (epoch, column) in enumerate(zip(growth.epochs, columns)):
        axes = column.subplots(n_units, 2, squeeze=False)
        top = 1 - 0.45 / fig.get_figheight()
        column.subplots_adjust(left=0.03, right=0.97, bottom=0.01, top=top, wspace=0.05)
        for u, (patch_ax, projection_ax) in enumerate(axes):
            show_tiles(patch_ax, growth.patches[e, u][None], signed=False)
            show_tiles(projection_ax, signed_tiles(growth.projections[e, u][None]), signed=True)
            if e == 0:
                patch_ax.set_ylabel(f"unit {growth.units[u]}", fontsize=12)
        column.suptitle(f"epoch {epoch}", fontsize=13, y=1 - 0.1 / fig.get_figheight())
    fig.suptitle(
        f"{growth.layer} through training: strongest patch and its "
        f"{METHOD_TITLES[growth.method]} projection\n(a unit is followed by its index; "
        "training may change what it responds to)",
        y=1 + 0.75 / fig.get_figheight(),
    )
    return fig


def filter_picture(weights: torch.Tensor, columns: int = 8) -> tuple[np.ndarray, float]:
    """Returns a layer's kernels as one mosaic (colour kernels as RGB around grey, others summed
    over input channels on a diverging scale in −1 … 1) and the largest |weight|."""
    weights = weights.detach().float().cpu()
    limit = float(weights.abs().max().clamp_min(1e-12))
    if weights.shape[1] == 3:
        grid = mosaic(0.5 + 0.5 * weights / limit, min(columns, len(weights)), fill=1.0)
        return grid.permute(1, 2, 0).numpy(), limit
    return mosaic(weights.sum(1) / limit, min(columns, len(weights))).numpy(), limit


def draw_filters(ax, weights: torch.Tensor) -> float:
    """Draws one epoch's kernels on their own symmetric scale; returns the scale (max |w|)."""
    picture, limit = filter_picture(weights)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d0d0d0")
    ax.imshow(picture, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return limit


@styled
def plot_filter_strip(layer: str, epochs: Sequence[int], weights: torch.Tensor) -> plt.Figure:
    """Returns the layer's kernels at each of `epochs` side by side (E×out×in×kh×kw weights),
    each epoch on its own symmetric scale."""
    fig, axes = plt.subplots(1, len(epochs), figsize=(2.9 * len(epochs) + 0.4, 2.9), squeeze=False)
    for ax, epoch, kernels in zip(axes[0], epochs, weights):
        ax.set_title(f"epoch {epoch}\n|w| ≤ {draw_filters(ax, kernels):.2f}")
    fig.suptitle(f"{layer} filters through training (red +, blue −, white 0; scale per epoch)")
    fig.tight_layout()
    return fig


@styled
def filter_frames(layer: str, epochs: Sequence[int], weights: torch.Tensor) -> list[Image.Image]:
    """Returns one picture per epoch of the layer's kernels, all the same size (GIF frames)."""
    frames = []
    for epoch, kernels in zip(epochs, weights):
        fig, ax = plt.subplots(figsize=(5.0, 2.9), dpi=100)
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.86)
        limit = draw_filters(ax, kernels)
        ax.set_title(f"{layer} filters · epoch {epoch} · |w| ≤ {limit:.2f}", fontsize=13)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", facecolor="white")
        plt.close(fig)
        frames.append(Image.open(buffer).convert("RGB"))
    return frames


def save_gif(frames: list[Image.Image], path: Path, ms_per_frame: int = 600) -> Path:
    """Returns `path` after writing the frames there as a looping GIF (last frame held longer)."""
    durations = [ms_per_frame] * (len(frames) - 1) + [3 * ms_per_frame]
    palette = [frame.quantize(colors=128) for frame in frames]
    palette[0].save(path, save_all=True, append_images=palette[1:], duration=durations, loop=0)
    return Path(path)


# ---------------------------------------------------------------- as `netscope inspect` runs it


def skip(reason: str) -> tuple[dict, list[Figure]]:
    """Returns the stage's entry for a run it cannot show, after saying so on stderr."""
    tqdm.write(f"netscope inspect: growth skipped: {reason}", file=sys.stderr)
    return {"skipped": reason}, []


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns the growth of the strongest units of each layer and the first layer's filters
    across the run's checkpoints, with their figures (strips as PNG, filters also as a GIF)."""
    kept = checkpoint_epochs(ctx.run) if ctx.run is not None else {}
    if len(kept) < 2:
        return skip(
            "the run kept no per-epoch weights (RUN/checkpoints/epoch_NN.safetensors; train with "
            "checkpoints on)"
        )
    config, device = ctx.config, ctx.test.device

    def models(epochs: Iterable[int]):
        for epoch in progress_bar(epochs, desc="growth", disable=not config.progress, leave=False):
            yield epoch, load_run(ctx.run.path, kept[epoch]).pixel_model().to(device)

    images = ctx.test[: config.unit_images]
    chosen = {
        layer: strongest_units(unit_examples(ctx, layer), config.units)
        for layer in top_patch_layers(ctx)
    }
    epochs = shown_epochs(kept)
    grown = unit_growth(models(epochs), images, chosen, method=config.projection)
    layer = filters(ctx.model, config.filters_layer)[0]
    every = sorted(kept)
    weights = torch.stack([filters(model, layer)[1] for _, model in models(every)])
    change = (weights - weights[-1]).flatten(1).norm(dim=1) / weights[-1].norm()
    entry: dict = {"epochs": epochs, "searched_images": len(images)}
    entry |= {name: _numbers(growth) for name, growth in grown.items()}
    entry["filters"] = {"layer": layer, "epochs": every, "distance_to_final": change.tolist()}
    figures = [_growth_figure(ctx, growth) for growth in grown.values()]
    return entry, figures + _filter_figures(ctx, layer, every, epochs, weights, change)


def _filter_figures(ctx: Context, layer: str, every: list[int], epochs: list[int],
                    weights: torch.Tensor, change: torch.Tensor) -> list[Figure]:  # fmt: skip
    """Returns the filter strip (the shown epochs) and the GIF (every epoch), once written."""
    strip = plot_filter_strip(layer, epochs, weights[[every.index(e) for e in epochs]])
    caption = (
        f"The first layer's kernels after epochs {', '.join(map(str, epochs))}; their distance "
        f"to the last ones is {change[0]:.0%} of the last ones' size at epoch {every[0]}, "
        f"{change[1]:.0%} after epoch {every[1]}."
    )
    save_gif(filter_frames(layer, every, weights), ctx.out / "growth_filters.gif")
    return [
        save_figure(ctx, strip, "growth_filters.png", f"Filters of {layer} through training",
                    caption),
        Figure("growth_filters.gif", f"Filters of {layer}, epoch by epoch (animated)",
               f"Every kept epoch, {every[0]} to {every[-1]}, one frame each."),
    ]  # fmt: skip


def _numbers(growth: Growth) -> dict:
    return {
        "units": growth.units,
        "strongest_value": growth.values.cpu().tolist(),  # one row per epoch
        "strongest_image": growth.image_index.cpu().tolist(),
    }


def _growth_figure(ctx: Context, growth: Growth) -> Figure:
    return save_figure(
        ctx,
        plot_growth(growth),
        f"growth_{growth.layer.replace('.', '_')}.png",
        f"Units of {growth.layer} through training",
        "Each row follows one unit (the strongest at the end) across epochs: its strongest "
        "patch and what of it the unit responds to (Zeiler & Fergus 2014, Fig. 4).",
    )


STAGE = Stage("growth", "features growing through training", stage)


@figure_of(Growth)
def growth_figure(growth: Growth, path: Path) -> Path:
    """Returns `path` after drawing the units' strips there (what Jupyter shows)."""
    return save(plot_growth(growth), path)
