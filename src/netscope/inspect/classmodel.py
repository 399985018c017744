"""Class-model images (Simonyan et al. 2014): the input, grown from grey, that maximises a class's
score, kept image-like by L2, total variation, jitter and blur."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from netscope.display import Shows, class_names, figure_of
from netscope.inspect.context import Context, save_figure
from netscope.inspect.hooks import check_targets, forward
from netscope.inspect.optimise import Regulariser, ascend
from netscope.inspect.plots import plt, save, show
from netscope.inspect.stage import Stage
from netscope.record import Figure

CLASS_MODEL_REGULARISER = Regulariser(l2=0.0, tv=2.0, jitter=1, blur_every=4)


@dataclass
class ClassModels(Shows):
    """One optimised image per class, with what the model makes of it."""

    classes: torch.Tensor  # K target classes
    images: torch.Tensor  # K×C×H×W in [0, 1]
    probability: torch.Tensor  # K, softmax probability of the target class

    def __repr__(self) -> str:
        low, high = float(self.probability.min()), float(self.probability.max())
        return f"ClassModels({len(self.classes)} classes: p(class) from {low:.3f} to {high:.3f})"


def class_models(
    model: nn.Module,
    classes,
    image_shape: tuple[int, int, int],
    *,
    steps: int = 200,
    lr: float = 0.05,
    start_value: float = 0.5,
    reg: Regulariser = CLASS_MODEL_REGULARISER,
    seed: int = 0,
    progress: bool = False,
) -> ClassModels:
    """Returns, for each class, an image grown from flat `start_value` grey that maximises the
    class logit (Simonyan's unnormalised score) under the regulariser, all classes in one batch."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    start = torch.full((1, *image_shape), start_value, device=device)
    with torch.no_grad():
        num_classes = forward(model, start).shape[1]
    targets = check_targets(classes, len(torch.as_tensor(classes).reshape(-1)), num_classes, device)
    start = start.expand(len(targets), *image_shape)

    def score(images: torch.Tensor) -> torch.Tensor:
        return forward(model, images).gather(1, targets[:, None])[:, 0]

    desc = "class models" if progress else None
    images = ascend(score, start, steps, lr, reg, seed=seed, desc=desc)
    with torch.no_grad():
        probability = forward(model, images).softmax(1).gather(1, targets[:, None])[:, 0]
    return ClassModels(targets, images, probability)


# ---------------------------------------------------------------- as `netscope inspect` runs it


def plot_class_models(models: ClassModels, class_names: list[str], columns: int = 5) -> plt.Figure:
    """Returns one optimised image per class with the model's probability for that class."""
    n = len(models.classes)
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.3 * columns, 2.5 * rows + 0.6), squeeze=False
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            name = class_names[models.classes[k]]
            show(ax, models.images[k], f"class {name}: p = {models.probability[k]:.3f}")
    fig.suptitle("Class models: the input each class's score likes most (grown from grey)")
    fig.tight_layout()
    return fig


@figure_of(ClassModels)
def class_models_figure(models: ClassModels, path: Path, classes: list[str] | None = None) -> Path:
    """Returns `path` after drawing the class models there (what Jupyter shows)."""
    return save(plot_class_models(models, class_names(classes, models.classes)), path)


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns each class model's probability and the figure."""
    config = ctx.config
    models = class_models(
        ctx.model,
        list(range(len(ctx.classes))),
        ctx.shape,
        steps=config.class_steps,
        seed=config.seed,
        progress=config.progress,
    )
    entry = {
        "steps": config.class_steps,
        "probability": dict(zip(ctx.classes, models.probability.tolist())),
    }
    figure = save_figure(
        ctx,
        plot_class_models(models, ctx.classes),
        "class_models.png",
        "Class models",
        "Each image was grown from grey to maximise one class's score: the shape the network "
        "looks for in that class.",
    )
    return entry, [figure]


STAGE = Stage("class_models", "class-model images", stage)
