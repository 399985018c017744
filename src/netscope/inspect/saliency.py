"""Saliency maps (Simonyan et al. 2014) and integrated gradients (Sundararajan et al. 2017).

Our own code rather than Captum's: each is a few lines of autograd, runs batched on the inputs'
device, and avoids importing Captum (≈5 s) for every `netscope inspect`. tests/test_inspect.py
checks both against Captum's `Saliency` and `IntegratedGradients` (method "riemann_middle").
"""

from __future__ import annotations

import torch
from torch import nn

from netscope.inspect.hooks import check_images, check_targets, forward


def class_scores(model: nn.Module, images: torch.Tensor, targets) -> torch.Tensor:
    """Returns the logit of each image's target class (N), checking targets against the model."""
    logits = forward(model, images)
    targets = check_targets(targets, len(images), logits.shape[1], images.device)
    return logits.gather(1, targets[:, None])[:, 0]


def input_gradient(model: nn.Module, images: torch.Tensor, targets) -> torch.Tensor:
    """Returns d(target logit)/d(pixels), N×C×H×W (images are independent, so one backward)."""
    pixels = check_images(images).detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(class_scores(model, pixels, targets).sum(), pixels)
    return grad


def saliency(model: nn.Module, images: torch.Tensor, targets) -> torch.Tensor:
    """Returns N×H×W: |d score / d pixel|, the maximum over colour channels."""
    return input_gradient(model, images, targets).abs().amax(dim=1)


def integrated_gradients(
    model: nn.Module,
    images: torch.Tensor,
    targets,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Returns N×C×H×W: (x − baseline) · the mean gradient at the midpoints of `steps` equal
    steps from baseline (default black) to x. Its sum approximates score(x) − score(baseline)."""
    check_images(images)
    baseline = torch.zeros_like(images) if baseline is None else baseline.expand_as(images)
    n = len(images)
    with torch.no_grad():
        num_classes = forward(model, images[:1]).shape[1]
    targets = check_targets(targets, n, num_classes, images.device)
    alphas = (torch.arange(steps, device=images.device) + 0.5) / steps
    total = torch.zeros_like(images)
    for chunk in alphas.split(max(1, batch_size // n)):  # a few path points per backward pass
        path = baseline[None] + chunk.view(-1, 1, 1, 1, 1) * (images - baseline)[None]
        grads = input_gradient(model, path.flatten(0, 1), targets.repeat(len(chunk)))
        total += grads.unflatten(0, (len(chunk), n)).sum(0)
    return (images - baseline) * total / steps
