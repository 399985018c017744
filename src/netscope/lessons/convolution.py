"""Convolution and pooling by hand: the lecture's 6×6 ⋆ 3×3 example, a plain loop against conv2d.

The lecture's layer computes out[i, j] = Σ_a Σ_b x[i + a, j + b] · w[a, b] (+ bias): the kernel
is not flipped, so what deep-learning frameworks call "convolution" is a cross-correlation. A true
convolution flips the kernel in both directions first; the lesson shows both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure as Canvas
from matplotlib.patches import Rectangle

from netscope.lessons import Figure, LessonResult

KERNEL = torch.tensor([[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]])
LECTURE_OUTPUT = torch.tensor(
    [[-6.0, -11, -12, -11], [-7, -2, -2, -4], [4, 1, -2, 1], [3, -4, -6, -10]]
)
# The lecture's slide states the kernel and the 4×4 output; its 6×6 input is not part of this
# project's material, so this is a 6×6 input of digits 0–9 that gives exactly that output (one of
# many: 16 equations, 36 unknowns). Replace it with the slide's numbers when you have them.
DATA = torch.tensor(
    [
        [4.0, 4, 0, 0, 1, 4],
        [1, 4, 3, 4, 4, 0],
        [4, 6, 4, 5, 4, 7],
        [6, 4, 5, 4, 4, 4],
        [3, 3, 4, 7, 4, 4],
        [4, 4, 4, 9, 6, 7],
    ]
)
FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}


def correlate_loop(data: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Returns the valid cross-correlation of a 2-D `data` with a 2-D `kernel`, written as the
    lecture's formula out[i, j] = Σ_a Σ_b data[i + a, j + b] · kernel[a, b] with plain loops."""
    rows = data.shape[0] - kernel.shape[0] + 1
    cols = data.shape[1] - kernel.shape[1] + 1
    out = torch.zeros(rows, cols, dtype=data.dtype)
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for a in range(kernel.shape[0]):
                for b in range(kernel.shape[1]):
                    total += float(data[i + a, j + b] * kernel[a, b])
            out[i, j] = total
    return out


def correlate_conv2d(data: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Returns the same computation done by the framework's `conv2d` (one image, one channel)."""
    return F.conv2d(data[None, None], kernel[None, None].to(data))[0, 0]


def convolve_loop(data: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Returns the true (flipped-kernel) valid convolution of signal processing."""
    return correlate_loop(data, kernel.flip(0, 1))


def max_pool_loop(data: torch.Tensor, size: int = 2, stride: int = 2) -> torch.Tensor:
    """Returns the maximum of each `size`×`size` window taken every `stride` pixels (2-D)."""
    rows = (data.shape[0] - size) // stride + 1
    cols = (data.shape[1] - size) // stride + 1
    out = torch.empty(rows, cols, dtype=data.dtype)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = data[i * stride : i * stride + size, j * stride : j * stride + size].max()
    return out


def pointwise_matmul(images: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Returns a 1×1 convolution written as a matrix product at every pixel: for C×H×W `images`
    and an O×C `weight`, out[:, y, x] = weight @ images[:, y, x]."""
    channels, height, width = images.shape
    pixels = images.reshape(channels, height * width)  # one column per pixel
    return (weight @ pixels).reshape(len(weight), height, width)


@dataclass
class ConvolutionResult:
    """Every output of the lesson, each computed two ways."""

    loop: torch.Tensor
    conv2d: torch.Tensor
    flipped: torch.Tensor
    pooled_loop: torch.Tensor
    pooled_framework: torch.Tensor
    pointwise_images: torch.Tensor
    pointwise_weight: torch.Tensor
    pointwise_matmul: torch.Tensor
    pointwise_conv2d: torch.Tensor


def compute(seed: int = 0) -> ConvolutionResult:
    """Returns the worked example, its max pooling and a 1×1 convolution, each done two ways."""
    loop = correlate_loop(DATA, KERNEL)
    pooled_framework = F.max_pool2d(loop[None, None], 2, stride=2)[0, 0]
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 10, (3, 4, 4), generator=generator).float()
    weight = torch.randint(-2, 3, (2, 3), generator=generator).float()
    return ConvolutionResult(
        loop=loop,
        conv2d=correlate_conv2d(DATA, KERNEL),
        flipped=convolve_loop(DATA, KERNEL),
        pooled_loop=max_pool_loop(loop),
        pooled_framework=pooled_framework,
        pointwise_images=images,
        pointwise_weight=weight,
        pointwise_matmul=pointwise_matmul(images, weight),
        pointwise_conv2d=F.conv2d(images[None], weight[:, :, None, None])[0],
    )


def _grid(ax, values: torch.Tensor, title: str, diverging: bool = True, window=None) -> None:
    """Draws a matrix as coloured cells with its numbers written in them."""
    limit = max(1.0, float(values.abs().max()))
    if diverging:
        ax.imshow(values.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    else:
        ax.imshow(values.numpy(), cmap="Greys", vmin=0, vmax=2 * limit)
    for i, row in enumerate(values.tolist()):
        for j, value in enumerate(row):
            dark = diverging and abs(value) > 0.6 * limit
            ax.text(
                j, i, f"{value:g}", ha="center", va="center", color="white" if dark else "black"
            )
    if window is not None:
        top, left, size = window
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, lw=3, ec="black"))
    ax.set_title(title)
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.set_xlabel("column j")
    ax.set_ylabel("row i")


