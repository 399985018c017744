"""A run's training curves: training loss and test error per epoch (the report and a Run's own
display draw them)."""

from __future__ import annotations

from pathlib import Path

from netscope.png import SLIDE_TEXT, pyplot, save_png

plt = pyplot()


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
