"""The report's own figures: training curves and the test set's most confident mistakes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from netscope.png import save_png


def save_curves_png(metrics: list[dict], path: Path, title: str = "") -> Path:
    """Writes training loss and test error per epoch side by side; returns the path."""
    epochs = [m["epoch"] for m in metrics]
    plt.rcParams.update({"font.size": 13})
    fig, (loss_ax, error_ax) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    loss_ax.plot(epochs, [m["train_loss"] for m in metrics], "o-", color="#2457c5")
    loss_ax.set_yscale("log")
    loss_ax.set(xlabel="epoch", ylabel="mean training loss (log scale)", title="Training loss")
    errors = [m["test_error_pct"] for m in metrics]
    error_ax.plot(epochs, errors, "o-", color="#c0392b")
    best = min(range(len(errors)), key=errors.__getitem__)
    error_ax.annotate(
        f"{errors[-1]:.2f} %",
        (epochs[-1], errors[-1]),
        textcoords="offset points",
        xytext=(0, 10),
        ha="center",
    )
    error_ax.plot(
        [epochs[best]], [errors[best]], "*", ms=14, color="#c0392b", label="lowest test error"
    )
    error_ax.set(xlabel="epoch", ylabel="test error (%)", title="Test error")
    error_ax.set_ylim(bottom=0)
    error_ax.legend()
    for ax in (loss_ax, error_ax):
        ax.grid(alpha=0.3)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    if title:
        fig.suptitle(title)
    return save_png(fig, path)
