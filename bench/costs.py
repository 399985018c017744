"""Measures the unit costs behind the time estimates the long commands print (netscope.costs).

    python bench/costs.py --run RUN [--lessons] [--out costs.json]

RUN is a finished lecture-recipe run (e.g. the tests' NETSCOPE_TEST_RUN). Prints one JSON
object: the cost of a training step, an attacked image, an inspection stage at its defaults, a
fooling step, a compared image and (with --lessons; several minutes) a lesson, each as a
multiple of one lecture-CNN SGD step (batch 100, channels_last) timed right before and after it.
Ratios survive a machine shared with other jobs, where wall times alone vary several-fold;
src/netscope/costs.py turns them back into seconds with the step's time on the quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from netscope.attack import ATTACKS, AttackConfig, FoolConfig, run_attack, run_fool
from netscope.compare import CompareConfig, run_compare
from netscope.config import recipe_config
from netscope.data import load_dataset
from netscope.evaluate import predict
from netscope.inspect import InspectConfig, run_inspect
from netscope.lessons import LESSONS, run_lesson
from netscope.models import build_model
from netscope.progress import set_enabled
from netscope.run import load_run
from netscope.train import train


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def reference_step_s(steps: int = 20) -> float:
    """Returns seconds per SGD step of the lecture CNN on a batch of 100 (channels_last)."""
    torch.manual_seed(0)
    model = build_model("lecture_cnn", 1, 10, 28).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs = torch.randn(100, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (100,))

    def step() -> None:
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    return timed(lambda: [step() for _ in range(steps)]) / steps


def in_steps(work, units: int = 1) -> float:
    """Returns the cost of `work` per unit as a multiple of a reference step timed around it."""
    before = reference_step_s()
    seconds = timed(work)
    return seconds / units / ((before + reference_step_s()) / 2)


def train_costs(out: Path, mnist) -> dict:
    """Steps per training step (clean, FGSM, PGD-10) and per test image scored."""
    costs = {}
    for name, limit, extra in (("clean", 6000, {}), ("fgsm", 1000, {"adversarial": "fgsm"}),
                               ("pgd", 1000, {"adversarial": "pgd"})):  # fmt: skip
        config = recipe_config("lecture", out=str(out / name), epochs=1, train_limit=limit,
                               test_limit=100, progress=False, adversarial_check=0,
                               **extra)  # fmt: skip
        costs[f"train_step_{name}"] = in_steps(
            lambda c=config: train(c, dataset=mnist), limit // 100
        )
    model = build_model("lecture_cnn", 1, 10, 28).eval()
    pixels = mnist.normalize(mnist.test_images)
    costs["score_image"] = in_steps(lambda: predict(model, pixels), len(pixels))
    return costs


def attack_costs(run, out: Path) -> dict:
    """Steps per attacked image for every attack at its defaults (fgsm, pgd: curve on and off;
    universal: per image and pass)."""
    costs = {}
    for name, spec in ATTACKS.items():
        n = {"lbfgs": 50, "universal": 100}.get(name, 200)
        for curve in (False, True) if spec.budget and name != "universal" else (False,):
            config = AttackConfig(method=name, n=n, curve=curve, progress=False)
            if name == "universal":
                config.options = replace(config.options, max_passes=1, target_rate=1.0)
            work = lambda config=config, name=name: run_attack(run, out / name, config)  # noqa: E731
            costs[f"attack_{name}" + ("_curve" if curve else "")] = in_steps(work, n)
    return costs


def analysis_costs(run, out: Path) -> dict:
    """Steps per inspection stage (defaults), per fooling step, per compared image."""
    before = reference_step_s()
    record = run_inspect(run, out / "inspect", InspectConfig(progress=False))
    step = (before + reference_step_s()) / 2
    costs = {f"inspect_{stage}": seconds / step for stage, seconds in record["seconds"].items()}
    fool = run_fool(run, out / "fool", FoolConfig(progress=False))
    step = (step + reference_step_s()) / 2
    for method, result in fool["results"].items():
        costs[f"fool_{method}_step"] = result["seconds"] / max(1, result["steps"]) / step
    untrained = load_run(run.path, "checkpoints/epoch_00.safetensors")
    config = CompareConfig(n_images=1000, progress=False)
    costs["compare_image"] = in_steps(
        lambda: run_compare(run, untrained, out / "compare", config), 1000
    )
    return costs


def lesson_costs(out: Path) -> dict:
    """Steps per lesson at its quick default."""
    return {
        f"lesson_{name}": in_steps(lambda name=name: run_lesson(name, out / name, progress=False))
        for name in LESSONS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished lecture-recipe run directory")
    parser.add_argument("--lessons", action="store_true", help="also time every lesson")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    set_enabled(False)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    run = load_run(args.run)
    costs = {"load_average": os.getloadavg()[0], "threads": torch.get_num_threads()}
    costs["reference_step_s"] = reference_step_s()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        costs |= train_costs(out / "train", load_dataset("mnist"))
        costs |= attack_costs(run, out / "attack")
        costs |= analysis_costs(run, out)
        if args.lessons:
            costs |= lesson_costs(out / "lessons")
    costs["load_average_end"] = os.getloadavg()[0]
    text = json.dumps({k: round(v, 4) for k, v in costs.items()}, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
