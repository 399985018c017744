"""What the page may send and what it gets back, and the checks that turn a bad request into one
clear 4xx message naming the field."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from netscope.attack import ATTACKS

MAX_JSON_DEPTH = 8  # {"image": [[[pixels]]]} is 4 deep
CHECKPOINT_CHARS = 200


def max_body_bytes(image_shape: tuple[int, int, int]) -> int:
    """Returns the largest request body worth reading for images of `image_shape`: every pixel
    written out in full ("0.12345678901234568, " is 21 characters) with room for indentation."""
    return 65_536 + 48 * math.prod(image_shape)


class ImageRequest(BaseModel):
    image: list = Field(
        description="pixels in [0, 1] as nested lists: C×H×W, or H×W for one channel"
    )
    checkpoint: str = Field("model.safetensors", max_length=CHECKPOINT_CHARS)


class PredictRequest(ImageRequest):
    layers: list[str] | None = Field(
        None, description="feature maps of these layers, each at most once (default: every layer)"
    )


class ExplainRequest(ImageRequest):
    method: Literal["saliency", "occlusion"] = "saliency"
    target: int | None = Field(None, ge=0, description="class to explain (default: the predicted)")


# the attacks of netscope.attack.ATTACKS that work on one image at a time
TWIN_METHODS = tuple(name for name, spec in ATTACKS.items() if spec.per_image)


class TwinRequest(ImageRequest):
    method: Literal[TWIN_METHODS] = "deepfool"
    eps: float = Field(
        0.2,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="the budget of an attack that takes one, in its first norm (pixels in [0, 1])",
    )


class AttackChoice(BaseModel):
    name: str
    title: str
    budget: bool


class Problem(BaseModel):
    detail: str


class Info(BaseModel):
    run: str
    model: str
    data: str
    classes: list[str]
    image_shape: list[int]
    checkpoints: list[str]
    checkpoint: str
    layers: list[str]
    attacks: list[AttackChoice]
    test_size: int | None
    test_error_pct: float | None


class LabelledImage(BaseModel):
    index: int
    label: int
    image: list[list[list[float]]]


class FeatureMap(BaseModel):
    layer: str
    shape: list[int]
    png: str
    cmap: str
    low: float
    high: float


class Prediction(BaseModel):
    checkpoint: str
    probabilities: list[float]
    predicted: int
    features: list[FeatureMap]


class Explanation(BaseModel):
    method: str
    target: int
    png: str
    low: float
    high: float


class Twin(BaseModel):
    method: str
    original: int
    predicted: int
    probabilities: list[float]
    success: bool
    adversarial_png: str
    difference_png: str
    gain: float = Field(description="the difference picture's scale: largest change → full colour")
    l2: float
    linf: float
    image: list[list[list[float]]]


ERRORS = {  # every refusal any route can give, documented for the OpenAPI schema
    status: {"model": Problem, "description": why}
    for status, why in [
        (400, "Host is not this server"),
        (403, "Origin is another site"),
        (404, "unknown checkpoint"),
        (413, "body too large"),
        (422, "a field is invalid"),
        (429, "busy: retry after Retry-After seconds"),
    ]
}


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Returns the `{"detail": ...}` response every refusal uses."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def bad_request(message: str, status: int = 422) -> HTTPException:
    """Returns the exception FastAPI turns into `{"detail": message}` with `status`."""
    return HTTPException(status_code=status, detail=message)


def invalid_fields(_request, err: RequestValidationError) -> JSONResponse:
    """Returns a 422 naming each invalid field and what it should be, without echoing the input
    (which may hold NaN or Infinity, which JSON cannot carry back)."""
    messages = []
    for error in err.errors():
        where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        messages.append(f"{'.'.join(where) or 'body'}: {error.get('msg', 'invalid')}")
    return problem(422, "; ".join(messages))


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
    if not np.isfinite(array).all():
        raise bad_request("image: contains NaN or infinity")
    if array.min() < 0 or array.max() > 1:
        raise bad_request(
            f"image: pixels must lie in [0, 1], got {array.min():.3g} .. {array.max():.3g}"
        )
    return torch.from_numpy(array.astype(np.float32))[None]
