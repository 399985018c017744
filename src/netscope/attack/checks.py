"""Argument checks shared by the attacks: one clear NetscopeError per mistake."""

from __future__ import annotations

import torch

from netscope.errors import NetscopeError

NORMS = ("linf", "l2")


def check_images(images: torch.Tensor) -> None:
    """Raises NetscopeError unless `images` is a float N×C×H×W batch of pixels in [0, 1]."""
    if not torch.is_tensor(images) or images.ndim != 4 or not images.is_floating_point():
        uint8 = torch.is_tensor(images) and images.dtype == torch.uint8
        hint = "uint8 pixels: divide by 255 (or use `dataset.float_images()`); " if uint8 else ""
        raise NetscopeError(
            f"images: {hint}expected a float tensor N×C×H×W of pixels in [0, 1], got "
            f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}"
        )
    if len(images) and (images.min() < 0 or images.max() > 1):
        raise NetscopeError(
            f"images: pixels must lie in [0, 1] (found {images.min().item():.3g} .. "
            f"{images.max().item():.3g}); attacks take pixel-space input and a model that "
            "normalises inside (Run.pixel_model())"
        )


def check_labels(name: str, labels: torch.Tensor | None, n: int) -> None:
    """Raises NetscopeError unless `labels` is None or an integer vector of length n."""
    if labels is None:
        return
    if not torch.is_tensor(labels) or labels.shape != (n,) or labels.is_floating_point():
        raise NetscopeError(
            f"{name}: expected an integer tensor of shape ({n},), got "
            f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}"
        )


def check_targets(targets: torch.Tensor | None, labels: torch.Tensor, num_classes: int) -> None:
    """Raises NetscopeError when a target is out of range or equals the true class."""
    if targets is None:
        return
    check_labels("targets", targets, len(labels))
    if len(targets) and (targets.min() < 0 or targets.max() >= num_classes):
        raise NetscopeError(f"targets: expected class indices in 0..{num_classes - 1}")
    same = (targets.to(labels.device) == labels).nonzero().flatten()
    if len(same):
        raise NetscopeError(
            f"targets: the target equals the true class for image(s) {same[:10].tolist()} "
            "(a targeted attack must aim at another class)"
        )


def check_eps(eps: float, name: str = "eps") -> None:
    """Raises NetscopeError unless eps is a finite number > 0."""
    if not isinstance(eps, (int, float)) or not eps > 0 or eps == float("inf"):
        raise NetscopeError(
            f"{name} {eps!r}: expected a number > 0 (pixel units, images in [0, 1])"
        )


def check_norm(norm: str) -> None:
    """Raises NetscopeError for a norm other than linf or l2."""
    if norm not in NORMS:
        raise NetscopeError(f"norm {norm!r}: expected one of {', '.join(NORMS)}")


def check_positive_int(value: int, name: str) -> None:
    """Raises NetscopeError unless value is an integer >= 1."""
    if not isinstance(value, int) or value < 1:
        raise NetscopeError(f"{name} {value!r}: expected an integer >= 1")
