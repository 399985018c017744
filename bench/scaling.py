"""How each netscope analysis's time and peak memory grow with image size and number of classes,
on the ResNet-18-style model (random weights, bench/setups.py), with a log-log plot.

    python bench/scaling.py                         # 28, 64, 128, 224 px × 10, 1000 classes
    python bench/scaling.py --sizes 28 64 --classes 10 --plot /tmp/s.png   # quicker

Per (size, classes): `n` photos, each analysis at a fixed budget (below), timed `repeat` times
(fastest kept) with the extra peak memory over what the process held before it. Then per
analysis and class count, the least-squares slope of log(time) against log(side): 2 means cost
∝ pixels, what every analysis here requires with its budget fixed (occlusion's window and stride
grow with the side, so its number of positions stays about 14 × 14). Flags: a slope above 2.5, or
1000 classes costing over 1.5× the time of 10 (none of these methods needs more work per class:
DeepFool looks at 10 candidate classes, the others at one class per image).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from memory import current_memory_mb, reset_peak_memory, timed
from setups import resnet_setup, warm_up

from netscope.attack import deepfool, fgsm, pgd, universal_perturbation
from netscope.inspect import class_models, integrated_gradients, occlusion, saliency
from netscope.png import save_png
from netscope.train import resolve_device

EXPECTED_SLOPE = 2.0  # every analysis below is a fixed number of passes, each ∝ pixels


def analyses(setup) -> dict:
    """Returns name -> call, each netscope analysis at the scaling budget."""
    m, x, y = setup.model, setup.images, setup.labels
    return {
        "fgsm": lambda: fgsm(m, x, y, 8 / 255),
        "pgd (5 steps)": lambda: pgd(m, x, y, 8 / 255, steps=5, early_stop=False),
        "deepfool (10 candidates)": lambda: deepfool(m, x, y, max_iter=3),
        "universal (1 pass)": lambda: universal_perturbation(m, x, max_passes=1, max_iter=3),
        "saliency": lambda: saliency(m, x, y),
        "integrated gradients (8 steps)": lambda: integrated_gradients(m, x, y, steps=8),
        "occlusion (14×14 positions)": lambda: occlusion(m, x, y, window=setup.window,
                                                          stride=setup.stride, batch_size=64),
        "class models (5 steps, 2 classes)": lambda: class_models(m, [0, 1], setup.shape, steps=5),
    }  # fmt: skip


def measure(size: int, classes: int, n: int, repeat: int, device) -> list[dict]:
    """Returns one line per analysis for one (size, classes)."""
    setup = resnet_setup(n, 0, size, classes, device)
    setup.window, setup.stride = max(2, size // 7), max(1, size // 14)  # 14 × 14 positions
    warm_up(setup)
    lines = []
    for name, call in analyses(setup).items():
        seconds, peaks = [], []
        for _ in range(repeat):
            reset_peak_memory(device)  # trims the heap, so `before` is what is really held
            before = current_memory_mb(device)
            _, s, peak = timed(call, device)
            seconds.append(s)
            peaks.append(peak - before)
        lines.append({"analysis": name, "size": size, "classes": classes, "n": n,
                      "seconds": round(min(seconds), 4), "extra_peak_mb": round(max(peaks), 1)})  # fmt: skip
        print(json.dumps(lines[-1]), flush=True)
    return lines


def slope(xs, ys) -> float:
    """Returns the least-squares slope of log(ys) against log(xs)."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def summarise(lines: list[dict]) -> list[dict]:
    """Returns per (analysis, classes): the time slope over the side length, and per analysis the
    time ratio 1000 classes / 10 classes at the largest size, with flags."""
    out = []
    for name in dict.fromkeys(line["analysis"] for line in lines):
        mine = [line for line in lines if line["analysis"] == name]
        entry = {"analysis": name}
        for classes in sorted({line["classes"] for line in mine}):
            rows = sorted((l for l in mine if l["classes"] == classes), key=lambda l: l["size"])
            if len(rows) > 1:
                entry[f"slope_{classes}"] = round(slope([r["size"] for r in rows],
                                                        [r["seconds"] for r in rows]), 2)  # fmt: skip
        largest = max(line["size"] for line in mine)
        by_classes = {l["classes"]: l["seconds"] for l in mine if l["size"] == largest}
        if len(by_classes) > 1:
            entry["classes_ratio"] = round(
                by_classes[max(by_classes)] / by_classes[min(by_classes)], 2
            )
        entry["flags"] = [f"{k} = {v} > {EXPECTED_SLOPE + 0.5}" for k, v in entry.items()
                          if k.startswith("slope") and v > EXPECTED_SLOPE + 0.5]  # fmt: skip
        if entry.get("classes_ratio", 1) > 1.5:
            entry["flags"].append(f"time grows {entry['classes_ratio']}× with the classes")
        out.append(entry)
    return out


def plot(lines: list[dict], path: str) -> None:
    """Saves log-log time and extra peak memory against the side length, per analysis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    names = list(dict.fromkeys(line["analysis"] for line in lines))
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    for colour, name in zip(colours, names):
        for classes, style in zip(sorted({l["classes"] for l in lines}), ("-o", "--s")):
            rows = sorted((l for l in lines if l["analysis"] == name and l["classes"] == classes),
                          key=lambda l: l["size"])  # fmt: skip
            sizes = [r["size"] for r in rows]
            label = f"{name}, {classes} classes"
            axes[0].plot(sizes, [r["seconds"] for r in rows], style, color=colour, label=label)
            memory = [max(r["extra_peak_mb"], 0.1) for r in rows]
            axes[1].plot(sizes, memory, style, color=colour)
    sizes = sorted({l["size"] for l in lines})
    reference = [min(l["seconds"] for l in lines) * (s / sizes[0]) ** 2 for s in sizes]
    axes[0].plot(sizes, reference, ":", color="black", label="∝ pixels (slope 2)")
    for ax, title, unit in zip(axes, ("time", "extra peak memory"), ("seconds", "MiB")):
        ax.set(xscale="log", yscale="log", xlabel="image side (pixels)", ylabel=unit,
               title=f"{title} vs image size (ResNet-18-style, CPU)")  # fmt: skip
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2, loc="upper left")
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[28, 64, 128, 224])
    parser.add_argument("--classes", nargs="+", type=int, default=[10, 1000])
    parser.add_argument("--n", type=int, default=2, help="images per analysis")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--plot", default="docs/speed_scaling.png")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(json.dumps({"command": " ".join(["python"] + sys.argv), "device": str(device),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))  # fmt: skip
    lines = [line for size in args.sizes for classes in args.classes
             for line in measure(size, classes, args.n, args.repeat, device)]  # fmt: skip
    for entry in summarise(lines):
        print(json.dumps(entry), flush=True)
    plot(lines, args.plot)


if __name__ == "__main__":
    main()
