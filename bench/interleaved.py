"""Per-step cost of the lecture step, variants interleaved in blocks inside one process.

    python bench/interleaved.py --threads 1 --blocks 12 --steps 25

On a shared machine the load changes faster than a whole run lasts; alternating blocks of a few
steps between variants lets every variant see the same load, so the per-block ratio is the
robust number. Same model, data and seed as bench/recipe.py; one JSON line per variant.

The last line, `convolutions_only`, times just the four convolution kernels of a channels_last
step (conv1 forward and weight gradient on the same batches, conv2 forward and both gradients on
one fixed hidden activation of the same shape):
slide time / that time bounds the same-math speed-up any step built on these kernels can reach,
since the rest of the step (pooling, ReLU, the linear layers, loss, SGD, autograd) is not free.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from netscope.data import load_dataset
from netscope.models import LectureCNN

# name -> (channels_last, fused SGD, bf16 autocast); "slide" is the slide's eager code; bf16 is
# not the same math (the fast recipe uses it where the CPU has bf16 instructions)
VARIANTS = {
    "slide": (False, None, False),
    "channels_last": (True, None, False),
    "channels_last+fused": (True, True, False),
    "channels_last+bf16": (True, None, True),
}


def make_variant(inputs: torch.Tensor, channels_last: bool, fused: bool | None) -> tuple:
    """Returns (model, inputs, optimiser) of one variant, initialised from seed 0."""
    torch.manual_seed(0)
    model = LectureCNN()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return model, inputs, torch.optim.SGD(model.parameters(), lr=0.1, fused=fused)


def convolutions_only(model: torch.nn.Module, inputs: torch.Tensor) -> Callable[[int], None]:
    """Returns step(i): the convolution kernels of one channels_last training step on batch i,
    with the gradients of conv1's and conv2's outputs fixed (their cost does not depend on them)."""
    conv1, conv2 = model.conv1, model.conv2
    with torch.no_grad():
        hidden = F.relu(F.max_pool2d(conv1(inputs[:100]), 3)).requires_grad_()
        grad1, grad2 = torch.randn_like(conv1(inputs[:100])), torch.randn_like(conv2(hidden))
    wanted = [conv1.weight, conv1.bias, conv2.weight, conv2.bias, hidden]

    def step(i: int) -> None:
        outputs = [conv1(inputs[i * 100 : (i + 1) * 100]), conv2(hidden)]
        torch.autograd.grad(outputs, wanted, [grad1, grad2])

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--steps", type=int, default=25, help="steps per block")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist")
    inputs, labels = dataset.normalize(dataset.train_images), dataset.train_labels
    variants = {name: make_variant(inputs, *flags[:2]) for name, flags in VARIANTS.items()}
    ms = {name: [] for name in [*variants, "convolutions_only"]}
    convolutions = convolutions_only(*variants["channels_last"][:2])
    for block in range(args.blocks):
        for name, (model, x, optimizer) in variants.items():
            bf16 = torch.autocast("cpu", torch.bfloat16, enabled=VARIANTS[name][2])
            start = time.perf_counter()
            for step in range(block * args.steps, (block + 1) * args.steps):
                i = step % 600
                with bf16:
                    logits = model(x[i * 100 : (i + 1) * 100]).float()
                loss = F.cross_entropy(logits, labels[i * 100 : (i + 1) * 100])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            ms[name].append(1e3 * (time.perf_counter() - start) / args.steps)
        start = time.perf_counter()
        for step in range(block * args.steps, (block + 1) * args.steps):
            convolutions(step % 600)
        ms["convolutions_only"].append(1e3 * (time.perf_counter() - start) / args.steps)
    for name, times in ms.items():
        ratios = [s / t for s, t in zip(ms["slide"], times)]
        print(json.dumps({"variant": name, "threads": torch.get_num_threads(),
                          "median_ms_per_step": round(statistics.median(times), 2),
                          "vs_slide_median_of_blocks": round(statistics.median(ratios), 2)}))  # fmt: skip


if __name__ == "__main__":
    main()
