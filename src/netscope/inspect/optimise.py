"""Gradient ascent on input pixels with the regularisers that make the result look like an image
(Simonyan et al. 2014; Yosinski et al. 2015; Mordvintsev et al. 2015): an L2 penalty, total
variation, random jitter and an occasional blur, or instead of pixels a 1/f-scaled spectrum (Olah
et al. 2017). Shared by class models, Deep Dream, morphing and unit visualisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from netscope.inspect.fourier import from_spectrum, to_spectrum
from netscope.progress import progress_bar
from netscope.threads import few_threads_for_small


@dataclass
class Regulariser:
    """How strongly to keep an optimised image natural."""

    l2: float = 0.0  # penalty on the squared distance from the anchor image, per pixel
    tv: float = 0.0  # total variation penalty, per pixel
    jitter: int = 0  # shift the image by up to this many pixels before each step
    blur_every: int = 0  # blur with a 3×3 Gaussian every this many steps (0 = never)
    fourier: bool = False  # ascend on a 1/f-scaled spectrum instead of pixels (no blur, clamp)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Returns each image's mean absolute difference between neighbouring pixels (N)."""
    dy = (images[:, :, 1:] - images[:, :, :-1]).abs().flatten(1).mean(1)
    dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().flatten(1).mean(1)
    return dy + dx


def blur(images: torch.Tensor) -> torch.Tensor:
    """Returns the images blurred by a 3×3 Gaussian (σ ≈ 0.85), channel by channel."""
    kernel = torch.tensor([1.0, 2.0, 1.0], device=images.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(images.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=images.shape[1])


def ascend(
    objective: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    steps: int,
    lr: float,
    reg: Regulariser,
    seed: int = 0,
    anchor: torch.Tensor | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
    desc: str | None = None,
) -> torch.Tensor:
    """Returns images in [0, 1] after `steps` Adam steps maximising objective(images) (one score
    per image) minus the regularisers; calls on_step(step, images) before each step and at the end."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    anchor = start.detach().clone() if anchor is None else anchor
    variable = to_spectrum(start) if reg.fourier else start.detach().clone()
    variable.requires_grad_(True)

    def picture() -> torch.Tensor:
        return from_spectrum(variable, tuple(start.shape[-2:])) if reg.fourier else variable

    optimiser = torch.optim.Adam([variable], lr=lr)
    with few_threads_for_small(start):
        for step in progress_bar(range(steps), desc=desc, disable=desc is None, leave=False):
            if on_step:
                on_step(step, picture().detach().clone())
            dy, dx = torch.randint(-reg.jitter, reg.jitter + 1, (2,), generator=generator).tolist()
            with torch.enable_grad():
                images = picture()
                shifted = torch.roll(images, shifts=(dy, dx), dims=(2, 3))
                penalty = reg.l2 * (images - anchor).pow(2).flatten(1).mean(1)
                penalty = penalty + reg.tv * total_variation(images)
                loss = (penalty - objective(shifted)).sum()
                optimiser.zero_grad()
                loss.backward()
            optimiser.step()
            if not reg.fourier:  # the spectrum's sigmoid already keeps pixels in (0, 1)
                with torch.no_grad():
                    # never blur last: it would undo the final steps' gain for nothing
                    if reg.blur_every and (step + 1) % reg.blur_every == 0 and step + 1 < steps:
                        variable.copy_(blur(variable))
                    variable.clamp_(0, 1)
    images = picture().detach()
    if on_step:
        on_step(steps, images.clone())
    return images
