"""Lesson scale: how big brains, networks and chips are — the lectures' fact tables on log scales.

Each number carries the publication it comes from. Where a source gives a count only roughly
(synapses), the table says "≈" and the plot shows the order of magnitude it states. Counts for the
lecture CNN are computed from the model itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from netscope.lessons import Figure, LessonResult, make_folder
from netscope.png import pyplot, save_png


@dataclass(frozen=True)
class BrainFact:
    """Neurons and synapses (or, for a network, units and weights) of one brain or network."""

    name: str
    neurons: float | None  # None: no count we are confident of
    synapses: float | None
    kind: str  # "animal" or "network"
    source: str


BRAINS = (
    BrainFact("C. elegans (worm)", 302, 7e3, "animal", "White et al., Phil. Trans. R. Soc. B 1986"),
    BrainFact("fruit fly brain", 139_255, 5e7, "animal", "Dorkenwald et al., Nature 2024 (FlyWire)"),
    BrainFact("honey bee", 9.6e5, None, "animal", "Menzel & Giurfa, Trends Cogn. Sci. 2001"),
    BrainFact("mouse", 7.1e7, None, "animal", "Herculano-Houzel et al., PNAS 2006"),
    BrainFact("human", 8.6e10, 1.5e14, "animal",
              "Azevedo et al., J. Comp. Neurol. 2009; synapses of the neocortex alone: "
              "Pakkenberg et al., Exp. Gerontol. 2003"),
    BrainFact("AlexNet", 6.5e5, 6e7, "network", "Krizhevsky, Sutskever & Hinton, NIPS 2012"),
    BrainFact("VGG-16", None, 1.38e8, "network", "Simonyan & Zisserman, ICLR 2015"),
    BrainFact("GPT-3", None, 1.75e11, "network", "Brown et al., NeurIPS 2020"),
)  # fmt: skip


@dataclass(frozen=True)
class ChipFact:
    """The transistor count of one processor, as its maker published it."""

    name: str
    year: int
    transistors: float
    kind: str  # "CPU" or "GPU"
    source: str


CHIPS = (
    ChipFact("Intel 4004", 1971, 2.3e3, "CPU", "Intel"),
    ChipFact("Intel 8086", 1978, 2.9e4, "CPU", "Intel"),
    ChipFact("Intel 80386", 1985, 2.75e5, "CPU", "Intel"),
    ChipFact("Intel 80486", 1989, 1.2e6, "CPU", "Intel"),
    ChipFact("Intel Pentium", 1993, 3.1e6, "CPU", "Intel"),
    ChipFact("Intel Pentium 4", 2000, 4.2e7, "CPU", "Intel"),
    ChipFact("Intel Core 2 Duo", 2006, 2.91e8, "CPU", "Intel"),
    ChipFact("NVIDIA GF110 (GTX 580: AlexNet)", 2010, 3.0e9, "GPU", "NVIDIA"),
    ChipFact("NVIDIA GK110 (Kepler)", 2012, 7.1e9, "GPU", "NVIDIA Kepler GK110 whitepaper"),
    ChipFact("NVIDIA GP100 (Pascal)", 2016, 1.53e10, "GPU", "NVIDIA Tesla P100 whitepaper"),
    ChipFact("NVIDIA GA100 (Ampere)", 2020, 5.42e10, "GPU", "NVIDIA A100 whitepaper"),
    ChipFact("NVIDIA GH100 (Hopper)", 2022, 8.0e10, "GPU", "NVIDIA H100 whitepaper"),
)

MOORE = "Moore, Electronics 1965 and IEDM 1975: the count doubles about every two years"


def count_units_and_weights(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """Returns (units, weights) of a model: the outputs of its convolution and linear layers for
    one input (its "neurons") and its parameter count (its "synapses")."""
    units = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: units.append(out[0].numel()))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return sum(units), sum(p.numel() for p in model.parameters())


def lecture_cnn_fact() -> BrainFact:
    """Returns the lecture CNN's units and weights, counted from the model."""
    from netscope.models import build_model

    units, weights = count_units_and_weights(build_model("lecture_cnn"), (1, 28, 28))
    return BrainFact("lecture CNN", units, weights, "network", "counted by netscope")


def readable(value: float | None) -> str:
    """Returns a count as people say it: 302, 139,255, 71 million, 1.5e14 as 150 trillion."""
    if value is None:
        return "-"
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if value >= size:
            return f"{value / size:.3g} {word}"
    return f"{value:,.0f}"


def format_brains(brains: tuple[BrainFact, ...]) -> list[str]:
    """Returns the neurons/synapses table as text lines."""
    lines = [f"{'':<19}{'neurons':>14}{'synapses':>15}  source (networks: units, weights)"]
    for b in brains:
        lines.append(f"{b.name:<19}{readable(b.neurons):>14}{readable(b.synapses):>15}  {b.source}")
    return lines


