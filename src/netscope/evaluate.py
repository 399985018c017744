"""Test error, per-class errors and the confusion matrix of a classifier, its most confident
mistakes, and `netscope evaluate`: evaluation.json with confusion.png and mistakes.png."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from netscope.device import resolve_device
from netscope.display import Shows, figure_of
from netscope.folders import output_folder
from netscope.guard import eval_mode
from netscope.png import SLIDE_TEXT, pyplot, save_png
from netscope.provenance import weights_of
from netscope.record import Figure, is_fresh, write_record
from netscope.run import read_json

if TYPE_CHECKING:
    from netscope.data import Dataset
    from netscope.run import Run


@torch.inference_mode()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Returns the model's logits for `inputs`, computed in batches on the inputs' device."""
    with eval_mode(model):  # each module's own train/eval flag comes back afterwards
        return torch.cat(
            [model(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
        )


def error_pct(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Returns the percentage of rows whose arg-max differs from the label (60 of 10 000 rows give
    exactly 0.6, which a float32 mean would not)."""
    wrong = int((logits.argmax(1) != labels).sum())
    return 100.0 * wrong / len(labels)


@dataclass
class Evaluation(Shows):
    """A classifier's errors on a labelled set; confusion rows are true classes, columns predicted."""

    test_error_pct: float
    per_class_error_pct: list[float]
    confusion: torch.Tensor
    classes: list[str]

    def __repr__(self) -> str:
        worst = self.most_confused(1)
        pair = f"; most confused: {worst[0][0]} → {worst[0][1]} ({worst[0][2]}×)" if worst else ""
        return (
            f"Evaluation({len(self.classes)} classes: test error {self.test_error_pct:.2f} %{pair})"
        )

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
    from matplotlib.colors import LogNorm

    plt = pyplot()
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


@figure_of(Evaluation)
def evaluation_figure(evaluation: Evaluation, path: Path) -> Path:
    """Returns `path` after drawing the confusion matrix there (what Jupyter shows)."""
    return save_confusion_png(evaluation, path)


def _write_counts(ax, confusion) -> None:
    """Writes each non-zero count in its cell, white on the dark ones, smaller when cells are."""
    size = min(14, max(6, 80 // len(confusion)))  # 8 points for 10 classes
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            colour = "white" if count > confusion.max() ** 0.5 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=size, color=colour)


@dataclass
class Mistakes:
    """Misclassified test images, most confident first (indices into the test set)."""

    indices: torch.Tensor
    true: torch.Tensor
    predicted: torch.Tensor
    confidence: torch.Tensor
    total: int


def find_mistakes(
    model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, k: int = 24
) -> Mistakes:
    """Returns the k misclassified images the pixel-space `model` is most confident about."""
    probs = predict(model, pixels).softmax(1)
    confidence, predicted = probs.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)[:k]
    chosen = wrong[order]
    return Mistakes(chosen, labels[chosen], predicted[chosen], confidence[chosen], len(wrong))


def _short(name: str, width: int = 8) -> str:
    """Returns a class name cut to `width` characters (with …), to fit above a 1.5-inch image."""
    return name if len(name) <= width else name[: width - 1] + "…"


def save_mistakes_png(
    mistakes: Mistakes, pixels: torch.Tensor, classes: list[str], path: Path, columns: int = 8
) -> Path:
    """Writes a grid of the mistakes, each titled `true → predicted (confidence)`; returns the path."""
    plt = pyplot()
    n = len(mistakes.indices)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns, 1.75 * rows + 0.5), dpi=110)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, t, p, c in zip(
        axes.flat,
        mistakes.indices.tolist(),
        mistakes.true.tolist(),
        mistakes.predicted.tolist(),
        mistakes.confidence.tolist(),
    ):
        image = pixels[i].detach().cpu().permute(1, 2, 0).squeeze(-1).numpy()
        ax.imshow(image, cmap="gray_r" if image.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(
            f"{_short(classes[t])} → {_short(classes[p])}\n{100 * c:.0f} %  #{i}", fontsize=10
        )
    if n == 0:
        fig.text(0.5, 0.4, "No test image is misclassified.", ha="center", fontsize=14)
    fig.suptitle(
        f"Most confident mistakes ({n} of {mistakes.total}): true → predicted, confidence, test index",
        fontsize=12,
    )
    return save_png(fig, path)


def write_evaluation(
    run: Run, out: Path, dataset: Dataset | None = None, mistakes: int = 24
) -> dict:
    """Returns the evaluation.json record after evaluating the run's weights on its whole test
    set and writing evaluation.json, confusion.png and mistakes.png into `out`."""
    dataset = dataset or run.load_dataset()
    device = resolve_device("auto")
    model = run.pixel_model().to(device)
    pixels = dataset.test_images.to(device).float() / 255
    labels = dataset.test_labels.to(device)
    evaluation = evaluate(model, pixels, labels, run.classes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    confusion = save_confusion_png(evaluation, out / "confusion.png")
    found = find_mistakes(model, pixels, labels, k=mistakes)
    grid = save_mistakes_png(found, pixels, run.classes, out / "mistakes.png")
    record = {
        "run": str(run.path),
        "checkpoint": run.checkpoint,
        "weights": weights_of(run),
        "test_size": len(labels),
        **evaluation.as_dict(),
        "mistakes": {
            "total": found.total,
            "test_index": found.indices.tolist(),
            "true": found.true.tolist(),
            "predicted": found.predicted.tolist(),
            "confidence": found.confidence.tolist(),
        },
        "figures": [
            Figure(confusion, "Confusion matrix", CONFUSION_CAPTION),
            Figure(grid, "Example mistakes", MISTAKES_CAPTION),
        ],
    }
    return write_record(out / "evaluation.json", record)


def evaluation_folder(run: Run) -> Path:
    """Returns where a run's evaluation lives: RUN/evaluate for its final weights,
    RUN/evaluate@epoch_03 for another checkpoint (netscope.folders)."""
    return output_folder(run, "evaluate")


def current_evaluation(run: Run, dataset: Dataset | None = None) -> tuple[dict, Path]:
    """Returns the run's evaluation.json record and its folder, evaluating again only when the
    record is missing or older than the weights it describes."""
    folder = evaluation_folder(run)
    path = folder / "evaluation.json"
    if is_fresh(path, run.path / run.checkpoint):
        record = read_json(path)
        if record.get("checkpoint") == run.checkpoint:
            return record, folder
    return write_evaluation(run, folder, dataset), folder


CONFUSION_CAPTION = (
    "Rows are true classes, columns predicted ones; everything off the diagonal is a mistake."
)
MISTAKES_CAPTION = (
    "The misclassified test images the network was most sure about: often badly written digits "
    "or doubtful labels."
)
