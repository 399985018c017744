"""Class-model images (Simonyan et al. 2014): the input, grown from grey, that maximises a class's
score, kept image-like by L2, total variation, jitter and blur."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from netscope.display import Shows, class_names, figure_of
from netscope.guard import check_fits, check_positive_int, forward, guarded, model_device
from netscope.inspect.context import Context, save_figure
from netscope.inspect.hooks import check_targets
from netscope.inspect.optimise import Regulariser, ascend
from netscope.inspect.plots import plt, save, show, styled
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


@guarded
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
    batch_size: int = 32,
    progress: bool = False,
) -> ClassModels:
    """Returns, for each class, an image grown from flat `start_value` grey that maximises the
    class logit (Simonyan's unnormalised score) under the regulariser.

    The model runs in eval mode (and is left as it was found). Classes are optimised
    `batch_size` at a time; each image's path is independent of the others in its batch, so the
    batch size bounds memory without changing the result (up to rounding).
    """
    check_positive_int(batch_size, "batch_size")
    device = model_device(model)
    start = torch.full((1, *image_shape), start_value, device=device)
    num_classes = check_fits(model, start)
    targets = check_targets(classes, len(torch.as_tensor(classes).reshape(-1)), num_classes, device)
    chunks = targets.split(batch_size)
    grown = []
    for k, chunk in enumerate(chunks):

        def score(x: torch.Tensor, chunk=chunk) -> torch.Tensor:
            return forward(model, x).gather(1, chunk[:, None])[:, 0]

        desc = f"class models {k + 1}/{len(chunks)}" if progress else None
        grey = start.expand(len(chunk), *image_shape)
        grown.append(ascend(score, grey, steps, lr, reg, seed=seed, desc=desc))
    with torch.no_grad():
        probability = torch.cat(
            [
                forward(model, x).softmax(1).gather(1, t[:, None])[:, 0]
                for x, t in zip(grown, chunks)
            ]
        )
    images = torch.cat(grown)
    return ClassModels(targets, images, probability)


# ---------------------------------------------------------------- as `netscope inspect` runs it


@styled
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
