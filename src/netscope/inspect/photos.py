"""Real photographs that ship inside scikit-image, as model-sized pixel tensors."""

from __future__ import annotations

import numpy as np
import torch

from netscope.errors import NetscopeError

# Photos inside the scikit-image wheel (no download on first use).
PHOTOS = ("camera", "coffee", "chelsea", "astronaut", "rocket", "coins", "moon")


def load_photo(name: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """Returns skimage.data's photo `name` as a 1×C×H×W float tensor in [0, 1], greyscaled for
    one-channel models and resized (anti-aliased) to H×W."""
    if name not in PHOTOS:
        raise NetscopeError(f"unknown photo {name!r} (expected one of {', '.join(PHOTOS)})")
    from skimage import color, data, transform

    photo = np.asarray(getattr(data, name)(), dtype=np.float64) / 255
    channels, height, width = shape
    if channels == 1 and photo.ndim == 3:
        photo = color.rgb2gray(photo)
    if channels == 3 and photo.ndim == 2:
        photo = color.gray2rgb(photo)
    if channels not in (1, 3):
        raise NetscopeError(f"photos fit models with 1 or 3 input channels, not {channels}")
    photo = transform.resize(photo, (height, width), anti_aliasing=True)
    tensor = torch.tensor(photo, dtype=torch.float32)
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return tensor[None].clamp(0, 1)
