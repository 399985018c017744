"""Figures for everything in netscope.inspect, sized and labelled for slides.

Each `plot_*` takes the computed tensors and returns a matplotlib Figure; `save` writes it."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from netscope.inspect.classmodel import ClassModels  # noqa: E402
from netscope.inspect.morph import Morph  # noqa: E402
from netscope.inspect.receptive import TopPatches  # noqa: E402
from netscope.png import save_png  # noqa: E402

plt.rcParams.update({"font.size": 12, "axes.titlesize": 12, "figure.titlesize": 15})


def save(fig: Figure, path: Path, dpi: int = 100) -> Path:
    """Returns `path` after writing the figure there in the inspect style (trimmed, white)."""
    return save_png(fig, path, tight=False, dpi=dpi, bbox_inches="tight", facecolor="white")


def as_picture(image: torch.Tensor) -> np.ndarray:
    """Returns a C×H×W image as H×W (one channel) or H×W×3 for imshow."""
    image = image.detach().float().cpu()
    return image[0].numpy() if image.shape[0] != 3 else image.permute(1, 2, 0).numpy()


def show(ax, image: torch.Tensor, title: str | None = None, **kwargs) -> None:
    """Draws one [0, 1] image without axes."""
    ax.imshow(as_picture(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def mosaic(tiles: torch.Tensor, columns: int, gap: int = 1, fill=float("nan")) -> torch.Tensor:
    """Returns T×...×h×w tiles laid out in a grid with `gap` pixels of `fill` between them."""
    h, w = tiles.shape[-2:]
    rows = math.ceil(len(tiles) / columns)
    channels = tiles.shape[1] if tiles.ndim == 4 else None
    shape = (rows * (h + gap) - gap, columns * (w + gap) - gap)
    out = torch.full(((channels,) if channels else ()) + shape, fill)
    for n, tile in enumerate(tiles.cpu()):
        r, c = divmod(n, columns)
        out[..., r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return out


def plot_filters(layer: str, weights: torch.Tensor, columns: int = 8) -> Figure:
    """Returns every kernel of a conv layer on one shared diverging colour scale (0 = white); a
    kernel with several input channels shows them side by side."""
    out_ch, in_ch, kh, kw = weights.shape
    shown = weights[:, :8].detach().float().cpu()  # at most 8 input channels per filter
    tiles = torch.stack([mosaic(f[:, None], columns=shown.shape[1])[0] for f in shown])
    columns = min(columns, out_ch) if in_ch == 1 else min(4, out_ch)
    grid = mosaic(tiles, columns, gap=1 if in_ch == 1 else 3)  # wider between filters
    limit = float(weights.abs().max())
    width = min(14, 1.2 + 0.9 * columns * max(1, shown.shape[1] * kw / 8))
    fig, ax = plt.subplots(figsize=(width, width * grid.shape[0] / grid.shape[1] + 0.8))
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d0d0d0")
    image = ax.imshow(grid.numpy(), cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    note = "" if in_ch == 1 else f", input channels side by side{' (first 8)' if in_ch > 8 else ''}"
    ax.set_title(f"{layer}: {out_ch} filters of {in_ch}×{kh}×{kw}{note}")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="weight")
    return fig


def plot_top_patches(top: TopPatches, max_units: int = 64, columns: int = 8) -> Figure:
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


def plot_occlusion(
    images: torch.Tensor, maps: torch.Tensor, titles: list[str], window: int
) -> Figure:
    """Returns each image above its occlusion map (probability of the true class)."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n + 1.2, 5.2), squeeze=False)
    for k in range(n):
        show(axes[0, k], images[k], titles[k])
        heat = axes[1, k].imshow(maps[k].cpu().numpy(), cmap="magma", vmin=0, vmax=1)
        axes[1, k].set_xticks([])
        axes[1, k].set_yticks([])
        axes[1, k].set_title(f"lowest {maps[k].min():.2f}")
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel(f"grey {window}×{window}\nsquare here")
    fig.colorbar(heat, ax=axes[1, :].tolist(), fraction=0.03, pad=0.02, label="p(true class)")
    fig.suptitle(
        "Occlusion: probability of the true class with a grey square centred on each pixel"
    )
    return fig


def plot_attributions(
    images: torch.Tensor, saliency: torch.Tensor, ig: torch.Tensor, titles: list[str], steps: int
) -> Figure:
    """Returns image, saliency map and integrated gradients for each image, each map scaled to
    its own maximum."""
    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(2.2 * n + 1.4, 7.4), squeeze=False)
    ig_sum = ig.sum(1).cpu()
    for k in range(n):
        show(axes[0, k], images[k], titles[k])
        sal = saliency[k].cpu() / saliency[k].max().clamp_min(1e-12)
        s_img = axes[1, k].imshow(sal.numpy(), cmap="hot", vmin=0, vmax=1)
        signed = ig_sum[k] / ig_sum[k].abs().max().clamp_min(1e-12)
        i_img = axes[2, k].imshow(signed.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        for ax in axes[1:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("saliency\n|∂score/∂pixel|")
    axes[2, 0].set_ylabel(f"integrated\ngradients ({steps} steps)")
    fig.colorbar(s_img, ax=axes[1, :].tolist(), fraction=0.03, pad=0.02, label="÷ max")
    fig.colorbar(i_img, ax=axes[2, :].tolist(), fraction=0.03, pad=0.02, label="÷ max |IG|")
    fig.suptitle(
        "Which pixels matter for the true class: gradient (saliency) and integrated gradients"
    )
    return fig


def plot_class_models(models: ClassModels, class_names: list[str], columns: int = 5) -> Figure:
    """Returns one optimised image per class with the model's probability for that class."""
    n = len(models.classes)
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.3 * columns, 2.5 * rows + 0.6), squeeze=False
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            name = class_names[models.classes[k]]
            show(ax, models.images[k], f"class {name}: p = {models.probability[k]:.3f}")
    fig.suptitle("Class models: the input each class's score likes most (grown from grey)")
    fig.tight_layout()
    return fig


def plot_dream(before: torch.Tensor, after: torch.Tensor, titles: list[str], layer: str) -> Figure:
    """Returns each image before and after dreaming on `layer`."""
    n = len(before)
    fig, axes = plt.subplots(n, 2, figsize=(8, 4 * n + 0.6), squeeze=False)
    for k in range(n):
        show(axes[k, 0], before[k], f"{titles[k]}: before")
        show(axes[k, 1], after[k], f"after dreaming on {layer}")
    fig.suptitle(f"Deep Dream: amplifying what {layer} sees, at several scales")
    fig.tight_layout()
    return fig


def plot_morph(morphs: Morph, sources: list[str], class_names: list[str]) -> Figure:
    """Returns each morph's frames with the step, the target's probability and the top class."""
    n, frames = morphs.frames.shape[:2]
    fig, axes = plt.subplots(n, frames, figsize=(2.2 * frames, 3.2 * n + 0.5), squeeze=False)
    for row in range(n):
        target = int(morphs.targets[row])
        for col in range(frames):
            probs = morphs.probabilities[row, col]
            top = int(probs.argmax())
            title = (
                f"step {int(morphs.steps[row, col])}\n"
                f"p({class_names[target]}) = {probs[target]:.2f}\ntop: {class_names[top]} "
                f"({probs[top]:.2f})"
            )
            show(axes[row, col], morphs.frames[row, col], title)
        axes[row, 0].set_ylabel(f"{sources[row]} → {class_names[target]}", fontsize=13)
    fig.suptitle("Morphing toward another class: the path of the optimisation")
    fig.tight_layout()
    return fig
