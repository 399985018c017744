"""Adversarial training (Goodfellow et al. 2015; Madry et al. 2018): train on attacked batches.

`netscope train --adversarial pgd --adversarial-eps 0.3` (TrainConfig.adversarial) makes the trainer
build the transform below and call it on every normalised mini-batch before the SGD step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from netscope.attack.checks import check_eps
from netscope.attack.gradient import fgsm_pixels, pgd_pixels
from netscope.errors import NetscopeError
from netscope.guard import check_positive_int, eval_mode
from netscope.models import Normalized

METHODS = ("fgsm", "pgd")
BatchTransform = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def adversarial_batch_transform(
    method: str,
    eps: float,
    mean: Sequence[float],
    std: Sequence[float],
    steps: int = 10,
) -> BatchTransform:
    """Returns transform(model, inputs, labels) -> inputs that replaces a normalised batch by its
    L-inf adversarial version (FGSM, or PGD with `steps` steps and a random start, every image
    taking all steps) within eps in pixel units."""
    if method not in METHODS:
        raise NetscopeError(f"--adversarial {method!r}: expected one of {', '.join(METHODS)}")
    check_eps(eps, "--adversarial-eps")
    check_positive_int(steps, "steps")
    scale = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
    shift = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)

    def transform(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        std_, mean_ = scale.to(inputs.device), shift.to(inputs.device)
        pixels = (inputs * std_ + mean_).clamp(0, 1)
        pixel_model = Normalized(model, tuple(mean), tuple(std)).to(inputs.device)
        with eval_mode(model):
            if method == "fgsm":
                attacked = fgsm_pixels(pixel_model, pixels, labels, eps)
            else:
                attacked = pgd_pixels(
                    pixel_model,
                    pixels,
                    labels,
                    targets=None,
                    eps=eps,
                    norm="linf",
                    steps=steps,
                    step_size=2.5 * eps / steps,  # Madry et al.'s step size
                )
        adversarial = (attacked - mean_) / std_
        return adversarial.contiguous(memory_format=_memory_format(inputs))

    return transform


def _memory_format(inputs: torch.Tensor) -> torch.memory_format:
    if inputs.ndim == 4 and inputs.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
