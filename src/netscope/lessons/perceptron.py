"""Rosenblatt's perceptron: it finds a separating line when one exists, and never on XOR.

The rule (Rosenblatt 1958) is not gradient descent on a loss: visit the samples in turn and,
whenever one is on the wrong side (y · (w·x + b) ≤ 0), add y·x to w and y to b. Novikoff (1962)
proved it stops after finitely many updates on linearly separable data; on XOR no line exists
(Minsky & Papert 1969), so some sample is always wrong and the updates never stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
from matplotlib.figure import Figure as Canvas

from netscope.lessons import Figure, LessonResult, make_folder

XOR_POINTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_SIGNS = torch.tensor([-1.0, 1.0, 1.0, -1.0])
FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}


def separable_data(n: int = 60, margin: float = 0.03, seed: int = 0):
    """Returns `n` points in [−1, 1]² labelled ±1 by the side of the line x₂ = 0.5 x₁ + 0.1 they
    lie on, keeping only points at least `margin` away from it (so a gap exists)."""
    generator = torch.Generator().manual_seed(seed)
    normal = torch.tensor([-0.5, 1.0]) / torch.tensor([-0.5, 1.0]).norm()
    offset = -0.1 / torch.tensor([-0.5, 1.0]).norm()
    points = torch.empty(0, 2)
    while len(points) < n:
        candidates = torch.rand(4 * n, 2, generator=generator) * 2 - 1
        distance = candidates @ normal + offset
        points = torch.cat([points, candidates[distance.abs() >= margin]])
    points = points[:n]
    return points, torch.sign(points @ normal + offset)


@dataclass
class PerceptronTrace:
    """The weights after every update and the number of misclassified samples per epoch."""

    weights: torch.Tensor  # (updates + 1)×3: w₁, w₂, b (starts at zero)
    errors_per_epoch: list[int]  # mistakes made while passing through the data, one per epoch

    @property
    def converged(self) -> bool:
        return self.errors_per_epoch[-1] == 0


def perceptron(points: torch.Tensor, signs: torch.Tensor, epochs: int = 100) -> PerceptronTrace:
    """Returns the trace of Rosenblatt's rule run for at most `epochs` passes over the data (in
    order), stopping after the first pass without a mistake."""
    inputs = torch.cat([points, torch.ones(len(points), 1)], 1)  # the bias is a weight on 1
    weights = torch.zeros(3)
    history, errors = [weights.clone()], []
    for _ in range(epochs):
        mistakes = 0
        for x, y in zip(inputs, signs):
            if y * (weights @ x) <= 0:
                weights = weights + y * x
                history.append(weights.clone())
                mistakes += 1
        errors.append(mistakes)
        if mistakes == 0:
            break
    return PerceptronTrace(torch.stack(history), errors)


def errors_of(weights: torch.Tensor, points: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Returns, for each row (w₁, w₂, b) of `weights`, how many points it puts on the wrong side."""
    inputs = torch.cat([points, torch.ones(len(points), 1)], 1)
    return ((inputs @ weights.T) * signs[:, None] <= 0).sum(0)


def random_lines(n: int = 100_000, seed: int = 0) -> torch.Tensor:
    """Returns `n` random lines (w₁, w₂, b) with standard normal entries (n×3)."""
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))


def _line(ax, weights: torch.Tensor, **style) -> None:
    """Draws w₁x₁ + w₂x₂ + b = 0 across x₁ ∈ [−1.2, 1.2] (skips the all-zero start)."""
    w1, w2, b = weights.tolist()
    if abs(w2) < 1e-9:
        if abs(w1) > 1e-9:
            ax.axvline(-b / w1, **style)
        return
    ax.plot([-1.2, 1.2], [-(w1 * x1 + b) / w2 for x1 in (-1.2, 1.2)], **style)


def _points(ax, points: torch.Tensor, signs: torch.Tensor) -> None:
    for sign, marker, color in [(-1, "o", "#cc0000"), (1, "s", "#0b5394")]:
        chosen = points[signs == sign].numpy()
        ax.scatter(
            chosen[:, 0],
            chosen[:, 1],
            marker=marker,
            c=color,
            s=60,
            label=f"y = {sign:+d}",
            zorder=3,
        )


