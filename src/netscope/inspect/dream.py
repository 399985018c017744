"""Deep Dream (Mordvintsev et al. 2015): amplify what a layer already sees in an image, at several
scales (octaves), by gradient ascent on the mean squared activation of that layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from netscope.errors import NetscopeError
from netscope.inspect.hooks import check_images, run_to
from netscope.inspect.optimise import few_threads_for_small


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Returns the image sizes from the smallest octave to the original."""
    return [(round(height / scale**k), round(width / scale**k)) for k in reversed(range(octaves))]


def dream_steps(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    steps: int,
    lr: float,
    jitter: int,
    generator,
) -> torch.Tensor:
    """Returns `images` after `steps` normalised gradient-ascent steps on the layer's energy."""
    images = images.detach().clone()
    with few_threads_for_small(images):
        for _ in range(steps):
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
            shifted = torch.roll(images, (dy, dx), (2, 3)).requires_grad_(True)
            with torch.enable_grad():
                energy = run_to(model, shifted, [layer])[layer].pow(2).flatten(1).mean(1).sum()
                (grad,) = torch.autograd.grad(energy, shifted)
            grad = torch.roll(grad, (-dy, -dx), (2, 3))
            scale = grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
            images = (images + lr * grad / scale).clamp(0, 1)
    return images


def deep_dream(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    octaves: int = 3,
    scale: float = 1.4,
    steps: int = 10,
    lr: float = 0.02,
    jitter: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Returns the dreamed images (same shape as `images`): the smallest octave is dreamed first,
    and the detail it adds is carried up to each larger one."""
    check_images(images)
    if octaves < 1 or scale <= 1:
        raise NetscopeError(f"deep dream: octaves ({octaves}) must be >= 1 and scale ({scale}) > 1")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    detail = None
    sizes = octave_sizes(*images.shape[2:], octaves, scale)
    for size in tqdm(sizes, desc=f"deep dream {layer}", disable=not progress, leave=False):
        base = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        if detail is not None:
            base = base + F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        dreamed = dream_steps(model, base.clamp(0, 1), layer, steps, lr, jitter, generator)
        detail = dreamed - F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    return dreamed
