"""Same-math CPU training steps against the slide's step, interleaved in one process (issue 20).

    python bench/cpu_step.py --threads 1 --rounds 40 --steps 5
    python bench/cpu_step.py --variants slide channels_last fused --rounds 60
    python bench/cpu_step.py --variants slide channels_last compile compile_max_autotune
    python bench/cpu_step.py --variants channels_last compile --profile --rounds 6

The variants (bench/cpu_variants.py) compute the lecture step (LectureCNN, batch 100, SGD lr
0.1, seed 0) other ways: conv → pool → ReLU fused into one autograd Function (± the bias added
after the pool), other memory layouts, conv1 as im2col + one matrix product, oneDNN off, a
pinned thread (meaningful with --threads 1), Inductor (default and max-autotune with its C++
GEMM template allowed). One JSON line per variant:

- `first_step_s`: the first step alone; `first_steps_extra_s`: the time of the first `--check`
  steps above their median (for the compiled variants: compiling, reported apart);
- `loss_max_diff`, `weights_max_diff_1`, `weights_max_diff`: how far its losses over the first
  `--check` steps and its weights after 1 and `--check` steps are from the slide's, from the
  same seed-0 weights on the same batches; `bitwise_vs_slide`, `bitwise_vs_channels_last`:
  whether its losses and final weights equal those of the slide's / the channels_last step
  (netscope's CPU default) to the last bit; `first_loss_bitwise_vs_channels_last`: whether its
  first forward pass (before any update) gives the channels_last step's loss to the last bit;
- `median_ms_per_step` and `vs_slide` = the median over rounds of (slide's time / the variant's
  time in the same round), with its 25th–75th percentiles (`_iqr`) and min–max (`_range`),
  and likewise `vs_channels_last` against netscope's CPU default: every round runs one block of `--steps`
  steps of each variant, in a rotated order, so all see the same load;
- `kernels` (compiled variants): the matrix-product and convolution kernels Inductor's code
  calls, e.g. whether the C++ GEMM template (`...MicroGemm...`) was chosen anywhere;
- `peak_extra_mb`: the process's resident-set high-water mark while `--steps` steps run, above
  what it held before them (every variant shares the process, which holds the data set; freed
  heap pages reused by malloc make it noisy); `saved_mb`: the tensors autograd keeps for one
  step's backward pass (each tensor once), the activation memory, exact and repeatable.

On a shared machine the absolute times are inflated by other jobs; only the ratios compare.
`--profile` prints, instead of the timings, torch.profiler's table of `--rounds` × `--steps`
steps of each variant (after the checks), naming Inductor's generated kernels too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch._inductor.config as inductor_config
from cpu_variants import VARIANTS, Variant, channels_last, slide
from memory import current_memory_mb, peak_memory_mb, reset_peak_memory

from netscope.data import load_dataset

CPU = torch.device("cpu")


def trajectory(variant: Variant, steps: int) -> tuple:
    """Returns (losses, weights after step 1, weights after `steps`, seconds per step) of the
    variant's first `steps` steps, from its seed-0 weights, on batches 0, 1, ..."""
    losses, seconds = [], []
    with variant.context():
        for i in range(steps):
            start = time.perf_counter()
            losses.append(variant.step(i).item())
            seconds.append(time.perf_counter() - start)
            if i == 0:
                after_one = [p.detach().clone() for p in variant.params]
    return losses, after_one, [p.detach().clone() for p in variant.params], seconds


def compare(run: tuple, slide_run: tuple, default_run: tuple) -> dict:
    """Returns the first steps' time above the steady state (compiling, for the compiled
    variants), how far the trajectory is from the slide's, and whether it equals the slide's and
    the channels_last step's (`default_run`) to the last bit."""
    steady = statistics.median(run[3])
    return {
        "first_step_s": round(run[3][0], 3),
        "first_steps_extra_s": round(sum(t - steady for t in run[3] if t > steady), 3),
        "loss_max_diff": max(abs(a - b) for a, b in zip(run[0], slide_run[0])),
        "weights_max_diff_1": _max_diff(run[1], slide_run[1]),
        "weights_max_diff": _max_diff(run[2], slide_run[2]),
        "bitwise_vs_slide": _bitwise(run, slide_run),
        "bitwise_vs_channels_last": _bitwise(run, default_run),
        "first_loss_bitwise_vs_channels_last": run[0][0] == default_run[0][0],
    }


