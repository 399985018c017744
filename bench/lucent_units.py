"""Our unit feature visualisation against torch-lucent's on the same model and the same units.

    python bench/lucent_units.py RUN [--steps 512] [--units 4]

For the strongest units of each conv layer (as `netscope inspect` picks them), both sides
maximise the channel objective, torch-lucent's default (the channel's mean activation over
positions), for the same number of steps. Each final 28×28 image is then scored by the same
code (netscope.inspect.units.unit_values). One JSON line per layer, unit and variant; the last
line sums up ours / lucent's objective per layer.

Variants: ours with the default regulariser (TV, jitter, blur), ours on a 1/f spectrum, ours
plain; lucent as `render_vis` runs by default (a 1/f spectrum through a sigmoid, its standard
transforms: pad 12, jitter 8, scale, rotate, jitter 4, then upsampled to 224×224), lucent
without the upsampling (fixed_image_size=28), and lucent with no transforms at all.

torch-lucent 0.1.8 needs kornia 0.4 and imports torchvision, which does not import here; it
uses torchvision only for ImageNet normalisation, which we turn off (preprocess=False), so a
stand-in module lets it load. Install: `pip install --no-deps torch-lucent==0.1.8 kornia==0.4.1`
(without --no-deps pip would pull torchvision and another torch).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types

import numpy as np
import torch

from netscope import load_run
from netscope.inspect.optimise import Regulariser
from netscope.inspect.projection import strongest_units
from netscope.inspect.receptive import top_patches
from netscope.inspect.units import UNIT_REGULARISER, layer_output, unit_values, visualise_units


def import_lucent():
    """Returns lucent's param and render modules, with a torchvision stand-in if needed."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # missing, or built for another torch
        transforms = types.ModuleType("torchvision.transforms")

        class Normalize:
            def __init__(self, *args, **kwargs):
                raise RuntimeError("torchvision stand-in: lucent's ImageNet normalisation is off")

        transforms.Normalize = Normalize
        stand_in = types.ModuleType("torchvision")
        stand_in.transforms = transforms
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = stand_in, transforms
    from lucent.optvis import param, render

    return param, render


def lucent_image(model, layer: str, unit: int, steps: int, variant: str, seed: int):
    """Returns lucent's optimised 1×1×28×28 image for the channel objective of `unit`."""
    param, render = import_lucent()
    np.random.seed(seed)  # lucent's jitter, scale and rotation draw from numpy
    torch.manual_seed(seed)
    options = {"fixed_image_size": 28} if variant != "default" else {}
    if variant == "no transforms":
        options["transforms"] = []
    images = render.render_vis(
        model,
        f"model_{layer.replace('.', '_')}:{unit}",  # lucent names layers by path, joined by _
        param_f=lambda: param.image(28, channels=1),
        thresholds=(steps,),
        preprocess=False,  # our model takes pixels in [0, 1] and normalises them itself
        progress=False,
        show_image=False,
        **options,
    )
    return torch.from_numpy(images[-1]).permute(0, 3, 1, 2).float()


def score(model, images: torch.Tensor, layer: str, unit: int) -> float:
    """Returns the channel objective of `unit` on each image, scored by our code."""
    with torch.no_grad():
        output = layer_output(model, images, layer)
    direction = torch.eye(output.shape[1])[[unit] * len(images)]
    return unit_values(output, direction, None).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--units", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run)
    model = run.pixel_model()
    test = run.load_dataset().test_images[:2000].float() / 255
    ours_variants = {
        "ours default": UNIT_REGULARISER,
        "ours fourier": Regulariser(**{**vars(UNIT_REGULARISER), "fourier": True}),
        "ours plain": Regulariser(),
    }
    totals: dict = {}
    for layer in ("conv1", "conv2"):
        units = strongest_units(top_patches(model, test, layer, k=1), args.units)
        for name, reg in ours_variants.items():
            start = time.perf_counter()
            found = visualise_units(model, layer, run.image_shape, units, steps=args.steps, reg=reg)
            seconds = (time.perf_counter() - start) / len(units)
            values = [score(model, found.images[u], layer, unit)[0] for u, unit in enumerate(units)]
            for unit, value in zip(units, values):
                print(json.dumps({"layer": layer, "unit": unit, "variant": name,
                                  "objective": round(value, 4), "s_per_unit": round(seconds, 2)}))  # fmt: skip
            totals[(layer, name)] = sum(values)
        for variant in ("default", "no upsampling", "no transforms"):
            total = 0.0
            for unit in units:
                start = time.perf_counter()
                image = lucent_image(model, layer, unit, args.steps, variant, seed=0)
                seconds = time.perf_counter() - start
                value = score(model, image, layer, unit)[0]
                total += value
                print(json.dumps({"layer": layer, "unit": unit, "variant": f"lucent {variant}",
                                  "objective": round(value, 4), "s_per_unit": round(seconds, 2)}))  # fmt: skip
            totals[(layer, f"lucent {variant}")] = total
    summary = {
        layer: {
            name: round(value / totals[(layer, "lucent default")], 3)
            for (where, name), value in totals.items()
            if where == layer
        }
        for layer in ("conv1", "conv2")
    }
    print(json.dumps({"steps": args.steps, "ratio_to_lucent_default": summary}))


if __name__ == "__main__":
    main()
