"""Convolution and pooling by hand: the worked examples of Lecture 18 (`shared/seeds/004`), each
computed with plain loops and checked against `torch.nn.functional`.

The lecture's layer computes out[i, j] = Σ_a Σ_b w[a, b] · x[i + a, j + b]: the kernel is not
flipped, so what deep-learning frameworks call "convolution" is a cross-correlation. A true
convolution flips the kernel in both directions first; the lesson shows both. Then max pooling
(the slide's 2×2, stride 2 example) and a 1×1 convolution (64 channels → 32 filters, each output
a 64-dimensional dot product), as on the CS231n slides the lecture shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from matplotlib.colors import Normalize
from matplotlib.figure import Figure as Canvas
from matplotlib.patches import Circle, Rectangle

from netscope.lessons import Figure, LessonResult, make_folder

# Lecture 18, "2D Convolution": the data x (6×6), the weights w (3×3) and the output x * w (4×4).
DATA = torch.tensor(
    [
        [1.0, 2, 5, 1, 4, 2],
        [0, 2, 3, 2, 0, 0],
        [4, 5, 5, 9, 8, 1],
        [6, 3, 4, 2, 3, 1],
        [0, 1, 9, 8, 7, 2],
        [2, 3, 5, 5, 5, 6],
    ]
)
KERNEL = torch.tensor([[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]])
LECTURE_OUTPUT = torch.tensor(
    [[-6.0, -11, -12, -11], [-7, -2, -2, -4], [4, 1, -2, 1], [3, -4, -6, -10]]
)
# The slides write the first five outputs term by term, in reading order, with these totals.
# Their terms are right, but the fifth total is not their sum (the terms sum to −8), and the
# 4×4 output above has one more slip (out[1, 2] is −4, not −2): the lesson prints both.
SLIDE_STEP_TOTALS = (-6.0, -11, -12, -11, -7)
# Lecture 18, "Max Pooling" ("max pool with 2x2 filters and stride 2" → 6 8 / 3 4). The slide's
# 4×4 input is a picture (not in the seed's text); this is the input of the CS231n 2018 slide it
# credits (Fei-Fei Li, Johnson & Yeung, lecture 5, "single depth slice"). The lesson checks it
# gives the seed's output.
POOL_INPUT = torch.tensor([[1.0, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
LECTURE_POOL_OUTPUT = torch.tensor([[6.0, 8], [3, 4]])
# Lecture 18, "1×1 Convolution Explained": 64 input channels, 32 filters of size 1×1×64. The
# slide draws volumes, not numbers; the lesson fills a small 4×4 map with digits 0–9 and the
# filters with weights −1, 0, 1 so that one dot product can be checked by hand.
POINTWISE_SHAPE = (64, 4, 4)
POINTWISE_FILTERS = 32
EXAMPLE_PIXEL = (1, 2)  # the pixel whose dot product is written out


def correlate_loop(data: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Returns the valid cross-correlation of a 2-D `data` with a 2-D `kernel`, written as the
    lecture's formula out[i, j] = Σ_a Σ_b kernel[a, b] · data[i + a, j + b] with plain loops."""
    rows = data.shape[0] - kernel.shape[0] + 1
    cols = data.shape[1] - kernel.shape[1] + 1
    out = torch.zeros(rows, cols, dtype=data.dtype)
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for a in range(kernel.shape[0]):
                for b in range(kernel.shape[1]):
                    total += float(kernel[a, b] * data[i + a, j + b])
            out[i, j] = total
    return out


