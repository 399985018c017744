"""What the page may send, and the checks that turn a bad request into one clear 4xx message."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from fastapi import HTTPException
from pydantic import BaseModel, Field

MAX_BODY_BYTES = 2_000_000  # a 3×64×64 image as JSON is ~250 kB; anything far bigger is a mistake


class ImageRequest(BaseModel):
    """An image as nested lists of pixels in [0, 1]: C×H×W, or H×W for one channel."""

    image: list
    checkpoint: str = "model.safetensors"


class PredictRequest(ImageRequest):
    layers: list[str] | None = None  # feature maps of these layers (default: every layer)


class ExplainRequest(ImageRequest):
    method: Literal["saliency", "occlusion"] = "saliency"
    target: int | None = None  # class to explain (default: the predicted one)


class TwinRequest(ImageRequest):
    method: Literal["deepfool", "fgsm"] = "deepfool"
    eps: float = Field(0.2, gt=0, le=1)  # FGSM's L-inf step in pixel units


def bad_request(message: str, status: int = 422) -> HTTPException:
    """Returns the exception FastAPI turns into `{"detail": message}` with `status`."""
    return HTTPException(status_code=status, detail=message)


def to_pixels(image: list, shape: tuple[int, int, int]) -> torch.Tensor:
    """Returns the request's image as a 1×C×H×W float tensor, or raises a 422 saying what is
    wrong with it (not numbers, wrong size, values outside [0, 1])."""
    expected = "×".join(map(str, shape))
    try:
        array = np.asarray(image)
    except ValueError:
        raise bad_request(
            f"image: rows of different lengths (expected {expected} pixels)"
        ) from None
    if array.dtype.kind not in "iuf" or array.dtype == bool:
        raise bad_request(
            f"image: expected numbers (pixels in [0, 1]), got {array.dtype.name} values"
        )
    got = "×".join(map(str, array.shape)) or "a single number"
    if array.ndim == 2 and shape[0] == 1:
        array = array[None]
    if array.shape != tuple(shape):
        grey = f" (or {shape[1]}×{shape[2]})" if shape[0] == 1 else ""
        raise bad_request(f"image: expected {expected}{grey} pixels, got {got}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise bad_request("image: contains NaN or infinity")
    if array.min() < 0 or array.max() > 1:
        raise bad_request(
            f"image: pixels must lie in [0, 1], got {array.min():.3g} .. {array.max():.3g}"
        )
    return torch.from_numpy(array)[None]