def format_chips(chips: tuple[ChipFact, ...]) -> list[str]:
    """Returns the transistor-count table as text lines."""
    lines = [f"{'processor':<33}{'year':>5}{'transistors':>14}  source"]
    for c in chips:
        lines.append(f"{c.name:<33}{c.year:>5}{readable(c.transistors):>14}  {c.source}")
    return lines


# ---------------------------------------------------------------- figures


def save_brains(brains: tuple[BrainFact, ...], path: Path) -> Path:
    """Writes neurons and synapses of animals and networks as two log-scale bar charts."""
    return save_png(draw_brains(brains), path)


def draw_brains(brains: tuple[BrainFact, ...], upper: float = 1e16):
    """Returns neurons and synapses of animals and networks as two log-scale bar charts (x up to
    `upper`); a count too long to be labelled right of its bar is labelled inside it."""
    plt = pyplot()
    colors = {"animal": "tab:green", "network": "tab:blue"}
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), dpi=100, sharey=True)
    names = [b.name for b in brains]
    for ax, attribute, title in (
        (axes[0], "neurons", "Neurons (networks: units)"),
        (axes[1], "synapses", "Synapses (networks: weights)"),
    ):
        for i, b in enumerate(brains):
            value = getattr(b, attribute)
            if value is None:
                ax.text(1.5, i, "no count given", va="center", fontsize=11, color="gray")
                continue
            ax.barh(i, value, color=colors[b.kind])
            if math.log10(value) > 0.75 * math.log10(upper):  # the label would run off the panel
                ax.text(value / 1.3, i, readable(value), va="center", ha="right", fontsize=12,
                        color="white", fontweight="bold")  # fmt: skip
            else:
                ax.text(value * 1.3, i, readable(value), va="center", fontsize=12)
        ax.set_xscale("log")
        ax.set_xlim(1, upper)
        ax.set_title(title, fontsize=15)
        ax.set_xlabel("count (log scale)", fontsize=13)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(brains)), names, fontsize=13)
    axes[0].invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    axes[0].legend(handles, ["animal", "artificial network"], fontsize=12, loc="lower right")
    fig.suptitle("Brains and networks (sources: printed by `netscope lesson scale`)", fontsize=16)
    return fig


def save_chips(chips: tuple[ChipFact, ...], path: Path) -> Path:
    """Writes transistor counts against year on a log scale, with Moore's doubling every 2 years."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 6), dpi=100)
    for kind, maker, marker, color in (
        ("CPU", "Intel", "o", "tab:blue"), ("GPU", "NVIDIA", "s", "tab:orange")
    ):  # fmt: skip
        picked = [c for c in chips if c.kind == kind]
        ax.scatter(
            [c.year for c in picked], [c.transistors for c in picked],
            marker=marker, s=70, color=color, label=f"{maker} {kind}s", zorder=3,
        )  # fmt: skip
        for c in picked:  # the newest chip's name goes left: its neighbour's name fills the right
            newest = c is chips[-1]
            ax.annotate(
                c.name.removeprefix(maker + " "), (c.year, c.transistors),
                xytext=(-9, 2) if newest else (8, -6), textcoords="offset points",
                fontsize=11, ha="right" if newest else "left",
            )  # fmt: skip
    first = chips[0]
    years = torch.linspace(first.year, 2024, 50).numpy()
    ax.plot(
        years, first.transistors * 2 ** ((years - first.year) / 2), "--", color="gray",
        label="doubling every 2 years (Moore 1975)",
    )  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlim(1968, 2032)
    ax.set(xlabel="year of introduction", ylabel="transistors per chip (log scale)")
    ax.xaxis.label.set_size(13)
    ax.yaxis.label.set_size(13)
    ax.set_title("Transistors per chip (makers' published counts)", fontsize=15)
    ax.legend(fontsize=12, loc="lower right")
    ax.grid(alpha=0.3)
    return save_png(fig, path)


# ---------------------------------------------------------------- the lesson


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's result: the brain/network and transistor tables, printed and plotted."""
    out = make_folder(out)
    brains = BRAINS[:5] + (lecture_cnn_fact(),) + BRAINS[5:]
    figures = [
        Figure(
            save_brains(brains, Path(out) / "scale_brains.png"),
            "Neurons and synapses: animals and networks",
            "Each grid line is a factor of 100: GPT-3's 175 billion weights are still about a "
            "thousand times fewer than the synapses of the human neocortex.",
        ),
        Figure(
            save_chips(CHIPS, Path(out) / "scale_transistors.png"),
            "Transistors per chip, 1971–2022",
            "The counts follow the dashed doubling-every-two-years line for five decades.",
        ),
    ]
    summary = format_brains(brains) + [""] + format_chips(CHIPS) + [MOORE]
    numbers = {
        "brains": [asdict(b) for b in brains],
        "chips": [asdict(c) for c in CHIPS],
    }
    return LessonResult("scale", summary, numbers, figures)
