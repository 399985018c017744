"""The lecture recipe as the slide writes it vs netscope's trainer: same model, data, seed, steps.

    python bench/recipe.py                       # 10 epochs, every variant for this device
    python bench/recipe.py --epochs 1 --repeat 3 # short: interleaved runs, median per variant
    python bench/recipe.py --variants slide netscope netscope-plain

Each variant runs in a fresh process (so peak memory and compile time are its own) and prints one
JSON line: µs/step, training seconds, final test error, peak memory (CPU RSS or GPU max allocated)
and `vs_slide`, the slide code's time divided by the variant's, both measured in this invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from memory import peak_memory_mb
from setups import limit_dataset

from netscope.config import recipe_config
from netscope.data import load_dataset
from netscope.device import resolve_device
from netscope.evaluate import error_pct, predict
from netscope.models import LectureCNN
from netscope.train import train

PLAIN = dict(channels_last=False, fused=False, compile=False, cuda_graphs=False, tf32=False)

# name -> (devices it runs on, TrainConfig overrides, what it shows); "slide" is the baseline.
VARIANTS: dict[str, tuple[tuple[str, ...], dict, str]] = {
    "slide": (("cpu", "cuda"), {}, "the slide's eager code (baseline)"),
    "netscope-plain": (("cpu", "cuda"), PLAIN, "netscope's loop, every optimisation off"),
    "netscope": (("cpu", "cuda"), {}, "netscope's defaults for this device"),
    "netscope-contiguous": (("cpu", "cuda"), dict(channels_last=False), "defaults, NCHW"),
    "netscope-unfused": (("cuda",), dict(fused=False), "per-parameter SGD, hence no graph"),
    "netscope-1-thread": (("cpu",), dict(threads=1), "defaults on one CPU thread"),
    "netscope-compile": (("cpu", "cuda"), dict(compile=True), "defaults + torch.compile"),
    "netscope-bf16": (("cpu", "cuda"), dict(autocast="bf16"), "defaults + bf16 autocast"),
    "netscope-no-graphs": (("cuda",), dict(cuda_graphs=False), "defaults without CUDA graphs"),
    "netscope-no-tf32": (("cuda",), dict(tf32=False), "defaults without TF32"),
}


def slide_recipe(dataset, epochs: int, seed: int, device: torch.device, on_epoch=None) -> list:
    """Returns [(training seconds so far, test error %)] per epoch of the lecture recipe written
    as the slide writes it: eager PyTorch, the whole data set as one tensor, batches in order."""
    torch.manual_seed(seed)
    model = LectureCNN().to(device)
    x_train = dataset.normalize(dataset.train_images.to(device))
    y_train = dataset.train_labels.to(device)
    x_test = dataset.normalize(dataset.test_images.to(device))
    y_test = dataset.test_labels.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seconds, history = 0.0, []
    for _ in range(epochs):
        start = time.perf_counter()
        for i in range(0, len(x_train), 100):
            loss = F.cross_entropy(model(x_train[i : i + 100]), y_train[i : i + 100])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        loss.item()  # wait for the device
        seconds += time.perf_counter() - start
        history.append((seconds, error_pct(predict(model, x_test), y_test)))
    return history


def measure(name: str, epochs: int, seed: int, device_name: str, limit: int = 0) -> dict:
    """Returns the measurement of one variant, run in this process (on the first `limit` train
    and test images when limit > 0: a smoke test)."""
    dataset = limit_dataset(load_dataset("mnist"), limit)
    device = resolve_device(device_name)
    steps_per_epoch = len(dataset.train_images) // 100
    if name == "slide":
        history = slide_recipe(dataset, epochs, seed, device)
        epoch_s = [b[0] - a[0] for a, b in zip([(0.0, 0)] + history, history)]
        error = history[-1][1]
    else:
        config = recipe_config(
            "lecture", epochs=epochs, seed=seed, device=device_name, progress=False,
            checkpoints=False, out=tempfile.mkdtemp(prefix="netscope-bench-"), **VARIANTS[name][1],
        )  # fmt: skip
        run = train(config, dataset=dataset)
        shutil.rmtree(config.out)
        epoch_s = [m["epoch_s"] for m in run.metrics]
        error = run.metrics[-1]["test_error_pct"]
    steady = statistics.median(epoch_s[1:]) if epochs > 1 else epoch_s[0]
    return {
        "variant": name,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "epochs": epochs,
        "us_per_step": round(1e6 * steady / steps_per_epoch, 1),
        "train_s": round(sum(epoch_s), 3),
        "first_epoch_extra_s": round(epoch_s[0] - steady, 3),  # compile, capture, warm-up
        "test_error_pct": round(error, 2),
        "peak_mb": round(peak_memory_mb(device), 1),
    }


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Returns the measurement of one variant, run in a fresh Python process."""
    command = [sys.executable, __file__, "--child", name, "--epochs", str(args.epochs),
               "--seed", str(args.seed), "--device", args.device,
               "--threads", str(args.threads), "--limit", str(args.limit)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        return {"variant": name, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(rows: list[dict]) -> dict:
    """Returns one variant's row with the median time of its repeats and how they spread."""
    times = [r["train_s"] for r in rows]
    middle = sorted(rows, key=lambda r: r["train_s"])[len(rows) // 2]
    return {**middle, "repeats": len(rows), "train_s_all": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", nargs="+", help=f"subset of {list(VARIANTS)}")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds; median kept")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every variant")
    parser.add_argument(
        "--limit", type=int, default=0, help="first N train/test images (smoke test)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.threads:  # before any work; variants' own `threads` setting may still override
            torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.child, args.epochs, args.seed, args.device, args.limit)))
        return
    device = resolve_device(args.device).type
    names = args.variants or [n for n, (devices, _, _) in VARIANTS.items() if device in devices]
    names = ["slide"] + [n for n in names if n != "slide"]
    rows: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(args.repeat):  # interleaved, so a burst of load hits every variant alike
        for name in names:
            rows[name].append(run_variant(name, args))
            print(json.dumps(rows[name][-1]), file=sys.stderr, flush=True)  # progress
    failed = {n: r for n, r in rows.items() if any("error" in x for x in r)}
    results = {n: summarise(r) for n, r in rows.items() if n not in failed}
    baseline = results["slide"]["train_s"]
    for name, result in results.items():
        result["vs_slide"] = round(baseline / result["train_s"], 2)
        result["what"] = VARIANTS[name][2]
        print(json.dumps(result), flush=True)
    for name, result in failed.items():
        print(json.dumps({"variant": name, "failed": result[0]["error"]}), flush=True)


if __name__ == "__main__":
    main()