def _max_diff(params: list, reference: list) -> float:
    """Returns the largest absolute difference between two lists of tensors."""
    return max((p - r).abs().max().item() for p, r in zip(params, reference))


def _bitwise(run: tuple, reference: tuple) -> bool:
    """Returns whether two trajectories have the same losses and final weights, bit for bit."""
    return run[0] == reference[0] and all(map(torch.equal, run[2], reference[2]))


def block_ms(variant: Variant, first: int, steps: int) -> float:
    """Returns the mean milliseconds per step of `steps` steps from batch `first` on."""
    with variant.context():
        start = time.perf_counter()
        for i in range(first, first + steps):
            variant.step(i % 600)
        return 1e3 * (time.perf_counter() - start) / steps


def peak_extra_mb(variant: Variant, steps: int) -> float:
    """Returns the resident-set growth (MiB) over what was held before, while `steps` steps run."""
    reset_peak_memory(CPU)
    before = current_memory_mb(CPU)
    block_ms(variant, 0, steps)
    return round(peak_memory_mb(CPU) - before, 1)


def saved_mb(variant: Variant) -> float:
    """Returns the MiB of tensors autograd keeps for the backward pass of one step (a tensor
    saved twice counted once; the batch and the weights included): its activation memory."""
    saved = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.data_ptr(), t.shape] = t.numel() * t.element_size()  # the batch is a view
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), variant.context():
        variant.step(0)
    return round(sum(saved.values()) / 2**20, 2)


def interleave(variants: dict, rounds: int, steps: int) -> dict:
    """Returns {name: [ms per step, one per round]}; each round times a block of every variant,
    the order rotated by one place per round."""
    names, ms = list(variants), {name: [] for name in variants}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            ms[name].append(block_ms(variants[name], (r * steps) % 600, steps))
    return ms


def summary(times: list, ms: dict) -> dict:
    """Returns the median ms/step and the per-round ratios slide/variant (median, quartiles,
    range) and, when channels_last ran too, channels_last/variant (the same three)."""
    line = {"median_ms_per_step": round(statistics.median(times), 2)}
    for base in ("slide", "channels_last"):
        if base in ms:
            ratios = [b / t for b, t in zip(ms[base], times)]
            quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            line[f"vs_{base}"] = round(statistics.median(ratios), 3)
            line[f"vs_{base}_iqr"] = [round(quartiles[0], 3), round(quartiles[2], 3)]
            line[f"vs_{base}_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    return line


def profile(variant: Variant, steps: int) -> str:
    """Returns torch.profiler's table of the ops (and Inductor's C++ kernels, which
    cpp.enable_kernel_profile names when set before compiling) that `steps` steps spend most
    time in, after two unrecorded steps (a compiled step recompiles once under the profiler)."""
    schedule = torch.profiler.schedule(wait=0, warmup=2, active=steps, repeat=1)
    with torch.profiler.profile(schedule=schedule) as prof, variant.context():
        for i in range(steps + 2):
            variant.step(i)
            prof.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--steps", type=int, default=5, help="steps per block")
    parser.add_argument("--check", type=int, default=20, help="steps compared with the slide's")
    parser.add_argument("--profile", action="store_true", help="print where each spends its time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inductor_config.cpp.enable_kernel_profile = args.profile
    dataset = load_dataset("mnist")
    inputs, labels = dataset.normalize(dataset.train_images), dataset.train_labels
    names = ["slide", *[n for n in args.variants if n != "slide"]]
    variants = {name: VARIANTS[name][0](inputs, labels) for name in names}
    runs = {name: trajectory(v, args.check) for name, v in variants.items()}
    # the references: fresh slide and channels_last steps (either may be absent from --variants)
    references = [trajectory(build(inputs, labels), args.check) for build in (slide, channels_last)]
    checks = {name: compare(run, *references) for name, run in runs.items()}
    if args.profile:
        for name, variant in variants.items():
            print(
                f"{name}: {args.rounds * args.steps} steps\n{profile(variant, args.rounds * args.steps)}"
            )
        return
    memory = {name: {"peak_extra_mb": peak_extra_mb(v, args.steps), "saved_mb": saved_mb(v)}
              for name, v in variants.items()}  # fmt: skip
    ms = interleave(variants, args.rounds, args.steps)
    for name in names:
        line = {"variant": name, "what": VARIANTS[name][1], "threads": torch.get_num_threads()}
        line |= summary(ms[name], ms) | checks[name] | memory[name]
        line |= variants[name].notes
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
