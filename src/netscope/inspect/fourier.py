"""Images parameterised by a scaled Fourier spectrum (Olah et al. 2017, "Preconditioning and
parameterization"): gradient ascent on the spectrum, with every frequency f multiplied by 1/|f|,
takes large steps in smooth directions and small ones in pixel noise, so the optimum has the
1/f spectrum of natural images instead of high-frequency patterns. A sigmoid keeps pixels in
(0, 1). Colour decorrelation (their second change) is not done: MNIST has one channel.
"""

from __future__ import annotations

import torch

EDGE = 1e-4  # pixels are kept this far inside (0, 1), where the sigmoid is invertible


def spectrum_scale(height: int, width: int, device=None) -> torch.Tensor:
    """Returns 1 / |f| for each bin of rfft2 on a height×width image (the lowest nonzero
    frequency's value for f = 0, so the mean can move as freely as the coarsest pattern)."""
    fy = torch.fft.fftfreq(height, device=device)[:, None]
    fx = torch.fft.rfftfreq(width, device=device)[None, :]
    return 1 / (fx**2 + fy**2).sqrt().clamp_min(1 / max(height, width))


def to_spectrum(images: torch.Tensor) -> torch.Tensor:
    """Returns the real N×C×H×(W/2+1)×2 parameters whose image (`from_spectrum`) is `images`."""
    logits = torch.logit(images.detach().clamp(EDGE, 1 - EDGE))
    spectrum = torch.fft.rfft2(logits, norm="ortho") / spectrum_scale(
        *images.shape[-2:], images.device
    )
    return torch.view_as_real(spectrum).contiguous()


def from_spectrum(parameters: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Returns the N×C×H×W images in (0, 1) of spectrum `parameters` (see `to_spectrum`)."""
    spectrum = torch.view_as_complex(parameters) * spectrum_scale(*size, parameters.device)
    return torch.sigmoid(torch.fft.irfft2(spectrum, s=size, norm="ortho"))
