"""Test error, per-class errors and the confusion matrix of a classifier, and its figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from netscope.png import SLIDE_TEXT, save_png


@torch.inference_mode()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Returns the model's logits for `inputs`, computed in batches on the inputs' device."""
    was_training = model.training
    model.eval()
    logits = torch.cat(
        [model(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    )
    model.train(was_training)
    return logits


def error_pct(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Returns the percentage of rows whose arg-max differs from the label (60 of 10 000 rows give
    exactly 0.6, which a float32 mean would not)."""
    wrong = int((logits.argmax(1) != labels).sum())
    return 100.0 * wrong / len(labels)


@dataclass
class Evaluation:
    """A classifier's errors on a labelled set; confusion rows are true classes, columns predicted."""

    test_error_pct: float
    per_class_error_pct: list[float]
    confusion: torch.Tensor
    classes: list[str]

    def most_confused(self, k: int = 5) -> list[tuple[str, str, int]]:
        """Returns the k most frequent (true, predicted, count) mistakes."""
        off_diagonal = self.confusion.clone()
        off_diagonal.fill_diagonal_(0)
        counts, flat = off_diagonal.flatten().topk(min(k, off_diagonal.numel()))
        n = len(self.classes)
        return [
            (self.classes[i // n], self.classes[i % n], int(c))
            for i, c in zip(flat.tolist(), counts)
            if c > 0
        ]

    def as_dict(self) -> dict:
        """Returns the numbers as plain JSON-ready values."""
        return {
            "test_error_pct": self.test_error_pct,
            "per_class_error_pct": dict(zip(self.classes, self.per_class_error_pct)),
            "confusion": self.confusion.tolist(),
            "most_confused": self.most_confused(),
        }


def evaluate(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, classes: list[str]
) -> Evaluation:
    """Returns the Evaluation of `model` on normalised `inputs` with true `labels`."""
    logits = predict(model, inputs).cpu()
    predicted, labels = logits.argmax(1), labels.cpu()
    n = len(classes)
    confusion = torch.bincount(labels * n + predicted, minlength=n * n).view(n, n)
    per_class = confusion.sum(1).clamp(min=1)
    wrong = per_class - confusion.diag()
    return Evaluation(
        test_error_pct=error_pct(logits, labels),
        per_class_error_pct=(100.0 * wrong / per_class).tolist(),
        confusion=confusion,
        classes=classes,
    )


def save_confusion_png(evaluation: Evaluation, path: Path, title: str = "") -> Path:
    """Writes the confusion matrix (log colour scale, counts written in) as a PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    confusion, classes = evaluation.confusion.numpy(), evaluation.classes
    with plt.rc_context(SLIDE_TEXT):
        fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=120)
        # white is a count of 0, also when there is a single class
        norm = LogNorm(vmin=1, vmax=confusion.max() + 1)
        image = ax.imshow(confusion + 1, cmap="Blues", norm=norm)
        _write_counts(ax, confusion)
        long_names = len(classes) > 10 or max(map(len, classes)) > 2
        ax.set_xticks(range(len(classes)), classes, rotation=45 if long_names else 0)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title or f"Confusion matrix — test error {evaluation.test_error_pct:.2f} %")
        fig.colorbar(image, ax=ax, label="count + 1 (log scale)")
        return save_png(fig, path)


def _write_counts(ax, confusion) -> None:
    """Writes each non-zero count in its cell, white on the dark ones, smaller when cells are."""
    size = min(14, max(6, 80 // len(confusion)))  # 8 points for 10 classes
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            colour = "white" if count > confusion.max() ** 0.5 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=size, color=colour)
