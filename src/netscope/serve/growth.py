"""The page's slider over epochs (Zeiler & Fergus 2014, Fig. 4, live):

    GET /api/growth?checkpoint=NAME   the first conv layer's filters at that checkpoint, and
                                      a few units' strongest patch with its deconvnet projection

The units are each conv layer's strongest at the end of training, found once; they keep their
index at every checkpoint. Searching the first 500 test images takes a fraction of a second on
the lecture CNN; each checkpoint's answer is computed once and kept. The computation loads its
own copy of the weights (no other request ever holds it) and runs one at a time: a request that
waits more than 30 s for it gets a 503 and may try again.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from fastapi import APIRouter, Query
from torch import nn

from netscope.run import load_run
from netscope.serve.render import colorize, heat_uri, pixels_uri, png_uri
from netscope.serve.schema import bad_request

SEARCHED = 500  # test images searched for each unit's strongest patch
UNITS = 3  # units shown per conv layer
WAIT_S = 30


def epoch_of(checkpoint: str) -> int | None:
    """Returns the epoch of checkpoints/epoch_NN.safetensors (None for the final weights)."""
    from netscope.inspect.growth import EPOCH_FILE

    match = EPOCH_FILE.fullmatch(checkpoint)
    return int(match[1]) if match else None


def filters_picture(model: nn.Module) -> dict:
    """Returns the first conv layer's kernels as a PNG on a diverging scale, with the scale."""
    from netscope.inspect.filters import filters
    from netscope.inspect.growth import filter_picture

    layer, weights = filters(model)
    picture, limit = filter_picture(weights)
    if picture.ndim == 2:  # red +, blue −, grey gaps
        rgb = colorize(picture, "RdBu_r", -1.0, 1.0)
        rgb[np.isnan(picture)] = 208
    else:
        rgb = (picture.clip(0, 1) * 255).astype("uint8")
    return {"layer": layer, "png": png_uri(rgb, scale=8), "limit": limit}


def strongest(model: nn.Module, images: torch.Tensor) -> dict[str, list[int]]:
    """Returns each conv layer's UNITS strongest units (by their best activation on `images`)."""
    from netscope.inspect.filters import conv_layers
    from netscope.inspect.projection import strongest_units
    from netscope.inspect.receptive import top_patches

    return {
        layer: strongest_units(top_patches(model, images, layer, k=1), UNITS)
        for layer in conv_layers(model)
    }


def unit_pictures(model: nn.Module, images: torch.Tensor, units: dict[str, list[int]]) -> list:
    """Returns, per chosen unit, its strongest patch and that activation's projection as PNGs."""
    from netscope.inspect.projection import top_projections

    shown = []
    for layer, chosen in units.items():
        found = top_projections(model, images, layer, k=1, units=chosen)
        scale = max(2, 96 // found.top.field.size[0])
        for slot, unit in enumerate(chosen):
            projection = found.projections[slot, 0].sum(0)
            bound = max(float(projection.abs().max()), 1e-12)
            shown.append(
                {
                    "layer": layer,
                    "unit": unit,
                    "value": float(found.top.values[unit, 0]),
                    "patch_png": pixels_uri(found.top.patches[unit, 0], scale),
                    "projection_png": heat_uri(projection, "RdBu_r", -bound, bound, scale),
                }
            )
    return shown


def growth_router(lab) -> APIRouter:
    """Returns the routes of the slider over epochs for the run `lab` serves."""
    router = APIRouter()
    answers: dict[str, dict] = {}
    units: dict[str, list[int]] = {}
    busy = threading.Lock()

    def searched() -> torch.Tensor:
        images, _ = lab.test_set()
        return (images[:SEARCHED].float() / 255).to(lab.device)

    def weights(checkpoint: str) -> nn.Module:
        return load_run(lab.run.path, checkpoint).pixel_model().to(lab.device)

    @router.get("/api/growth")
    def growth(checkpoint: str = Query("model.safetensors", max_length=200)) -> dict:
        if checkpoint not in lab.checkpoints:
            raise bad_request(
                f"unknown checkpoint {checkpoint!r} (this run has: {', '.join(lab.checkpoints)})",
                404,
            )
        if not busy.acquire(timeout=WAIT_S):
            raise bad_request("busy computing another checkpoint; try again in a moment", 503)
        try:
            if checkpoint not in answers:
                if not units:
                    units.update(strongest(weights("model.safetensors"), searched()))
                model = weights(checkpoint)
                answers[checkpoint] = {
                    "checkpoint": checkpoint,
                    "epoch": epoch_of(checkpoint),
                    "filters": filters_picture(model),
                    "units": unit_pictures(model, searched(), units),
                }
            return answers[checkpoint]
        finally:
            busy.release()

    return router
