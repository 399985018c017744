"""What the figures of netscope.inspect share: the slide-sized style, drawing an image, tiling
images into a mosaic, and `save`. Each method's own `plot_*` lives beside the method."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib  # noqa: F401 (the plot_* beside each method take its colormaps from here)
import numpy as np
import torch
from matplotlib.figure import Figure

from netscope.png import pyplot, save_png

plt = pyplot()
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