def correlate_conv2d(data: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Returns the same computation done by the framework's `conv2d` (one image, one channel)."""
    return F.conv2d(data[None, None], kernel[None, None].to(data))[0, 0]


def convolve_loop(data: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Returns the true (flipped-kernel) valid convolution of signal processing."""
    return correlate_loop(data, kernel.flip(0, 1))


def products(weights: list[float], values: list[float]) -> list[str]:
    """Returns the terms "w·x" of a dot product as the slides write them: 1·2, (-1)·5."""
    return [f"({w:g})·{x:g}" if w < 0 else f"{w:g}·{x:g}" for w, x in zip(weights, values)]


def step_by_step(data: torch.Tensor, kernel: torch.Tensor, i: int, j: int) -> str:
    """Returns output (i, j) written out term by term, as the slides do:
    "out[0, 0] = 1·1 + 1·2 + 1·5 + 0·0 + … + (-1)·5 = -6"."""
    window = data[i : i + kernel.shape[0], j : j + kernel.shape[1]]
    weights, values = kernel.flatten().tolist(), window.flatten().tolist()
    total = sum(w * x for w, x in zip(weights, values))
    return f"out[{i}, {j}] = " + " + ".join(products(weights, values)) + f" = {total:g}"


def max_pool_loop(data: torch.Tensor, size: int = 2, stride: int = 2) -> torch.Tensor:
    """Returns the maximum of each `size`×`size` window taken every `stride` pixels (2-D)."""
    rows = (data.shape[0] - size) // stride + 1
    cols = (data.shape[1] - size) // stride + 1
    out = torch.empty(rows, cols, dtype=data.dtype)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = data[i * stride : i * stride + size, j * stride : j * stride + size].max()
    return out


def pointwise_loop(images: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Returns a 1×1 convolution written as one dot product per filter and pixel: for C×H×W
    `images` and an O×C `weight`, out[k, i, j] = weight[k] · images[:, i, j] (C terms)."""
    _, height, width = images.shape
    out = torch.empty(len(weight), height, width, dtype=images.dtype)
    for k in range(len(weight)):
        for i in range(height):
            for j in range(width):
                out[k, i, j] = torch.dot(weight[k], images[:, i, j])
    return out


def pointwise_example(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (images 64×4×4 of digits 0–9, weight 32×64 of −1/0/1) drawn with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 10, POINTWISE_SHAPE, generator=generator).float()
    weight = torch.randint(-1, 2, (POINTWISE_FILTERS, POINTWISE_SHAPE[0]), generator=generator)
    return images, weight.float()


@dataclass
class ConvolutionResult:
    """Every output of the lesson, each computed by a loop and by torch.nn.functional."""

    loop: torch.Tensor
    conv2d: torch.Tensor
    flipped: torch.Tensor
    steps: list[str]
    pooled_loop: torch.Tensor
    pooled_framework: torch.Tensor
    pointwise_images: torch.Tensor
    pointwise_weight: torch.Tensor
    pointwise_loop: torch.Tensor
    pointwise_conv2d: torch.Tensor


def compute(seed: int = 0) -> ConvolutionResult:
    """Returns the worked example, the max-pool example and a 1×1 convolution, each done two ways."""
    cols = DATA.shape[1] - KERNEL.shape[1] + 1
    images, weight = pointwise_example(seed)
    return ConvolutionResult(
        loop=correlate_loop(DATA, KERNEL),
        conv2d=correlate_conv2d(DATA, KERNEL),
        flipped=convolve_loop(DATA, KERNEL),
        steps=[step_by_step(DATA, KERNEL, *divmod(n, cols)) for n in range(len(SLIDE_STEP_TOTALS))],
        pooled_loop=max_pool_loop(POOL_INPUT),
        pooled_framework=F.max_pool2d(POOL_INPUT[None, None], 2, stride=2)[0, 0],
        pointwise_images=images,
        pointwise_weight=weight,
        pointwise_loop=pointwise_loop(images, weight),
        pointwise_conv2d=F.conv2d(images[None], weight[:, :, None, None])[0],
    )


def grid_lines(values: torch.Tensor, indent: str = "  ") -> list[str]:
    """Returns a matrix as text lines, one per row, numbers right-aligned."""
    width = max(len(f"{v:g}") for v in values.flatten().tolist()) + 1
    return [indent + "".join(f"{v:g}".rjust(width) for v in row) for row in values.tolist()]


def inline(values: torch.Tensor) -> str:
    """Returns a matrix on one line, rows separated by " / "."""
    return " / ".join(" ".join(f"{v:g}" for v in row) for row in values.tolist())


def dot_product_text(result: ConvolutionResult, k: int, i: int, j: int, shown: int = 3) -> str:
    """Returns out[k, i, j] of the 1×1 convolution as its dot product, first terms and last."""
    terms = products(result.pointwise_weight[k].tolist(), result.pointwise_images[:, i, j].tolist())
    written = " + ".join(terms[:shown]) + " + … + " + terms[-1]
    total = float(result.pointwise_loop[k, i, j])
    product = f"out[{k}, {i}, {j}] = w[{k}] · x[:, {i}, {j}]"
    return f"{product} = {written} = {total:g} ({len(terms)} terms)"


def slide_differences(output: torch.Tensor) -> list[tuple[int, int, float, float]]:
    """Returns (i, j, the slide's value, `output`'s value) for each cell where the slide's 4×4
    output differs from `output`."""
    differ = (output != LECTURE_OUTPUT).nonzero().tolist()
    return [(i, j, float(LECTURE_OUTPUT[i, j]), float(output[i, j])) for i, j in differ]


def checked_steps(result: ConvolutionResult) -> list[str]:
    """Returns each term-by-term sum beside the total the slide writes for it."""
    lines = []
    for step, slide, total in zip(result.steps, SLIDE_STEP_TOTALS, result.loop.flatten().tolist()):
        verdict = "✓" if slide == total else f"✗ (its own terms sum to {total:g})"
        lines.append(f"{step}   slide: {slide:g} {verdict}")
    return lines


def summary_lines(result: ConvolutionResult) -> list[str]:
    """Returns what the lesson prints: the slide's input, sums and output, pooling and 1×1."""
    channels, height, width = result.pointwise_images.shape
    slips = [
        f"out[{i}, {j}]: slide {slide:g}, sum {total:g}"
        for i, j, slide, total in slide_differences(result.loop)
    ]
    return [
        "2-D convolution, the worked example of Lecture 18 (input x, weights w):",
        f"x ({DATA.shape[0]}×{DATA.shape[1]}):", *grid_lines(DATA),
        f"w ({KERNEL.shape[0]}×{KERNEL.shape[1]}):", *grid_lines(KERNEL),
        "out[i, j] = Σ_a Σ_b w[a, b]·x[i+a, j+b]: the slide's first outputs, term by term:",
        *checked_steps(result),
        f"x ⋆ w ({result.loop.shape[0]}×{result.loop.shape[1]}), plain loop; loop == conv2d: "
        f"{torch.equal(result.loop, result.conv2d)}", *grid_lines(result.loop),
        "the slide's 4×4 output:", *grid_lines(LECTURE_OUTPUT),
        f"the slide's output differs in {len(slips)} of {LECTURE_OUTPUT.numel()} cells "
        f"(arithmetic slips on the slide): " + "; ".join(slips),
        "conv2d is a cross-correlation: the flipped-kernel (true) convolution gives "
        + inline(result.flipped),
        "max pooling with 2×2 filters and stride 2, the slide's example (its 4×4 input as on the "
        "CS231n slide the lecture credits):",
        *grid_lines(POOL_INPUT),
        f"-> {inline(result.pooled_loop)} (loop == max_pool2d: "
        f"{torch.equal(result.pooled_loop, result.pooled_framework)}; equals the slide's "
        f"{inline(LECTURE_POOL_OUTPUT)}: {torch.equal(result.pooled_loop, LECTURE_POOL_OUTPUT)})",
        f"1×1 convolution with {len(result.pointwise_weight)} filters of size 1×1×{channels} on a "
        f"{channels}×{height}×{width} input: each output is a {channels}-dimensional dot product",
        dot_product_text(result, 0, *EXAMPLE_PIXEL),
        "per-pixel dot products == conv2d with 1×1 kernels: "
        f"{torch.allclose(result.pointwise_loop, result.pointwise_conv2d)} "
        f"(output {'×'.join(map(str, result.pointwise_loop.shape))})",
    ]  # fmt: skip


# ---------------------------------------------------------------- figures

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


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its three figures into `out`."""
    out = make_folder(out)
    result = compute(seed)
    figures = [
        Figure(
            save(draw_worked_example(result), out / "convolution_worked_example.png"),
            "The lecture's worked example",
            "The boxed 3×3 window of x, weighted by w and summed, gives the boxed −6; flipping "
            "the kernel (a true convolution) changes every sign here.",
        ),
        Figure(
            save(draw_max_pool(result), out / "convolution_max_pool.png"),
            "Max pooling, 2×2 filters, stride 2",
            "Each coloured 2×2 block keeps its largest value; both panels share one colour scale.",
        ),
        Figure(
            save(draw_pointwise(result), out / "convolution_1x1.png"),
            "A 1×1 convolution is a dot product at every pixel",
            "At the boxed pixel, the 64 input values are multiplied by filter 0's 64 weights and "
            "summed into one output value.",
        ),
    ]
    numbers = {
        "input": DATA.tolist(),
        "kernel": KERNEL.tolist(),
        "steps": result.steps,
        "slide_step_totals": list(SLIDE_STEP_TOTALS),
        "output": result.loop.tolist(),
        "loop_equals_conv2d": torch.equal(result.loop, result.conv2d),
        "slide_output": LECTURE_OUTPUT.tolist(),
        "slide_output_differences": [
            {"cell": [i, j], "slide": slide, "computed": total}
            for i, j, slide, total in slide_differences(result.loop)
        ],
        "true_convolution": result.flipped.tolist(),
        "max_pool_input": POOL_INPUT.tolist(),
        "max_pool": result.pooled_loop.tolist(),
        "max_pool_equals_framework": torch.equal(result.pooled_loop, result.pooled_framework),
        "one_by_one_shape": list(result.pointwise_loop.shape),
        "one_by_one_equals_conv2d": torch.allclose(result.pointwise_loop, result.pointwise_conv2d),
    }
    return LessonResult("convolution", summary_lines(result), numbers, figures)
