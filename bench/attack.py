"""Our DeepFool / FGSM / PGD against Foolbox 3.3.4 on the same model and the same MNIST test images.

    python bench/attack.py [--run RUN] [--n 1000] [--device auto]

Prints one JSON line per variant: success rate (over the correctly classified images), median L2
and L-inf of the perturbations that fool, ρ_adv, seconds, images per second, peak memory (GPU
allocated or CPU RSS, bench/memory.py) and the speed ratio (Foolbox seconds / our seconds; > 1
means ours is faster). Both sides' adversarial images are judged by the same code
(netscope.attack.result.make_result), so only the attacks differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import foolbox
import torch
from memory import timed

from netscope import load_run
from netscope.attack import deepfool, fgsm, pgd
from netscope.attack.pipeline import PAPER_RHO_ADV_LENET_MNIST
from netscope.attack.result import make_result
from netscope.device import resolve_device


def summary(result, seconds: float, peak_mb: float) -> dict:
    """Returns the numbers we compare for one attack's result."""
    metrics = result.metrics()
    keys = ["success_rate", "l2_median", "linf_median", "rho_adv"]
    return {k: metrics[k] for k in keys} | {
        "seconds": seconds,
        "images_per_s": len(result.images) / seconds,
        "peak_mb": round(peak_mb, 1),
    }


def variants(eps_linf: float, eps_l2: float, steps: int) -> dict:
    """Returns name -> (our call, Foolbox attack, Foolbox epsilons)."""
    fb = foolbox.attacks
    return {
        "deepfool_l2": (
            lambda m, x, y: deepfool(m, x, y, overshoot=0.02, max_iter=50),
            fb.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02),
            None,
        ),
        "fgsm_linf": (lambda m, x, y: fgsm(m, x, y, eps_linf), fb.FGSM(), eps_linf),
        "pgd_linf": (
            lambda m, x, y: pgd(m, x, y, eps_linf, norm="linf", steps=steps),
            fb.LinfPGD(steps=steps, abs_stepsize=2.5 * eps_linf / steps, random_start=True),
            eps_linf,
        ),
        "pgd_l2": (
            lambda m, x, y: pgd(m, x, y, eps_l2, norm="l2", steps=steps),
            fb.L2PGD(steps=steps, abs_stepsize=2.5 * eps_l2 / steps, random_start=True),
            eps_l2,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", default=os.environ.get("NETSCOPE_TEST_RUN", "/tmp/netscope-lecture-run")
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eps-linf", type=float, default=0.1)
    parser.add_argument("--eps-l2", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = resolve_device(args.device)
    run = load_run(args.run)
    model = run.pixel_model().to(device)
    dataset = run.load_dataset()
    images = (dataset.test_images[: args.n].float() / 255).to(device)
    labels = dataset.test_labels[: args.n].to(device)
    fmodel = foolbox.PyTorchModel(model, bounds=(0, 1), device=device)
    context = {
        "n": len(images),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "foolbox": foolbox.__version__,
    }
    for name, (ours, theirs, epsilons) in variants(args.eps_linf, args.eps_l2, args.steps).items():
        our_result, our_s, our_mb = timed(ours, device, model, images, labels)
        (_, clipped, _), their_s, their_mb = timed(
            theirs, device, fmodel, images, labels, epsilons=epsilons
        )
        their_result = make_result(name, model, images, clipped, labels, None, time.perf_counter())
        line = {"variant": name, "eps": epsilons} | context
        line |= {
            "ours": summary(our_result, our_s, our_mb),
            "foolbox": summary(their_result, their_s, their_mb),
        }
        line["speed_ratio"] = their_s / our_s
        if name == "deepfool_l2":
            line["l2_median_ratio"] = line["ours"]["l2_median"] / line["foolbox"]["l2_median"]
            line["paper_rho_adv_lenet_mnist"] = PAPER_RHO_ADV_LENET_MNIST
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
