"""What every stage of `netscope inspect` works on: the model, the searched test images, the
examples shown in the per-image figures, and where the figures go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from netscope.errors import NetscopeError
from netscope.inspect import plots
from netscope.inspect.config import InspectConfig
from netscope.inspect.hooks import forward
from netscope.record import Figure
from netscope.run import Run


@dataclass
class Context:
    """What every stage of run_inspect works on."""

    model: torch.nn.Module
    test: torch.Tensor  # searched test images, pixels in [0, 1]
    labels: torch.Tensor
    classes: list[str]
    shape: tuple[int, int, int]
    config: InspectConfig
    out: Path
    # the examples for occlusion, saliency and dream: test indices, pixels, labels, titles
    examples: torch.Tensor | None = None
    images: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    titles: list[str] | None = None
    run: Run | None = None  # the run itself, for stages that read more of it (its checkpoints)
    memo: dict = field(default_factory=dict)  # results stages share, computed once


def save_figure(ctx: Context, fig, file: str, title: str, caption: str) -> Figure:
    """Returns the record of a figure after writing it into the output folder."""
    plots.save(fig, ctx.out / file)
    return Figure(file, title, caption)


def pick_examples(labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    """Returns test indices of n images: the first of class 0, 1, …, then the second of each."""
    picked = []
    for k in range(n):
        members = (labels == k % num_classes).nonzero()[:, 0]
        if len(members) > k // num_classes:
            picked.append(members[k // num_classes])
    return torch.stack(picked)


def class_index(name: str, classes: list[str], what: str) -> int:
    """Returns the index of class `name`, or raises a NetscopeError listing the classes."""
    if name not in classes:
        raise NetscopeError(f"{what}: unknown class {name!r} (classes: {', '.join(classes)})")
    return classes.index(name)


def prepare(run: Run, model: torch.nn.Module, out: Path, config: InspectConfig) -> Context:
    """Returns the context: the test images on the model's device and the chosen examples."""
    device = next(model.parameters()).device
    dataset = run.load_dataset()
    limit = config.search_images or len(dataset.test_images)
    test = (dataset.test_images[:limit].float() / 255).to(device)
    labels = dataset.test_labels[:limit].to(device)
    ctx = Context(model, test, labels, run.classes, run.image_shape, config, out, run=run)
    examples = pick_examples(labels, config.images, len(run.classes))
    ctx.examples, ctx.images, ctx.targets = examples, test[examples], labels[examples]
    with torch.no_grad():
        clean = forward(model, ctx.images).softmax(1).gather(1, ctx.targets[:, None])[:, 0]
    ctx.titles = [
        f"{run.classes[t]}: p = {p:.2f}" for t, p in zip(ctx.targets.tolist(), clean.tolist())
    ]
    return ctx
