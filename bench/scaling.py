"""How each netscope analysis's time and peak memory grow with image size and number of classes,
on the ResNet-18-style model (random weights, bench/setups.py), with a log-log plot.

    python bench/scaling.py                         # 28, 64, 128, 224 px × 10, 1000 classes
    python bench/scaling.py --sizes 28 64 --classes 10 --plot /tmp/s.png   # quicker

Per (size, classes): `n` photos, each analysis at a fixed budget (below), timed `repeat` times
(fastest kept) with the extra peak memory over what the process held before it. Then per
analysis and class count, the least-squares slope of log(time) against log(side): 2 means cost
∝ pixels, what every analysis here requires with its budget fixed (occlusion's window and stride
grow with the side, so its number of positions stays about 14 × 14). Each analysis is also
expressed in "passes": its time over one forward + backward of the model at the same size and
classes, measured just before; a method that needs a fixed number of passes stays flat. Flags:
passes growing with the side (slope > 0.5), or 1.5× more passes with 1000 classes than with 10
(none of these methods needs more work per class: DeepFool looks at 10 candidate classes, the
others at one class per image).
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

BASELINE = "one forward + backward (baseline)"


def model_pass(model, images) -> torch.Tensor:
    """Returns the input gradient of the summed logits: one forward and one backward pass."""
    x = images.clone().requires_grad_(True)
    return torch.autograd.grad(model(x).sum(), x)[0]


def analyses(setup) -> dict:
    """Returns name -> call: the baseline pass, then each netscope analysis at the scaling budget."""
    m, x, y = setup.model, setup.images, setup.labels
    return {
        BASELINE: lambda: model_pass(m, x),
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


def pass_seconds(lines: list[dict], row: dict) -> float:
    """Returns the baseline pass's seconds at the row's size and classes."""
    return next(l["seconds"] for l in lines if l["analysis"] == BASELINE
                and l["size"] == row["size"] and l["classes"] == row["classes"])  # fmt: skip


def curve_summary(lines: list[dict], rows: list[dict], classes: int) -> dict:
    """Returns one (analysis, classes) curve's log-log slopes against the side: of time (all sizes,
    and the two largest alone: small images leave fixed costs that flatten the fit), of memory,
    and of the time in baseline passes (flat when the method needs a fixed number of passes)."""
    sides, seconds = [r["size"] for r in rows], [r["seconds"] for r in rows]
    memory = [max(r["extra_peak_mb"], 0.1) for r in rows]
    passes = [r["seconds"] / pass_seconds(lines, r) for r in rows]
    return {
        f"slope_{classes}": round(slope(sides, seconds), 2),
        f"top_slope_{classes}": round(slope(sides[-2:], seconds[-2:]), 2),
        f"memory_slope_{classes}": round(slope(sides, memory), 2),
        f"passes_{classes}": [round(p, 1) for p in passes],
        f"passes_slope_{classes}": round(slope(sides, passes), 2),
    }


def summarise(lines: list[dict]) -> list[dict]:
    """Returns per analysis: its curves' slopes, the ratio of passes with the most and the fewest
    classes at the largest size (passes, not seconds: robust to a load that drifts between
    configurations), and flags where it grows faster than its method requires."""
    out = []
    for name in dict.fromkeys(line["analysis"] for line in lines):
        mine = [line for line in lines if line["analysis"] == name]
        entry = {"analysis": name}
        for classes in sorted({line["classes"] for line in mine}):
            rows = sorted((l for l in mine if l["classes"] == classes), key=lambda l: l["size"])
            if len(rows) > 1:
                entry |= curve_summary(lines, rows, classes)
        largest = max(line["size"] for line in mine)
        at_largest = {l["classes"]: l["seconds"] / pass_seconds(lines, l)
                      for l in mine if l["size"] == largest}  # fmt: skip
        if len(at_largest) > 1:
            ratio = at_largest[max(at_largest)] / at_largest[min(at_largest)]
            entry["classes_ratio"] = round(ratio, 2)
        entry["flags"] = [f"{k} = {v} > 0.5: grows faster than the model's own pass"
                          for k, v in entry.items() if k.startswith("passes_slope") and v > 0.5]  # fmt: skip
        if entry.get("classes_ratio", 1) > 1.5:
            entry["flags"].append(f"{entry['classes_ratio']}× the passes with the most classes")
        out.append(entry)
    return out


def plot(lines: list[dict], path: str) -> None:
    """Saves log-log time, time in model passes and extra peak memory against the side length,
    one line per (analysis, classes), the fitted slopes in the shared legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(22, 10))
    names = list(dict.fromkeys(line["analysis"] for line in lines))
    colours = plt.cm.tab10(np.linspace(0, 1, 10))[[7, 0, 1, 2, 3, 4, 5, 6, 8, 9]]  # baseline grey
    for colour, name in zip(colours, names):
        for classes, style in zip(sorted({l["classes"] for l in lines}), ("-o", "--s")):
            rows = sorted((l for l in lines if l["analysis"] == name and l["classes"] == classes),
                          key=lambda l: l["size"])  # fmt: skip
            sizes = [r["size"] for r in rows]
            curves = ([r["seconds"] for r in rows],
                      [r["seconds"] / pass_seconds(lines, r) for r in rows],
                      [max(r["extra_peak_mb"], 0.1) for r in rows])  # fmt: skip
            slopes = ", ".join(f"{slope(sizes, c):.2f}" for c in curves)
            for ax, curve in zip(axes, curves):
                ax.plot(
                    sizes, curve, style, color=colour, label=f"{name}, {classes} classes: {slopes}"
                )
    sizes = sorted({l["size"] for l in lines})
    reference = [min(l["seconds"] for l in lines) * (s / sizes[0]) ** 2 for s in sizes]
    axes[0].plot(sizes, reference, ":", color="black", label="∝ pixels (slope 2)")
    titles = ("time", "time ÷ one forward+backward", "extra peak memory")
    for ax, title, unit in zip(axes, titles, ("seconds", "model passes", "MiB")):
        ax.set(xscale="log", yscale="log", xlabel="image side (pixels)", ylabel=unit,
               title=f"{title} vs image size\n(ResNet-18-style, CPU)")  # fmt: skip
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=10,
               title="analysis, classes: fitted log-log slopes of time, passes, memory")  # fmt: skip
    fig.subplots_adjust(left=0.05, right=0.98, top=0.92, bottom=0.36, wspace=0.25)
    save_png(fig, path, tight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[28, 64, 128, 224])
    parser.add_argument("--classes", nargs="+", type=int, default=[10, 1000])
    parser.add_argument("--n", type=int, default=2, help="images per analysis")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--plot", default="docs/speed_scaling.png")
    parser.add_argument("--summarise", help="no measuring: summarise and plot this earlier output")
    args = parser.parse_args()
    if args.summarise:
        with open(args.summarise) as text:
            lines = [json.loads(raw) for raw in text if '"seconds"' in raw]
        for entry in summarise(lines):
            print(json.dumps(entry))
        plot(lines, args.plot)
        return
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
