"""Heat maps of the predictivity and CKA matrices, each value written in its cell."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from netscope.compare.measures import Comparison
from netscope.display import figure_of, join_pngs
from netscope.png import pyplot, save_png
from netscope.record import Figure


def plot_heatmap(
    matrix: torch.Tensor,
    rows: list[str],
    columns: list[str],
    title: str,
    label: str,
    row_label: str = "layer of A (source)",
    column_label: str = "layer of B (target)",
):
    """Returns a matplotlib figure of `matrix` with each value written in its cell and the best
    source (row) of each target (column) outlined."""
    plt = pyplot()

    values = matrix.double().numpy()
    side = 1.0 + 0.9 * max(len(rows), len(columns))
    fig, ax = plt.subplots(figsize=(max(6.5, side + 2.5), max(5.0, side)), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(values):
        text = "–" if v != v else f"{v:.3f}"
        colour = "black" if v == v and v > 0.6 else "white"
        ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=12)
    for j, i in enumerate(np.nan_to_num(values, nan=-np.inf).argmax(0)):
        if np.isfinite(values[i, j]):
            box = plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, ec="red", lw=2.5)
            ax.add_patch(box)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=12)
    ax.set_yticks(range(len(rows)), rows, fontsize=12)
    ax.set_xlabel(column_label, fontsize=13)
    ax.set_ylabel(row_label, fontsize=13)
    ax.set_title(title, fontsize=14)
    fig.colorbar(image, ax=ax, shrink=0.85).set_label(label, fontsize=12)
    return fig


def save_heatmaps(comparison: Comparison, out: Path, names: tuple[str, str]) -> list[Figure]:
    """Writes the predictivity and CKA heat maps into `out`; returns their figure records."""
    name_a, name_b = names
    specs = [
        (
            "compare_predictivity.png",
            comparison.predictivity,
            f"Predictivity of {name_b} from {name_a}",
            "median held-out R² over B's units",
            "How well a ridge regression from each layer of A predicts the units of each layer "
            "of B on held-out images; the outlined cell is the best source for each target, "
            "on the diagonal where the two hierarchies align.",
        ),
        (
            "compare_cka.png",
            comparison.cka,
            f"Linear CKA: {name_a} vs {name_b}",
            "linear CKA",
            "Regression-free similarity of every pair of layers (1 = same geometry up to "
            "rotation and scale); the outlined cell is the most similar layer of A for each "
            "layer of B.",
        ),
    ]
    figures = []
    for file, matrix, title, label, caption in specs:
        roles = ("(source)", "(target)") if matrix is comparison.predictivity else ("", "")
        fig = plot_heatmap(
            matrix,
            comparison.layers_a,
            comparison.layers_b,
            title,
            label,
            row_label=f"layer of A {roles[0]}",
            column_label=f"layer of B {roles[1]}",
        )
        save_png(fig, out / file, tight=False, dpi=110)
        figures.append(Figure(file, title, caption))
    return figures


@figure_of(Comparison)
def comparison_figure(comparison: Comparison, path: Path, names=("A", "B")) -> Path:
    """Returns `path` after drawing both heat maps there, side by side (what Jupyter shows)."""
    with tempfile.TemporaryDirectory(prefix="netscope-compare-") as folder:
        files = [Path(folder) / f.file for f in save_heatmaps(comparison, Path(folder), names)]
        return join_pngs(files, path)
