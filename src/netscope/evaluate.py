"""Test error, per-class errors and the confusion matrix of a classifier, and its figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from netscope.png import save_png


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
        counts, flat = off_diagonal.flatten().topk(k)
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

    confusion = evaluation.confusion.numpy()
    n = len(evaluation.classes)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=120)
    image = ax.imshow(confusion + 1, cmap="Blues", norm=LogNorm())
    for i in range(n):
        for j in range(n):
            if confusion[i, j]:
                dark = confusion[i, j] > confusion.max() ** 0.5
                ax.text(
                    j,
                    i,
                    str(confusion[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    ax.set_xticks(
        range(n), evaluation.classes, rotation=45 if n > 10 or len(evaluation.classes[0]) > 2 else 0
    )
    ax.set_yticks(range(n), evaluation.classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or f"Confusion matrix — test error {evaluation.test_error_pct:.2f} %")
    fig.colorbar(image, ax=ax, label="count + 1 (log scale)")
    return save_png(fig, path)
