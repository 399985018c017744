"""What the attack figures share, and the figures of every attack, in the lecture's layout (Szegedy et al. 2014, Fig. 5):
original | difference (amplified, factor written) | adversarial, each with class and confidence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from netscope.attack.result import AttackResult
from netscope.display import class_names, figure_of
from netscope.png import pyplot, save_png


def show(ax, image: torch.Tensor, title: str, color: str = "black") -> None:
    """Draws a C×H×W image in [0, 1] (gray for one channel) with a title and no ticks."""
    array = image.detach().float().cpu().clamp(0, 1).numpy()
    if array.shape[0] == 1:
        ax.imshow(array[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.transpose(array, (1, 2, 0)), interpolation="nearest")
    ax.set_title(title, fontsize=11, color=color)
    ax.set_xticks([])
    ax.set_yticks([])


def amplification(perturbation: torch.Tensor) -> float:
    """Returns the largest factor of the form 1, 2 or 5 × 10^k that keeps 0.5 + factor · r in
    the gray range [0, 1] (so no difference is clipped in the figure)."""
    largest = float(perturbation.abs().max()) if perturbation.numel() else 0.0
    if largest == 0:
        return 1.0
    wanted = 0.5 / largest
    decade = 10 ** math.floor(math.log10(wanted))
    return max(m * decade for m in (1, 2, 5) if m * decade <= wanted)


def pick_examples(result: AttackResult, k: int) -> list[int]:
    """Returns up to k indices: fooled, correctly classified images first, in input order."""
    good = (result.success & (result.original_pred == result.labels)).nonzero().flatten().tolist()
    rest = [i for i in range(len(result.images)) if i not in set(good)]
    return (good + rest)[:k]


def plot_attack_examples(
    result: AttackResult, classes: list[str], path: Path, k: int = 4, title: str = ""
) -> Path:
    """Writes k rows of original | difference ×A | adversarial, with class and confidence; returns
    the path."""
    plt = pyplot()
    rows = pick_examples(result, k)
    fig, axes = plt.subplots(len(rows), 3, figsize=(7.2, 2.45 * len(rows) + 0.6), dpi=120)
    axes = np.atleast_2d(axes)
    norms = result.norms()
    for row, i in enumerate(rows):
        r = result.perturbation[i]
        factor = amplification(r)
        fooled = bool(result.success[i])
        show(axes[row, 0], result.images[i], _label("original", result, i, False, classes))
        show(axes[row, 1], 0.5 + factor * r, f"difference ×{factor:g} (grey = 0)")
        axes[row, 1].set_xlabel(
            f"‖r‖₂ = {norms['l2'][i]:.2f}, ‖r‖∞ = {norms['linf'][i]:.2f}", fontsize=10
        )
        show(
            axes[row, 2],
            result.adversarial[i],
            _label("adversarial", result, i, True, classes),
            "firebrick" if fooled else "black",
        )
    fig.suptitle(title or f"{result.method}: original | difference | adversarial", fontsize=13)
    return save_png(fig, path)


@figure_of(AttackResult)
def attack_figure(result: AttackResult, path: Path, classes: list[str] | None = None) -> Path:
    """Returns `path` after drawing the attack's examples there (what Jupyter shows)."""
    names = class_names(classes, result.labels, result.original_pred, result.adversarial_pred)
    return plot_attack_examples(result, names, path)


def _label(kind: str, result: AttackResult, i: int, adversarial: bool, classes: list[str]) -> str:
    pred = result.adversarial_pred if adversarial else result.original_pred
    prob = result.adversarial_prob if adversarial else result.original_prob
    return f"{kind}: “{classes[int(pred[i])]}” {100 * float(prob[i]):.1f} %"


def plot_norm_histogram(result: AttackResult, path: Path, norm: str = "l2", name: str = "") -> Path:
    """Writes the histogram of perturbation norms over the fooled images (median marked)."""
    plt = pyplot()
    fooled = result.success & (result.original_pred == result.labels)
    values = result.norms()[norm][fooled].double().cpu().numpy()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    symbol = "‖r‖₂" if norm == "l2" else "‖r‖∞"
    if len(values):
        from matplotlib.ticker import MaxNLocator

        bins = min(40, max(8, len(values) // 10))
        ax.hist(values, bins=bins, color="steelblue", edgecolor="white", label="fooled images")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        median = float(np.median(values))
        ax.axvline(median, color="firebrick", lw=2, label=f"median {symbol} = {median:.3f}")
        ax.legend()
    ax.set_xlabel(f"perturbation size {symbol} (pixels in [0, 1])")
    ax.set_ylabel("number of images")
    ax.set_title(f"{name or result.method}: how far each image lies from a decision boundary")
    return save_png(fig, path)


def plot_success_curve(
    eps: list[float], rates: list[float], path: Path, method: str, norm: str
) -> Path:
    """Writes the attack's success rate against its budget eps."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(eps, [100 * r for r in rates], "o-", color="firebrick", lw=2, label=method)
    ax.set_xlabel(f"budget ε ({'L∞' if norm == 'linf' else 'L2'} norm, pixels in [0, 1])")
    ax.set_ylabel("images fooled (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{method}: success rate against the perturbation budget")
    return save_png(fig, path)
