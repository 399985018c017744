"""The report's own figures: training curves and the test set's most confident mistakes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from netscope.evaluate import predict  # noqa: E402
from netscope.png import SLIDE_TEXT, save_png


def save_curves_png(metrics: list[dict], path: Path, title: str = "") -> Path:
    """Writes training loss and test error per epoch side by side; returns the path."""
    with plt.rc_context(SLIDE_TEXT):
        fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
        epochs = [m["epoch"] for m in metrics]
        _plot_loss(loss_ax, epochs, [m["train_loss"] for m in metrics])
        _plot_error(error_ax, epochs, [m["test_error_pct"] for m in metrics])
        for ax in (loss_ax, error_ax):
            ax.grid(alpha=0.3)
            if len(epochs) <= 20:
                ax.set_xticks(epochs)
        if title:
            fig.suptitle(title)
        return save_png(fig, path)


def _plot_loss(ax, epochs: list[int], losses: list[float]) -> None:
    ax.plot(epochs, losses, "o-", color="#2457c5")
    scale = "log" if min(losses) > 0 else "linear"  # one class: the loss is exactly 0
    ax.set_yscale(scale)
    ax.set(xlabel="epoch", ylabel=f"mean training loss ({scale} scale)", title="Training loss")


def _plot_error(ax, epochs: list[int], errors: list[float]) -> None:
    ax.plot(epochs, errors, "o-", color="#c0392b")
    best = min(range(len(errors)), key=errors.__getitem__)
    ax.annotate(
        f"{errors[-1]:.2f} %",
        (epochs[-1], errors[-1]),
        textcoords="offset points",
        xytext=(0, 10),
        ha="center",
    )
    ax.plot([epochs[best]], [errors[best]], "*", ms=14, color="#c0392b", label="lowest test error")
    ax.set(xlabel="epoch", ylabel="test error (%)", title="Test error")
    ax.set_ylim(bottom=0)
    ax.legend()


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
