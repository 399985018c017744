"""An image as the computer receives it: its raw pixel values beside the picture.

The lecture's "this is a horse" slide (`shared/seeds/001`) prints a CIFAR-10 training image (index
43) as the numbers a program gets, channel by channel: nothing in them says "horse". This is the
semantic gap that a model has to bridge. `netscope data show NAME INDEX` does the same for any
image of any data set netscope loads.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import torch
from matplotlib.figure import Figure as Canvas
from matplotlib.patches import Rectangle

from netscope.data import Dataset, load_dataset
from netscope.errors import NetscopeError

CHANNEL_NAMES = {1: ("grey",), 3: ("red", "green", "blue")}
PRINTED = 32  # the most rows/columns printed: 32 three-digit numbers make a 128-character line
PLOTTED = {1: 28, 3: 10}  # the most rows/columns whose numbers the figure writes, per channel


def pick_image(dataset: Dataset, index: int, split: str = "train") -> tuple[torch.Tensor, int]:
    """Returns (image C×H×W uint8, label) number `index` of `split` ("train" or "test")."""
    if split not in ("train", "test"):
        raise NetscopeError(f"--split {split!r}: expected train or test")
    images = dataset.train_images if split == "train" else dataset.test_images
    labels = dataset.train_labels if split == "train" else dataset.test_labels
    if not 0 <= index < len(images):
        raise NetscopeError(
            f"index {index} is out of range: {dataset.name} has {len(images):,} {split} images "
            f"(expected 0 to {len(images) - 1:,})"
        )
    return images[index], int(labels[index])


def central_window(height: int, width: int, limit: int) -> tuple[int, int, int, int]:
    """Returns (top, left, rows, columns) of the central window of at most `limit`×`limit`."""
    rows, cols = min(height, limit), min(width, limit)
    return (height - rows) // 2, (width - cols) // 2, rows, cols


def channel_names(channels: int) -> tuple[str, ...]:
    """Returns a name per channel: grey, or red/green/blue, or channel numbers."""
    return CHANNEL_NAMES.get(channels, tuple(f"channel {c}" for c in range(channels)))


def format_pixels(image: torch.Tensor, limit: int = PRINTED) -> list[str]:
    """Returns the values of a C×H×W uint8 image as text, one grid of 3-digit numbers per
    channel; an image larger than `limit` pixels shows its central `limit`×`limit` window and
    says which rows and columns those are."""
    channels, height, width = image.shape
    top, left, rows, cols = central_window(height, width, limit)
    lines = []
    for c, name in enumerate(channel_names(channels)):
        where = ""
        if (rows, cols) != (height, width):
            where = f", rows {top}–{top + rows - 1} and columns {left}–{left + cols - 1}"
        lines.append(f"channel {c} ({name}){where}:")
        window = image[c, top : top + rows, left : left + cols]
        lines += [" ".join(f"{v:3d}" for v in row) for row in window.tolist()]
    return lines


def describe(dataset: Dataset, index: int, split: str, label: int, image: torch.Tensor) -> str:
    """Returns one line saying which image this is and what it is made of."""
    channels, height, width = image.shape
    name = dataset.classes[label]
    return (
        f"{dataset.name} {split} image {index}, class {label}"
        + ("" if name == str(label) else f" ({name})")
        + f": {image.numel():,} numbers from 0 to 255 ({channels}×{height}×{width}: "
        f"{', '.join(channel_names(channels))})"
    )


def draw_pixels(image: torch.Tensor, title: str) -> Canvas:
    """Returns a figure with the picture beside its numbers, one grid per channel; a large image
    shows the numbers of its central window, boxed on the picture."""
    channels, height, width = image.shape
    top, left, rows, cols = central_window(height, width, PLOTTED.get(channels, PLOTTED[3]))
    many = rows > 16  # a 28×28 grid needs big panels and small digits
    panel, size = (10, 8) if many else (6.5, 12)
    with matplotlib.rc_context({"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}):
        fig = Canvas(figsize=(panel * (1 + channels), panel + 0.6), layout="constrained")
        picture, *grids = fig.subplots(1, 1 + channels)
        shown = image.permute(1, 2, 0).numpy() if channels == 3 else image[0].numpy()
        picture.imshow(shown, cmap="gray", vmin=0, vmax=255)
        picture.set_title(f"the picture ({height}×{width})")
        picture.set(xlabel="column", ylabel="row")
        if (rows, cols) != (height, width):
            picture.add_patch(Rectangle((left - 0.5, top - 0.5), cols, rows, fill=False, lw=3,
                                        ec="#ffcc00"))  # fmt: skip
        for c, (ax, name) in enumerate(zip(grids, channel_names(channels))):
            window = image[c, top : top + rows, left : left + cols]
            _numbers(ax, window, top, left, size)
            ax.set_title(f"{name} values, rows {top}–{top + rows - 1}, columns "
                         f"{left}–{left + cols - 1}")  # fmt: skip
        fig.suptitle(title)
    return fig


def _numbers(ax, values: torch.Tensor, top: int, left: int, size: int) -> None:
    """Writes each value in a white cell, axes numbered as in the whole image: the numbers
    alone, as a program receives them."""
    rows, cols = values.shape
    extent = (left - 0.5, left + cols - 0.5, top + rows - 0.5, top - 0.5)
    ax.imshow(torch.zeros_like(values).numpy(), cmap="Greys", vmin=0, vmax=1, extent=extent)
    for i, row in enumerate(values.tolist()):
        for j, value in enumerate(row):
            ax.text(left + j, top + i, str(value), ha="center", va="center", fontsize=size)
    ax.set(xlabel="column", ylabel="row")


def show(
    dataset: Dataset | str | Path,
    index: int | None,
    split: str = "train",
    out: str | Path | None = None,
    root: str | Path | None = None,
) -> list[str]:
    """Returns the lines `netscope data show` prints for image `index` of `split`: what it is
    and its numbers; with `out` (a .png path) also writes the picture beside its numbers.
    `dataset`: a Dataset, or a name/folder for `load_dataset` (with `root`)."""
    if index is None:
        raise NetscopeError("netscope data show: give the image's INDEX (e.g. data show mnist 0)")
    if out is not None and Path(out).suffix.lower() != ".png":
        raise NetscopeError(f"--out {out}: expected a file name ending in .png")
    if not isinstance(dataset, Dataset):
        dataset = load_dataset(dataset, root=root)
    image, label = pick_image(dataset, index, split)
    lines = [describe(dataset, index, split, label, image), *format_pixels(image)]
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        title = (
            f"What the computer gets for a '{dataset.classes[label]}' ({dataset.name} {split} "
            f"image {index}): {image.numel():,} numbers from 0 to 255"
        )
        draw_pixels(image, title).savefig(out, dpi=100)
        lines.append(f"netscope: wrote {out}")
    return lines
