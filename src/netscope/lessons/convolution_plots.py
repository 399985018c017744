"""The convolution lesson's figures: the worked example, max pooling and a 1×1 convolution, every
number written in its cell. Panels that show comparable values share one colour scale (and one
colour bar), so the same value looks the same side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure as Canvas
from matplotlib.patches import Circle, Rectangle

from netscope.lessons.convolution import (
    DATA,
    EXAMPLE_PIXEL,
    KERNEL,
    POOL_INPUT,
    ConvolutionResult,
    dot_product_text,
    slide_differences,
)

FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}
WINDOW_COLORS = ("#e69f00", "#009e73", "#cc79a7", "#d55e00")  # colour-blind-safe, one per window


def cells(ax, values: torch.Tensor, norm: Normalize, cmap: str, title: str, size: int = 13):
    """Draws a matrix as coloured cells with its numbers written in them; returns the image."""
    colormap = matplotlib.colormaps[cmap]
    image = ax.imshow(values.numpy(), cmap=colormap, norm=norm)
    for i, row in enumerate(values.tolist()):
        for j, value in enumerate(row):
            red, green, blue, _ = colormap(norm(value))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=size,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_title(title)
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    return image


def box(ax, top: int, left: int, height: int, width: int, color: str = "black") -> None:
    """Outlines the cells rows top…top+height−1, columns left…left+width−1."""
    corner = (left - 0.5, top - 0.5)
    ax.add_patch(Rectangle(corner, width, height, fill=False, lw=4, ec=color, clip_on=False))


def save(fig: Canvas, path: Path) -> Path:
    """Returns `path` after writing `fig` there at slide resolution (100 dpi)."""
    fig.savefig(path, dpi=100)
    return path


def symmetric(*tensors: torch.Tensor) -> Normalize:
    """Returns one colour scale −L…L that holds every value of every tensor."""
    limit = max(float(t.abs().max()) for t in tensors)
    return Normalize(-limit, limit)


def draw_worked_example(result: ConvolutionResult) -> Canvas:
    """Returns a figure of data | kernel | cross-correlation (the lecture's output) | true convolution; kernel
    and outputs share one colour scale, the data (pixel values) has its own."""
    shared = symmetric(KERNEL, result.loop, result.flipped)
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(19, 6.2), layout="constrained")
        axes = fig.subplots(1, 4, width_ratios=[6, 3, 4, 4])
        data_image = cells(axes[0], DATA, Normalize(0, float(DATA.max())), "Greys", "input x (6×6)")
        cells(axes[1], KERNEL, shared, "RdBu_r", "weights w (3×3)")
        title = "x ⋆ w = loop = conv2d\n(dashed: the slide differs)"
        cells(axes[2], result.conv2d, shared, "RdBu_r", title)
        for i, j, slide, _ in slide_differences(result.conv2d):
            axes[2].add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, lw=2, ls="--"))
            axes[2].text(j, i + 0.3, f"slide: {slide:g}", ha="center", va="center", fontsize=10)
        image = cells(axes[3], result.flipped, shared, "RdBu_r",
                      "true convolution x ∗ w (w flipped)\n= −(x ⋆ w), as this w flipped is −w")  # fmt: skip
        box(axes[0], 0, 0, 3, 3)
        box(axes[2], 0, 0, 1, 1)
        for ax in axes:
            ax.set(xlabel="column j", ylabel="row i")
        fig.colorbar(data_image, ax=axes[0], shrink=0.8, label="input value")
        fig.colorbar(image, ax=axes[1:], shrink=0.8, label="value (one scale for w and outputs)")
        fig.suptitle(
            "2-D convolution, the lecture's worked example: "
            r"$\mathrm{out}[i, j] = \sum_a \sum_b\; w[a, b]\; x[i+a,\, j+b]$"
            f"\nboxed window: {result.steps[0]}"
        )
    return fig


def draw_max_pool(result: ConvolutionResult) -> Canvas:
    """Returns a figure of the slide's 4×4 input and its 2×2 max pooling on one colour scale, each 2×2 window
    and the output cell it becomes outlined in the same colour."""
    norm = Normalize(0, float(POOL_INPUT.max()))
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(12, 5.6), layout="constrained")
        before, after = fig.subplots(1, 2, width_ratios=[4, 2])
        cells(before, POOL_INPUT, norm, "Blues", "input (4×4)", size=16)
        image = cells(after, result.pooled_loop, norm, "Blues", "output (2×2)", size=16)
        for n, color in enumerate(WINDOW_COLORS):
            i, j = divmod(n, 2)
            box(before, 2 * i, 2 * j, 2, 2, color)
            box(after, i, j, 1, 1, color)
            row, col = divmod(int(POOL_INPUT[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].argmax()), 2)
            before.add_patch(Circle((2 * j + col, 2 * i + row), 0.3, fill=False, lw=3, ec=color))
        for ax in (before, after):
            ax.set(xlabel="column", ylabel="row")
        fig.colorbar(image, ax=[before, after], shrink=0.85, label="value (one scale for both)")
        fig.suptitle("Max pooling, 2×2 filters, stride 2: each block keeps its maximum (circled)")
    return fig


def draw_pointwise(
    result: ConvolutionResult, pixel: tuple[int, int] = EXAMPLE_PIXEL, shown=(0, 1, 2, 63)
) -> Canvas:
    """Returns a figure of a 1×1 convolution: input channels `shown` (one colour scale), filter 0's weights
    and output channel 0, with the dot product at `pixel` written out."""
    images, weight = result.pointwise_images, result.pointwise_weight
    channels, height, _ = images.shape
    i, j = pixel
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(22, 4.4), layout="constrained")
        ratios = [1] * (len(shown) - 1) + [0.7, 1, 1.3, channels / height**2, 0.5, 1]
        axes = fig.subplots(1, len(ratios), width_ratios=ratios)
        *maps, gap, last_map, dot, filter_ax, equals, output_ax = axes
        maps.append(last_map)
        norm = Normalize(0, float(images.max()))
        for ax, c in zip(maps, shown):
            image = cells(ax, images[c], norm, "Greys", f"input channel x[{c}]", size=12)
            box(ax, i, j, 1, 1, "#d55e00")
        _say(gap, f"…\n{channels - len(shown)} more\nchannels\n…")
        _say(dot, "●", size=22, y=0.65)
        _say(dot, f"dot product of\nthe {channels} values\nat each pixel\nwith w[0]", y=0.25)
        _say(equals, "=", size=40)
        weights = weight[0].reshape(height, -1)
        filter_image = cells(filter_ax, weights, Normalize(-1, 1), "coolwarm", size=12,
                             title=f"filter 0 of {len(weight)}: {channels} weights w[0, c], "
                             f"c = {weights.shape[1]}·row + column")  # fmt: skip
        out_map = result.pointwise_loop[0]
        out_image = cells(output_ax, out_map, symmetric(out_map), "PuOr_r", "output channel 0",
                          size=12)  # fmt: skip
        box(output_ax, i, j, 1, 1, "#d55e00")
        for ax, shown_image, label, ticks in (
            (maps, image, f"input value (one scale for all {channels} channels)", None),
            (filter_ax, filter_image, "weight", [-1, 0, 1]),
            (output_ax, out_image, "output value", None),
        ):
            bar = fig.colorbar(shown_image, ax=ax, shrink=0.8, location="bottom", ticks=ticks)
            bar.set_label(label)
        fig.suptitle(
            f"1×1 convolution, {channels} channels → {len(weight)} filters of 1×1×{channels}: "
            "a dot product at every pixel\n" + dot_product_text(result, 0, i, j)
        )
    return fig


def _say(ax, text: str, size: int = 14, y: float = 0.5) -> None:
    ax.axis("off")
    ax.text(0.5, y, text, ha="center", va="center", fontsize=size, transform=ax.transAxes)
