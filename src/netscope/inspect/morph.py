"""Morphing an image toward another class (the lecture's spaghetti → dog): the class-model
optimisation (regularised ascent on the target logit) started from a real image, keeping the path."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from netscope.inspect.classmodel import CLASS_MODEL_REGULARISER
from netscope.inspect.hooks import check_images, check_targets, forward
from netscope.inspect.optimise import Regulariser, ascend


@dataclass
class Morph:
    """Frames on the way from each start image to its target class."""

    targets: torch.Tensor  # N
    frames: torch.Tensor  # N×F×C×H×W, first = the start image, last = the end of the path
    steps: torch.Tensor  # N×F, the optimisation step of each frame
    probabilities: torch.Tensor  # N×F×K softmax of each frame

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