def save_perceptron(
    separable: tuple[torch.Tensor, torch.Tensor, PerceptronTrace],
    xor: PerceptronTrace,
    random_line_errors: torch.Tensor,
    path: Path,
) -> Path:
    """Writes the decision line after each update on separable data, how many XOR points random
    lines get wrong, and the mistakes per epoch of the rule on both."""
    points, signs, trace = separable
    cmap = matplotlib.colormaps["viridis"]
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(19, 6), layout="constrained")
        lines, xor_ax, curve = fig.subplots(1, 3)
        updates = len(trace.weights) - 1
        for index, weights in enumerate(trace.weights[1:-1], start=1):
            _line(lines, weights, color=cmap(index / updates), lw=1.2, alpha=0.8)
        _line(lines, trace.weights[-1], color="black", lw=3, label=f"final (update {updates})")
        _points(lines, points, signs)
        lines.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xlabel="x₁", ylabel="x₂")
        lines.set_title(f"separable data: {updates} updates, then 0 mistakes")
        lines.legend(loc="lower right", fontsize=11)
        colorbar = fig.colorbar(
            matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(1, updates), cmap), ax=lines
        )
        colorbar.set_label("update number")
        counts = torch.bincount(random_line_errors, minlength=5)
        xor_ax.bar(range(5), counts.tolist(), color=["#cc0000"] + ["#7f7f7f"] * 4)
        for mistakes, count in enumerate(counts.tolist()):
            xor_ax.text(mistakes, count, f"{count:,}", ha="center", va="bottom")
        xor_ax.set(xlabel="XOR points on the wrong side", ylabel="number of random lines")
        xor_ax.set_title(f"XOR: {len(random_line_errors):,} random lines, none with 0 mistakes")
        xor_ax.set_xticks(range(5))
        curve.plot(range(1, len(trace.errors_per_epoch) + 1), trace.errors_per_epoch, "o-",
                   label="separable data (60 points)")  # fmt: skip
        curve.plot(range(1, len(xor.errors_per_epoch) + 1), xor.errors_per_epoch, "s-",
                   color="#cc0000", label="XOR (4 points)", markersize=4)  # fmt: skip
        curve.set(xlabel="epoch (one pass over the data)", ylabel="mistakes during the epoch")
        curve.set_title("Mistakes per epoch")
        curve.set_ylim(bottom=0)
        curve.legend()
        fig.suptitle("Rosenblatt's perceptron rule: w ← w + y·x on every mistake")
        fig.savefig(path, dpi=100)
    return path


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its figure into `out`."""
    out = make_folder(out)
    epochs = 1000 if full else 100
    points, signs = separable_data(seed=seed)
    separable = perceptron(points, signs, epochs)
    xor = perceptron(XOR_POINTS, XOR_SIGNS, epochs)
    xor_best = int(errors_of(xor.weights, XOR_POINTS, XOR_SIGNS).min())
    random_errors = errors_of(random_lines(seed=seed), XOR_POINTS, XOR_SIGNS)
    period = _cycle_length(xor.weights)
    summary = [
        f"separable data (60 points): converged after {len(separable.errors_per_epoch)} epochs, "
        f"{len(separable.weights) - 1} updates; final line misclassifies "
        f"{int(errors_of(separable.weights[-1:], points, signs)[0])} points",
        f"XOR: still {xor.errors_per_epoch[-1]} mistakes in epoch {epochs} "
        f"(never 0 in {epochs} epochs); the best of its {len(xor.weights)} weight vectors "
        f"misclassifies {xor_best} of 4 points"
        + (f"; its weights repeat with period {period} updates" if period else ""),
        f"XOR: of {len(random_errors):,} random lines the best gets "
        f"{int(random_errors.min())} of 4 points wrong (no line separates XOR)",
    ]
    figure = Figure(
        save_perceptron((points, signs, separable), xor, random_errors, out / "perceptron.png"),
        "The perceptron rule on separable data and on XOR",
        "On separable data the line stops moving once every point is on its side; on XOR the "
        "mistakes per epoch never reach zero.",
    )
    numbers = {
        "separable_epochs": len(separable.errors_per_epoch),
        "separable_updates": len(separable.weights) - 1,
        "separable_converged": separable.converged,
        "xor_errors_per_epoch": xor.errors_per_epoch,
        "xor_converged": xor.converged,
        "xor_best_errors": xor_best,
        "xor_weight_cycle_period": period,
        "random_lines_min_xor_errors": int(random_errors.min()),
    }
    return LessonResult("perceptron", summary, numbers, [figure])


def _cycle_length(weights: torch.Tensor) -> int | None:
    """Returns the period with which the last weight vector recurs in the trace (None: never)."""
    for back in range(1, len(weights)):
        if torch.equal(weights[-1 - back], weights[-1]):
            return back
    return None