def save_worked_example(result: ConvolutionResult, path: Path) -> Path:
    """Writes data | kernel | cross-correlation (the lecture's output) | true convolution."""
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(19, 5.6), layout="constrained")
        axes = fig.subplots(1, 4, width_ratios=[6, 3.6, 4, 4])
        _grid(axes[0], DATA, "input x (6×6)", diverging=False, window=(0, 0, 3))
        _grid(axes[1], KERNEL, "kernel w (3×3)")
        _grid(
            axes[2], result.conv2d, "x ⋆ w: loop = conv2d\n(the lecture's output)", window=(0, 0, 1)
        )
        _grid(
            axes[3],
            result.flipped,
            "true convolution x ∗ w (kernel flipped)\n= −(x ⋆ w), as this w flipped is −w",
        )
        fig.suptitle(
            r"$\mathrm{out}[i, j] = \sum_a \sum_b\; x[i+a,\, j+b]\; w[a, b]$"
            "   (the boxed window of x gives the boxed output)"
        )
        fig.savefig(path, dpi=100)
    return path


def save_pool_and_pointwise(result: ConvolutionResult, path: Path) -> Path:
    """Writes the 2×2/2 max pooling of the output and a 1×1 convolution as per-pixel products."""
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(19, 5.6), layout="constrained")
        axes = fig.subplots(1, 4)
        _grid(axes[0], result.loop, "conv output (4×4)", window=(0, 0, 2))
        _grid(axes[1], result.pooled_loop, "2×2 max pool, stride 2\n(loop = max_pool2d)")
        _grid(axes[2], result.pointwise_weight, "1×1 conv weight W\n(2 out × 3 in channels)")
        axes[2].set_xlabel("input channel c")
        axes[2].set_ylabel("output channel o")
        _grid(
            axes[3], result.pointwise_conv2d[0], "1×1 conv, output channel 0\n= W[0] · x[:, i, j]"
        )
        fig.suptitle(
            "Pooling keeps the largest value per window; a 1×1 conv mixes channels per pixel"
        )
        fig.savefig(path, dpi=100)
    return path


def run(out: Path, full: bool = False, seed: int = 0) -> LessonResult:
    """Returns the lesson's findings after writing its two figures into `out`."""
    result = compute(seed)
    agree = torch.equal(result.loop, result.conv2d)
    matches = torch.equal(result.loop, LECTURE_OUTPUT)
    pool_agree = torch.equal(result.pooled_loop, result.pooled_framework)
    pointwise_agree = torch.allclose(result.pointwise_matmul, result.pointwise_conv2d)
    rows = [" ".join(f"{v:g}" for v in row) for row in result.loop.tolist()]
    summary = [
        "x ⋆ w with w = [[1,1,1],[0,0,0],[-1,-1,-1]] (plain loop): " + " / ".join(rows),
        f"loop == conv2d: {agree}; equals the lecture's 4×4 output: {matches}",
        "conv2d is a cross-correlation: the flipped-kernel (true) convolution gives "
        + " / ".join(" ".join(f"{v:g}" for v in row) for row in result.flipped.tolist()),
        "2×2 max pooling, stride 2: "
        + " / ".join(" ".join(f"{v:g}" for v in row) for row in result.pooled_loop.tolist())
        + f" (loop == max_pool2d: "
        f"{pool_agree})",
        f"1×1 convolution == per-pixel matrix product W @ x[:, i, j]: {pointwise_agree}",
        "note: the 6×6 input is reconstructed to give the slide's output (see convolution.DATA)",
    ]
    figures = [
        Figure(
            save_worked_example(result, out / "convolution_worked_example.png"),
            "The lecture's worked example",
            "The boxed 3×3 window of x times w, summed, gives the boxed −6; flipping the kernel "
            "(a true convolution) gives other numbers.",
        ),
        Figure(
            save_pool_and_pointwise(result, out / "convolution_pool_1x1.png"),
            "Max pooling and 1×1 convolution",
            "Each 2×2 block of the output keeps its maximum; a 1×1 convolution is W times the "
            "channel vector at every pixel.",
        ),
    ]
    numbers = {
        "output": result.loop.tolist(),
        "loop_equals_conv2d": agree,
        "equals_lecture_output": matches,
        "true_convolution": result.flipped.tolist(),
        "max_pool": result.pooled_loop.tolist(),
        "one_by_one_equals_matmul": pointwise_agree,
    }
    return LessonResult("convolution", summary, numbers, figures)
