"""Tensors to small PNG data URIs for the web page: feature-map grids, heat maps, differences."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image


def png_uri(rgb: np.ndarray, scale: int = 1) -> str:
    """Returns an H×W×3 uint8 array as a PNG data URI, enlarged `scale` times (nearest pixel)."""
    image = Image.fromarray(rgb)
    if scale > 1:
        image = image.resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colorize(values: np.ndarray, cmap: str, low: float, high: float) -> np.ndarray:
    """Returns `values` mapped through a matplotlib colour map over [low, high] as uint8 RGB."""
    span = high - low if high > low else 1.0
    unit = np.clip((values - low) / span, 0, 1)
    return (colormaps[cmap](unit)[..., :3] * 255).astype(np.uint8)


def pixels_uri(pixels: torch.Tensor, scale: int = 4) -> str:
    """Returns a C×H×W image in [0, 1] as a PNG data URI (grey for one channel)."""
    array = (pixels.detach().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8)
    rgb = np.repeat(array, 3, axis=0) if array.shape[0] == 1 else array[:3]
    return png_uri(np.ascontiguousarray(rgb.transpose(1, 2, 0)), scale)


def feature_grid(output: torch.Tensor, tile_px: int = 48) -> tuple[np.ndarray, dict]:
    """Returns one layer's output (C×H×W maps, or a vector) as a colour grid and its colour scale.

    Maps share one colour scale per layer: diverging around 0 when the layer has negative
    values (blue < 0 < red), black → yellow otherwise (ReLU and pooling outputs)."""
    values = output.detach().float().cpu()
    if values.ndim == 1:  # a vector of units: one cell each, 20 to a row
        width = 20
        padded = torch.full((math.ceil(len(values) / width) * width,), float("nan"))
        padded[: len(values)] = values
        maps, cell = padded.view(-1, width)[None], 1
    else:
        maps = values.reshape(-1, *values.shape[-2:])
        cell = 0
    low, high = float(np.nanmin(maps.numpy())), float(np.nanmax(maps.numpy()))
    if low < 0:
        bound = max(-low, high, 1e-12)
        cmap, low, high = "RdBu_r", -bound, bound
    else:
        cmap, high = "magma", max(high, 1e-12)
    rgb = colorize(np.nan_to_num(maps.numpy(), nan=low), cmap, low, high)
    rgb[np.isnan(maps.numpy())] = 255
    grid = rgb[0].repeat(14, 0).repeat(14, 1) if cell else tile(rgb, tile_px)
    return grid, {"cmap": cmap, "low": low, "high": high}


def tile(maps: np.ndarray, tile_px: int) -> np.ndarray:
    """Returns K×h×w×3 maps laid out in a grid twice as wide as high, each enlarged to about
    `tile_px` (at least 2×, at most 10× so that 2×2 maps do not look like big blocks)."""
    k, h, w, _ = maps.shape
    scale = min(10, max(2, tile_px // max(h, w)))
    columns = min(k, max(1, math.ceil(math.sqrt(k * 2))))
    rows = math.ceil(k / columns)
    gap = 2
    grid = np.full(
        (rows * (h * scale + gap) - gap, columns * (w * scale + gap) - gap, 3), 255, np.uint8
    )
    for i in range(k):
        r, c = divmod(i, columns)
        big = maps[i].repeat(scale, 0).repeat(scale, 1)
        grid[r * (h * scale + gap) : r * (h * scale + gap) + h * scale,
             c * (w * scale + gap) : c * (w * scale + gap) + w * scale] = big  # fmt: skip
    return grid


def heat_uri(values: torch.Tensor, cmap: str, low: float, high: float, scale: int = 8) -> str:
    """Returns an H×W map as a colour PNG data URI over [low, high]."""
    return png_uri(colorize(values.detach().float().cpu().numpy(), cmap, low, high), scale)


def difference_uri(difference: torch.Tensor, scale: int = 8) -> tuple[str, float]:
    """Returns a C×H×W perturbation as a blue (darker) / red (brighter) PNG, scaled so that its
    largest change is full colour, and that scale (the gain: pixel changes lie in [-1, 1], so it
    is at least 1; a change of 0.05 is drawn ×20)."""
    values = difference.detach().float().cpu()
    largest = float(values.abs().max())
    gain = 1.0 / largest if largest > 0 else 1.0
    mean = values.mean(0)  # colour images: the mean change over channels
    return heat_uri(mean * gain, "RdBu_r", -1.0, 1.0, scale), gain
