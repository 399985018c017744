"""Class-model images (Simonyan et al. 2014): the input, grown from grey, that maximises a class's
score, kept image-like by L2, total variation, jitter and blur."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from netscope.inspect.hooks import check_targets, forward
from netscope.inspect.optimise import Regulariser, ascend

CLASS_MODEL_REGULARISER = Regulariser(l2=0.0, tv=2.0, jitter=1, blur_every=4)


@dataclass
class ClassModels:
    """One optimised image per class, with what the model makes of it."""

    classes: torch.Tensor  # K target classes
    images: torch.Tensor  # K×C×H×W in [0, 1]
    probability: torch.Tensor  # K, softmax probability of the target class


def class_models(
    model: nn.Module,
    classes,
    image_shape: tuple[int, int, int],
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
