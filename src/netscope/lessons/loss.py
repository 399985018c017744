"""Least squares versus cross-entropy for classification, on real MNIST with the same budget.

The lecture's warning: do NOT use a least-squares loss for classification. With softmax outputs
p and one-hot targets t, the squared error ‖p − t‖² has gradients that vanish when p saturates
on a wrong class, while cross-entropy −log p_label keeps pushing (its gradient is p − t). The
lesson trains the same network from the same initial weights on the same batches with each loss.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure as Canvas
from matplotlib.ticker import NullFormatter

from netscope.data import Dataset, load_dataset
from netscope.device import resolve_device
from netscope.evaluate import error_pct, predict
from netscope.lessons import Figure, LessonResult, make_folder
from netscope.models import build_model
from netscope.progress import progress_bar
from netscope.threads import one_cpu_thread

FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}
LOSSES = ("cross-entropy", "least squares")
ROUND_PERCENTS = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20)
ROUND_PERCENTS += (30, 40, 50, 70, 100)


def classification_loss(name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Returns softmax cross-entropy, or the squared error between softmax probabilities and
    one-hot targets (summed over classes, averaged over the batch)."""
    if name == "cross-entropy":
        return F.cross_entropy(logits, labels)
    one_hot = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return ((logits.softmax(1) - one_hot) ** 2).sum(1).mean()


@dataclass
class LossRun:
    """Test error measured during training with one loss."""

    loss: str
    steps: list[int]
    test_error_pct: list[float]


@dataclass
class Budget:
    """How much each loss gets: identical for both."""

    train_images: int = 10_000
    test_images: int = 10_000
    epochs: int = 5
    batch_size: int = 100
    lr: float = 0.1
    model: str = "mlp"
    evaluations_per_epoch: int = 2


def train_with_loss(
    loss: str, dataset: Dataset, budget: Budget, seed: int = 0, progress: bool = True
) -> LossRun:
    """Returns the test-error curve of `budget.model` trained by plain SGD on `loss`."""
    device = resolve_device("auto")
    inputs = dataset.normalize(dataset.train_images[: budget.train_images].to(device))
    labels = dataset.train_labels[: budget.train_images].to(device)
    test_inputs = dataset.normalize(dataset.test_images[: budget.test_images].to(device))
    test_labels = dataset.test_labels[: budget.test_images].to(device)
    torch.manual_seed(seed)
    channels, size, _ = dataset.image_shape
    model = build_model(budget.model, channels, len(dataset.classes), size).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=budget.lr)
    steps_per_epoch = len(inputs) // budget.batch_size
    every = max(1, steps_per_epoch // budget.evaluations_per_epoch)
    curve = LossRun(loss, [0], [error_pct(predict(model, test_inputs), test_labels)])
    total = steps_per_epoch * budget.epochs
    for step in progress_bar(
        range(total), desc=loss, disable=not progress, file=sys.stderr, leave=False
    ):
        start = step % steps_per_epoch * budget.batch_size
        batch = slice(start, start + budget.batch_size)
        value = classification_loss(loss, model(inputs[batch]), labels[batch])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        if (step + 1) % every == 0 or step + 1 == total:
            curve.steps.append(step + 1)
            curve.test_error_pct.append(error_pct(predict(model, test_inputs), test_labels))
    return curve


def compare_losses(
    dataset: Dataset, budget: Budget, seed: int = 0, progress: bool = True
) -> list[LossRun]:
    """Returns one curve per loss, from the same initial weights (same seed) and batches."""
    with one_cpu_thread():
        return [train_with_loss(loss, dataset, budget, seed, progress) for loss in LOSSES]


def percent_ticks(low: float, high: float) -> list[float]:
    """Returns the round percentages from `low` to `high` to label on a log axis: close enough
    (at most ×1.5 apart) that every value in between has a labelled tick within 25 %."""
    return [t for t in ROUND_PERCENTS if low <= t <= high]


def save_curves(runs: list[LossRun], budget: Budget, path: Path) -> Path:
    """Writes both test-error curves against SGD steps."""
    draw_curves(runs, budget).savefig(path, dpi=100)
    return path


def draw_curves(runs: list[LossRun], budget: Budget) -> Canvas:
    """Returns both test-error curves against SGD steps on a log axis labelled at round percents."""
    errors = [e for run in runs for e in run.test_error_pct]
    low, high = min(errors) / 1.15, max(errors) * 1.15
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(8.5, 5.8), layout="constrained")
        ax = fig.subplots()
        for run, color in zip(runs, ["#0b5394", "#cc0000"]):
            final = run.test_error_pct[-1]
            ax.plot(run.steps, run.test_error_pct, "o-", color=color, ms=4,
                    label=f"{run.loss} (final {final:.2f} %)")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylim(low, high)
        ticks = percent_ticks(low, high)
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"SGD step (batch {budget.batch_size}, lr {budget.lr})")
        ax.set_ylabel(f"test error % ({budget.test_images:,} MNIST test images)")
        ax.set_title(
            f"Same net ({budget.model}), same init and batches, {budget.train_images:,} images"
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.suptitle("Least squares vs cross-entropy for classification")
    return fig


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its figure into `out`."""
    out = make_folder(out)
    budget = Budget(train_images=60_000, epochs=10) if full else Budget()
    runs = compare_losses(load_dataset("mnist"), budget, seed, progress)
    finals = {r.loss: r.test_error_pct[-1] for r in runs}
    summary = [
        f"{budget.model} on {budget.train_images:,} MNIST images, {budget.epochs} epochs of SGD "
        f"(lr {budget.lr}, batch {budget.batch_size}), same init and batches for both losses",
    ]
    summary += [f"{loss:<14} test error {error:.2f} %" for loss, error in finals.items()]
    figure = Figure(
        save_curves(runs, budget, out / "loss_curves.png"),
        "Least squares vs cross-entropy",
        "With the same budget the cross-entropy curve drops faster and ends lower.",
    )
    numbers = {
        "final_test_error_pct": finals,
        "curves": {r.loss: {"steps": r.steps, "test_error_pct": r.test_error_pct} for r in runs},
        "budget": vars(budget),
    }
    return LessonResult("loss", summary, numbers, [figure])
