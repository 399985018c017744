"""Every analysis side by side with the library people would use instead: same model, images and
budget, one process, so the speed ratios hold on a busy machine.

    python bench/analyses.py                      # both models, every row (CPU: ~30 min)
    python bench/analyses.py --quick              # small sizes, a few steps: a smoke test
    python bench/analyses.py --models lecture --rows fgsm pgd_linf --markdown out.md

Models (bench/setups.py): the trained lecture CNN on MNIST (1×28×28, 10 classes) and a randomly
initialised ResNet-18-style network on real photographs (3×224×224, 1000 classes). Rows: FGSM,
PGD L-inf and L2 (netscope / torchattacks / Foolbox / ART), DeepFool (/ Foolbox / torchattacks /
ART), universal perturbation (/ ART), saliency, integrated gradients, occlusion (/ Captum),
class models (/ torch-lucent); CKA and ridge predictivity (/ references) on lecture-CNN
activations. Prints one JSON line per row: each variant's seconds, images/s, peak memory
(bench/memory.py) and its agreement numbers, and `speed_vs_netscope` (netscope's images/s over
the variant's: > 1 means netscope is faster).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys

import torch
from memory import timed
from peers import versions
from rows_attack import deepfool_row, fgsm_row, pgd_row, universal_row
from rows_compare import cka_row, lecture_activations, ridge_row
from rows_inspect import class_model_row, integrated_gradients_row, occlusion_row, saliency_row
from setups import DEFAULT_RUN, Setup, lecture_setup, resnet_setup, warm_up
from tables import markdown

from netscope.train import resolve_device

ROWS = ("fgsm", "pgd_linf", "pgd_l2", "deepfool", "universal", "saliency",
        "integrated_gradients", "occlusion", "class_models", "cka", "ridge")  # fmt: skip

# Sizes per mode: attacks on `*_n` images, maps on `*_map_n`; universal (train images, held-out
# images, passes); torchattacks' DeepFool (one image at a time, every class) on `slow_n` images
# (lecture, resnet); activations (images, units, ridge target units); PGD steps (None: the
# setup's 40 for the lecture CNN, 10 for the ResNet).
SIZES = {
    "full": dict(lecture_n=500, lecture_map_n=100, lecture_universal=(200, 1000, 5),
                 resnet_n=8, resnet_size=224, resnet_classes=1000, resnet_universal=(8, 8, 2),
                 lecture_class_steps=200, resnet_class_steps=50, slow_n=(100, 1),
                 activations=(10_000, 2000, 500), pgd_steps=None),
    "quick": dict(lecture_n=20, lecture_map_n=5, lecture_universal=(5, 20, 1),
                  resnet_n=1, resnet_size=32, resnet_classes=10, resnet_universal=(1, 1, 1),
                  lecture_class_steps=3, resnet_class_steps=2, slow_n=(1, 1),
                  activations=(500, 100, 20), pgd_steps=3),
}  # fmt: skip


def subset(setup: Setup, n: int) -> Setup:
    """Returns the setup with its first n images."""
    return dataclasses.replace(setup, images=setup.images[:n], labels=setup.labels[:n])


def model_rows(setup: Setup, sizes: dict, wanted: list[str]):
    """Yields (row name, number of images, settings, variants, judge) for one model."""
    key = setup.name
    maps = subset(setup, sizes[f"{key}_map_n"]) if key == "lecture" else setup
    train_n, heldout, passes = sizes[f"{key}_universal"]
    universal_setup = dataclasses.replace(subset(setup, train_n), heldout=setup.heldout[:heldout])
    builders = {
        "fgsm": (setup, lambda: fgsm_row(setup)),
        "pgd_linf": (setup, lambda: pgd_row(setup, "linf")),
        "pgd_l2": (setup, lambda: pgd_row(setup, "l2")),
        "deepfool": (setup, lambda: deepfool_row(setup, sizes["slow_n"][key == "resnet"])),
        "universal": (universal_setup, lambda: universal_row(universal_setup, passes)),
        "saliency": (maps, lambda: saliency_row(maps)),
        "integrated_gradients": (maps, lambda: integrated_gradients_row(maps)),
        "occlusion": (maps, lambda: occlusion_row(maps)),
        "class_models": (setup, lambda: class_model_row(setup, sizes[f"{key}_class_steps"])),
    }
    for name in wanted:
        if name in builders:
            used, build = builders[name]
            yield name, len(used.images), *build()


def time_variants(row: str, model: str, n: int, settings, variants, judge, device, repeat):
    """Returns one result per variant: judged on its first run, timed `repeat` times interleaved
    (the fastest kept: the least disturbed by other jobs), or the error it raised."""
    results = {name: {"variant": name} for name in variants}
    for round_ in range(repeat):
        for variant, call in variants.items():
            result = results[variant]
            if "error" in result:
                continue
            try:
                value, seconds, peak = timed(call, device)
                if round_ == 0:
                    result |= judge(variant, value)
            except Exception as err:  # noqa: BLE001 (a failing peer is reported; the run goes on)
                result["error"] = f"{type(err).__name__}: {err}"[:400]
                continue
            count = settings.get("images", {}).get(variant, n)
            best = min(seconds, result.get("seconds", seconds))
            result |= {"seconds": round(best, 4), "images_per_s": float(f"{count / best:.4g}"),
                       "peak_mb": round(max(peak, result.get("peak_mb", 0)), 1)}  # fmt: skip
            print(json.dumps({"progress": row, "model": model, **result}), file=sys.stderr)
    return list(results.values())


def measure_row(row: str, model: str, n: int, settings, variants, judge, device, repeat=1) -> dict:
    """Returns the JSON line of one row: its variants' results and the speed ratios."""
    results = time_variants(row, model, n, settings, variants, judge, device, repeat)
    ours = next(r for r in results if r["variant"] == "netscope")
    for r in results:
        if "images_per_s" in r and "images_per_s" in ours:
            r["speed_vs_netscope"] = round(ours["images_per_s"] / r["images_per_s"], 3)
    peers = [r for r in results if "images_per_s" in r and not r["variant"].startswith("netscope")]
    line = {"row": row, "model": model, "n": n, "settings": settings, "variants": results}
    if peers and "images_per_s" in ours:
        fastest = max(peers, key=lambda r: r["images_per_s"])
        line |= {"fastest_peer": fastest["variant"],
                 "netscope_vs_fastest_peer": fastest["speed_vs_netscope"]}  # fmt: skip
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lecture", "resnet"],
                        choices=["lecture", "resnet"])  # fmt: skip
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--run", default=DEFAULT_RUN, help="lecture run directory")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--repeat", type=int, default=1, help="timings per variant (fastest kept)")
    parser.add_argument("--markdown", help="also write the results as markdown tables here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = SIZES["quick" if args.quick else "full"]
    device = resolve_device(args.device)
    context = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "mode": "quick" if args.quick else "full",
        "repeat": args.repeat,
        "versions": versions(),
        "command": " ".join(["python"] + sys.argv),
    }
    print(json.dumps({"context": context}), flush=True)
    lines = []
    for model in args.models:
        if model == "lecture":
            setup = lecture_setup(args.run, sizes["lecture_n"], 1000, device)
        else:
            n, heldout = sizes["resnet_n"], sizes["resnet_universal"][1]
            setup = resnet_setup(n, heldout, sizes["resnet_size"], sizes["resnet_classes"], device)
        setup = dataclasses.replace(setup, steps=sizes["pgd_steps"] or setup.steps)
        warm_up(setup)
        for row, n, settings, variants, judge in model_rows(setup, sizes, args.rows):
            line = measure_row(row, model, n, settings, variants, judge, device, args.repeat)
            lines.append(line)
            print(json.dumps(lines[-1]), flush=True)
    if {"cka", "ridge"} & set(args.rows):
        n, units, targets = sizes["activations"]
        lecture = lecture_setup(args.run, n, 0, device)
        features = lecture_activations(lecture, lecture.images, units)
        for row in ("cka", "ridge"):
            if row in args.rows:
                built = cka_row(features) if row == "cka" else ridge_row(features, targets)
                lines.append(
                    measure_row(row, "lecture activations", n, *built, device, args.repeat)
                )
                print(json.dumps(lines[-1]), flush=True)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(markdown(context, lines))


if __name__ == "__main__":
    main()
