"""Training seconds until MNIST test error <= 1.0 % (and <= 0.6 %): the slide's recipe vs ours.

    python bench/time_to_accuracy.py                        # 5 seeds, slide + fast + fast-0.6
    python bench/time_to_accuracy.py --seeds 1 --setups fast --plot docs/speed_time_to_accuracy.png

The slide recipe is evaluated after every epoch (up to --slide-epochs); its time to a target is the
training time of the first epoch that reaches it. Our recipes use a one-cycle schedule, whose
length is part of the recipe, so they count only the error at their end. Evaluation time is not
training time on either side. One JSON line per run, then one summary line per setup and target
with the median time and `vs_slide`, the slide's median time divided by it (same invocation).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import torch
from memory import peak_memory_mb, reset_peak_memory
from recipe import slide_recipe

from netscope.config import recipe_config
from netscope.data import load_dataset
from netscope.device import resolve_device
from netscope.train import train

# name -> TrainConfig overrides on RECIPES["fast"]: the measured settings of bench/RESULTS.md
SETUPS: dict[str, dict] = {
    "fast": {},
    "fast-fp32": dict(autocast="off"),  # the recipe without its bf16 forward pass
    "fast-0.6": dict(epochs=3, shift=1),
    "fast-0.6-e4": dict(epochs=4, shift=1),
}
TARGETS = (1.0, 0.6)


def first_reaching(history: list[tuple[float, float]], target: float) -> float | None:
    """Returns the training seconds at the first (seconds, error) point with error <= target."""
    return next((seconds for seconds, error in history if error <= target), None)


def run_slide(dataset, seed: int, epochs: int, device) -> dict:
    """Returns one slide-recipe run: its per-epoch (seconds, error) history and times to target."""
    reset_peak_memory(device)
    history = slide_recipe(dataset, epochs, seed, device)
    peak = round(peak_memory_mb(device), 1)
    return {"setup": "slide", "seed": seed, "history": history, "peak_mb": peak}


def run_setup(dataset, name: str, seed: int, device_name: str) -> dict:
    """Returns one run of our recipe: (seconds, error) at its end."""
    config = recipe_config(
        "fast", seed=seed, device=device_name, progress=False, checkpoints=False,
        out=tempfile.mkdtemp(prefix="netscope-tta-"), **SETUPS[name],
    )  # fmt: skip
    device = resolve_device(device_name)
    reset_peak_memory(device)
    run = train(config, dataset=dataset)
    peak = round(peak_memory_mb(device), 1)
    shutil.rmtree(config.out)
    end = (run.info["train_seconds"], run.metrics[-1]["test_error_pct"])
    return {"setup": name, "seed": seed, "history": [end], "config": SETUPS[name], "peak_mb": peak}


def summary(runs: list[dict], target: float, slide: dict | None) -> dict:
    """Returns the median time to `target` over the seeds; a seed that never reached it counts its
    whole training time, and the median is then only a lower bound (`median_is_lower_bound`)."""
    times = [first_reaching(r["history"], target) for r in runs]
    reached = sum(t is not None for t in times)
    bounded = [t if t is not None else r["history"][-1][0] for t, r in zip(times, runs)]
    median = statistics.median(bounded)
    row = {
        "setup": runs[0]["setup"],
        "target_pct": target,
        "seeds_reached": f"{reached}/{len(runs)}",
        "median_s": round(median, 2),
        "median_is_lower_bound": reached < len(runs),
        "max_s": round(max(bounded), 2),
        "final_errors": [round(r["history"][-1][1], 2) for r in runs],
    }
    if slide and reached == len(runs):  # a ratio only where our recipe reached it on every seed
        row["vs_slide"] = round(slide["median_s"] / median, 1)
        row["vs_slide_is_lower_bound"] = slide["median_is_lower_bound"]
    return row


def plot_time_to_accuracy(runs: list[dict], path: Path, note: str = "") -> Path:
    """Saves test error against training seconds for every run, with the targets marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colors = {"slide": "tab:gray", "fast": "tab:blue", "fast-fp32": "tab:cyan",
              "fast-0.6": "tab:orange", "fast-0.6-e4": "tab:green"}  # fmt: skip
    labels = {"slide": "slide recipe, after each epoch", "fast": "--recipe fast (1 epoch)",
              "fast-fp32": "--recipe fast --autocast off",
              "fast-0.6": "--recipe fast --epochs 3 --shift 1",
              "fast-0.6-e4": "--recipe fast --epochs 4 --shift 1"}  # fmt: skip
    labelled = set()
    for run in runs:
        seconds, errors = zip(*run["history"])
        name = run["setup"]
        label = None if name in labelled else labels.get(name, name)
        labelled.add(name)
        ax.plot(seconds, errors, "o-", color=colors.get(name), alpha=0.8, label=label, ms=5)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    low, high = ax.get_xlim()
    ax.set_xticks([t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if low <= t <= high])
    for target in TARGETS:
        ax.axhline(target, color="k", ls="--", lw=0.8)
        ax.annotate(f"{target} %", (1.0, target), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=10)  # fmt: skip
    ax.set(xlabel="training time (s, log scale)", ylabel="test error (%)")
    ax.set_title(f"MNIST, lecture CNN: test error vs training time{note}")
    ax.legend(fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--setups", nargs="+", default=["slide", *SETUPS])
    parser.add_argument("--slide-epochs", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--plot", type=Path, help="save the error-vs-time figure here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist")
    device = resolve_device(args.device)
    runs: dict[str, list[dict]] = {name: [] for name in args.setups}
    for seed in range(args.seeds):  # seeds outermost: a burst of load hits every setup alike
        for name in args.setups:
            if name == "slide":
                run = run_slide(dataset, seed, args.slide_epochs, device)
            else:
                run = run_setup(dataset, name, seed, args.device)
            runs[name].append(run)
            print(json.dumps({**run, "device": str(device)}), flush=True)
    for target in TARGETS:
        slide = summary(runs["slide"], target, None) if "slide" in runs else None
        for name in args.setups:
            print(json.dumps(summary(runs[name], target, slide)), flush=True)
    if args.plot:
        note = f" ({torch.get_num_threads()} CPU thread(s))" if device.type == "cpu" else ""
        plot_time_to_accuracy([r for rs in runs.values() for r in rs], args.plot, note)


if __name__ == "__main__":
    main()
