"""Morphing an image toward another class (the lecture's spaghetti → dog): the class-model
optimisation (regularised ascent on the target logit) started from a real image, keeping the path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from netscope.display import Shows, class_names, figure_of
from netscope.errors import NetscopeError
from netscope.inspect.classmodel import CLASS_MODEL_REGULARISER
from netscope.inspect.context import Context, class_index, save_figure
from netscope.inspect.hooks import check_images, check_targets, forward
from netscope.inspect.optimise import Regulariser, ascend
from netscope.inspect.photos import PHOTOS, load_photo
from netscope.inspect.plots import plt, save, show
from netscope.inspect.stage import Stage
from netscope.record import Figure


@dataclass
class Morph(Shows):
    """Frames on the way from each start image to its target class."""

    targets: torch.Tensor  # N
    frames: torch.Tensor  # N×F×C×H×W, first = the start image, last = the end of the path
    steps: torch.Tensor  # N×F, the optimisation step of each frame
    probabilities: torch.Tensor  # N×F×K softmax of each frame

    def __repr__(self) -> str:
        n, frames = self.frames.shape[:2]
        reached = int((self.final_prediction() == self.targets).sum())
        return f"Morph({n} images, {frames} frames: {reached} of {n} end as their target class)"

    def final_prediction(self) -> torch.Tensor:
        """Returns the class the model gives each image's last frame (N)."""
        return self.probabilities[:, -1].argmax(1)


def frame_steps(steps: int, frames: int, device=None) -> torch.Tensor:
    """Returns the steps 0, then `frames` − 1 geometrically spaced ones from 1 to `steps`."""
    later = torch.logspace(0, torch.log10(torch.tensor(float(steps))), frames - 1, device=device)
    return torch.cat([torch.zeros(1, device=device), later]).round().long()


def morph(
    model: nn.Module,
    images: torch.Tensor,
    targets,
    *,
    steps: int = 100,
    lr: float = 0.05,
    frames: int = 6,
    reg: Regulariser = CLASS_MODEL_REGULARISER,
    seed: int = 0,
    progress: bool = False,
) -> Morph:
    """Returns `frames` frames of each image's path toward its target class with the model's
    probabilities: the start image, then geometrically spaced steps (most change comes early)."""
    check_images(images)
    with torch.no_grad():
        num_classes = forward(model, images[:1]).shape[1]
    targets = check_targets(targets, len(images), num_classes, images.device)
    path: list[torch.Tensor] = []

    def score(x: torch.Tensor) -> torch.Tensor:
        return forward(model, x).gather(1, targets[:, None])[:, 0]

    desc = "morph" if progress else None
    ascend(score, images, steps, lr, reg, seed, on_step=lambda _s, x: path.append(x), desc=desc)
    chosen = frame_steps(steps, frames, images.device)
    kept = torch.stack([path[k] for k in chosen.tolist()], dim=1)  # N×F×C×H×W
    with torch.no_grad():
        probs = forward(model, kept.flatten(0, 1)).softmax(1).unflatten(0, kept.shape[:2])
    return Morph(targets, kept, chosen.expand(len(images), -1), probs)


# ---------------------------------------------------------------- as `netscope inspect` runs it


def plot_morph(morphs: Morph, sources: list[str], class_names: list[str]) -> plt.Figure:
    """Returns each morph's frames with the step, the target's probability and the top class."""
    n, frames = morphs.frames.shape[:2]
    fig, axes = plt.subplots(n, frames, figsize=(2.2 * frames, 3.2 * n + 0.5), squeeze=False)
    for row in range(n):
        target = int(morphs.targets[row])
        for col in range(frames):
            probs = morphs.probabilities[row, col]
            top = int(probs.argmax())
            title = (
                f"step {int(morphs.steps[row, col])}\n"
                f"p({class_names[target]}) = {probs[target]:.2f}\ntop: {class_names[top]} "
                f"({probs[top]:.2f})"
            )
            show(axes[row, col], morphs.frames[row, col], title)
        axes[row, 0].set_ylabel(f"{sources[row]} → {class_names[target]}", fontsize=13)
    fig.suptitle("Morphing toward another class: the path of the optimisation")
    fig.tight_layout()
    return fig


@figure_of(Morph)
def morph_figure(
    morphs: Morph,
    path: Path,
    classes: list[str] | None = None,
    sources: list[str] | None = None,
) -> Path:
    """Returns `path` after drawing the morphs there (what Jupyter shows)."""
    names = class_names(classes, torch.arange(morphs.probabilities.shape[-1]))
    sources = sources or [f"image {k}" for k in range(len(morphs.targets))]
    return save(plot_morph(morphs, sources, names), path)


def parse_morph(pair: str, classes: list[str]) -> tuple[str, int]:
    """Returns the source (a class name or a photo) and the target class index of `A:B`."""
    source, sep, target = pair.partition(":")
    if not sep:
        raise NetscopeError(f"--morph {pair!r}: expected SOURCE:TARGET, e.g. 3:8 or chelsea:6")
    if source not in PHOTOS:
        class_index(source, classes, f"--morph {pair} (or a photo: {', '.join(PHOTOS)})")
    return source, class_index(target, classes, f"--morph {pair}")


def check(ctx: Context) -> None:
    """Raises NetscopeError before any work for a malformed --morph pair."""
    for pair in ctx.config.morph:
        parse_morph(pair, ctx.classes)


def morph_starts(ctx: Context) -> tuple[torch.Tensor, list[int], list[str]]:
    """Returns the start images, target classes and source names of the `--morph A:B` pairs;
    A is a class (its first test image the model is sure of) or a photo."""
    starts, targets, sources = [], [], []
    for pair in ctx.config.morph:
        source, target = parse_morph(pair, ctx.classes)
        targets.append(target)
        if source in PHOTOS:
            starts.append(load_photo(source, ctx.shape).to(ctx.test.device))
            sources.append(f"photo '{source}'")
            continue
        wanted = ctx.classes.index(source)
        members = (ctx.labels == wanted).nonzero()[:, 0][:200]
        with torch.no_grad():
            sure = forward(ctx.model, ctx.test[members]).softmax(1)[:, wanted]
        # the first image the model is sure of (≥ 0.99), else its most certain one
        first = int((sure >= 0.99).float().argmax()) if (sure >= 0.99).any() else int(sure.argmax())
        starts.append(ctx.test[members[first]][None])
        sources.append(f"test image of {source}")
    return torch.cat(starts), targets, sources


def stage(ctx: Context) -> tuple[list, list[Figure]]:
    """Returns each morph's path (steps, p(target), top class) and the figure."""
    starts, targets, sources = morph_starts(ctx)
    path = morph(
        ctx.model,
        starts,
        targets,
        steps=ctx.config.morph_steps,
        seed=ctx.config.seed,
        progress=ctx.config.progress,
    )
    classes = ctx.classes
    entry = [
        {
            "source": source,
            "target": classes[t],
            "steps": path.steps[k].tolist(),
            "p_target": path.probabilities[k, :, t].tolist(),
            "top_class": [classes[c] for c in path.probabilities[k].argmax(1).tolist()],
            "final_class": classes[int(path.final_prediction()[k])],
        }
        for k, (source, t) in enumerate(zip(sources, targets))
    ]
    figure = save_figure(
        ctx,
        plot_morph(path, sources, classes),
        "morph.png",
        "Morphing toward another class",
        "Read each row left to right: how little the image has to change before the network "
        "calls it the target class.",
    )
    return entry, [figure]


STAGE = Stage("morph", "morphing toward another class", stage, check)
