"""Universal approximation: one hidden layer of growing width fits a continuous 1-D function.

Cybenko (1989) and Hornik (1991): a single hidden layer with enough units approximates any
continuous function on a compact set as closely as wanted. A ReLU layer makes this concrete: its
output is a piecewise-linear function with one kink per unit, so width w buys w kinks. The lesson
trains f̂(x) = Σᵢ vᵢ relu(aᵢ x + bᵢ) + c for widths 1, 2, 4, …, 256 and measures the error.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
from matplotlib.figure import Figure as Canvas
from torch import nn

from netscope.lessons import Figure, LessonResult, make_folder
from netscope.progress import progress_bar
from netscope.threads import one_cpu_thread

WIDTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}


def target(x: torch.Tensor) -> torch.Tensor:
    """Returns the function to approximate: f(x) = sin(2πx) + 0.4 sin(5πx) + |x| on [−1, 1]."""
    return torch.sin(2 * math.pi * x) + 0.4 * torch.sin(5 * math.pi * x) + x.abs()


def shallow_net(width: int, generator: torch.Generator) -> nn.Sequential:
    """Returns a 1-`width`-1 ReLU net whose kinks (where aᵢx + bᵢ = 0) start spread uniformly
    over [−1, 1], so every unit shapes the fit inside the interval."""
    net = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1))
    with torch.no_grad():
        slopes = torch.randn(width, 1, generator=generator)
        kinks = torch.rand(width, generator=generator) * 2 - 1
        net[0].weight.copy_(slopes)
        net[0].bias.copy_(-slopes[:, 0] * kinks)
    return net


@dataclass
class Fit:
    """One trained width: its predictions on the evaluation grid and its errors."""

    width: int
    prediction: torch.Tensor
    rms_error: float
    max_error: float


def solve_output_layer(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> None:
    """Sets the read-out (vᵢ, c) to the least-squares best for the net's current hidden units
    (ridge 1e-6, in float64: nearby kinks make the columns nearly collinear)."""
    with torch.no_grad():
        hidden = torch.cat([net[1](net[0](x)), torch.ones(len(x), 1)], 1).double()
        gram = hidden.T @ hidden + 1e-6 * torch.eye(hidden.shape[1], dtype=torch.float64)
        solution = torch.linalg.solve(gram, hidden.T @ y.double()).float()
        net[2].weight.copy_(solution[:-1].T)
        net[2].bias.copy_(solution[-1])


def fit_width(width: int, steps: int = 1000, seed: int = 0, points: int = 2048) -> Fit:
    """Returns the fit of a width-`width` net on `points` evenly spaced samples of `target`:
    read-out solved by least squares, then all weights trained with Adam (full batch,
    cosine-decayed lr); evaluated on a different, 1024-point grid."""
    generator = torch.Generator().manual_seed(seed * 1000 + width)
    net = shallow_net(width, generator)
    x = torch.linspace(-1, 1, points)[:, None]
    y = target(x)
    solve_output_layer(net, x, y)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        loss = ((net(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    grid = evaluation_grid()
    with torch.no_grad():
        prediction = net(grid[:, None])[:, 0]
    error = prediction - target(grid)
    return Fit(width, prediction, error.pow(2).mean().sqrt().item(), error.abs().max().item())


def evaluation_grid() -> torch.Tensor:
    """Returns the 1024 points of [−1, 1] the fits are evaluated on."""
    return torch.linspace(-1, 1, 1024)


def fit_widths(
    widths: tuple[int, ...] = WIDTHS, steps: int = 1000, seed: int = 0, progress: bool = True
) -> list[Fit]:
    """Returns one fit per width."""
    bar = progress_bar(widths, desc="widths", disable=not progress, file=sys.stderr, leave=False)
    with one_cpu_thread():
        return [fit_width(width, steps, seed) for width in bar]


def save_fits(fits: list[Fit], path: Path) -> Path:
    """Writes the target and a selection of fits, one panel per width."""
    grid = evaluation_grid()
    truth = target(grid).numpy()
    grid = grid.numpy()
    shown = [f for f in fits if f.width in (1, 4, 16, 64, 256)] or fits[:5]
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(4.2 * len(shown), 4.6), layout="constrained")
        axes = fig.subplots(1, len(shown), sharey=True)
        for ax, fit in zip(axes, shown):
            ax.plot(grid, truth, color="black", lw=2.5, label="target f(x)")
            ax.plot(grid, fit.prediction.numpy(), color="#e69138", lw=2, label="network f̂(x)")
            ax.set_title(f"width {fit.width}: RMS error {fit.rms_error:.3f}")
            ax.set_xlabel("x")
        axes[0].set_ylabel("y")
        axes[0].legend(loc="upper left", fontsize=11)
        fig.suptitle("One hidden ReLU layer: each unit adds one kink to the fitted curve")
        fig.savefig(path, dpi=100)
    return path


def save_error_curve(fits: list[Fit], path: Path) -> Path:
    """Writes RMS and maximum error against width (log-log)."""
    widths = [f.width for f in fits]
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(7.5, 5.5), layout="constrained")
        ax = fig.subplots()
        ax.loglog(widths, [f.rms_error for f in fits], "o-", label="RMS error")
        ax.loglog(widths, [f.max_error for f in fits], "s--", label="maximum error")
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.set_xlabel("hidden units (width)")
        ax.set_ylabel("|f̂(x) − f(x)| on 1024 points of [−1, 1]")
        ax.set_title("Error of the fit versus width")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
        fig.savefig(path, dpi=100)
    return path


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its two figures into `out`."""
    out = make_folder(out)
    fits = fit_widths(WIDTHS, steps=10_000 if full else 1000, seed=seed, progress=progress)
    summary = ["target f(x) = sin(2πx) + 0.4 sin(5πx) + |x| on [−1, 1]; one hidden ReLU layer"]
    summary += [
        f"width {f.width:>3}: RMS error {f.rms_error:.4f}, max error {f.max_error:.4f}"
        for f in fits
    ]
    figures = [
        Figure(
            save_fits(fits, out / "approximation_fits.png"),
            "Fits of growing width",
            "A width-1 net can only bend once; by width 64 the fit is on top of the target.",
        ),
        Figure(
            save_error_curve(fits, out / "approximation_error.png"),
            "Error versus width",
            "The error falls steadily as units are added: more kinks, closer fit.",
        ),
    ]
    numbers = {"widths": [f.width for f in fits], "rms_error": [f.rms_error for f in fits]}
    numbers["max_error"] = [f.max_error for f in fits]
    return LessonResult("approximation", summary, numbers, figures)
