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

import torch
import torch.nn.functional as F

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


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its three figures into `out`."""
    out = make_folder(out)
    from netscope.lessons import convolution_plots as plots

    result = compute(seed)
    figures = [
        Figure(
            plots.save(plots.draw_worked_example(result), out / "convolution_worked_example.png"),
            "The lecture's worked example",
            "The boxed 3×3 window of x, weighted by w and summed, gives the boxed −6; flipping "
            "the kernel (a true convolution) changes every sign here.",
        ),
        Figure(
            plots.save(plots.draw_max_pool(result), out / "convolution_max_pool.png"),
            "Max pooling, 2×2 filters, stride 2",
            "Each coloured 2×2 block keeps its largest value; both panels share one colour scale.",
        ),
        Figure(
            plots.save(plots.draw_pointwise(result), out / "convolution_1x1.png"),
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
