"""Universal adversarial perturbations (Moosavi-Dezfooli et al. 2017): one image-agnostic v that
changes the prediction of most images, built by adding DeepFool steps and projecting onto ‖v‖ ≤ xi.

The paper visits images one at a time; here each visit is a mini-batch: DeepFool runs on the
batch's not-yet-fooled images at once and v moves by the mean of their steps before the projection
(measured on MNIST: steadier and stronger than their sum, which overshoots and oscillates).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from netscope.attack.checks import check_eps, check_images, check_norm, check_positive_int
from netscope.attack.deepfool import deepfool
from netscope.attack.gradient import project
from netscope.attack.result import AttackResult, classify, eval_mode, make_result
from netscope.errors import NetscopeError


@dataclass
class UniversalResult:
    """One perturbation for all images, and how often it changes the model's decision."""

    perturbation: torch.Tensor  # C×H×W, ‖v‖ ≤ xi in `norm`
    norm: str
    xi: float
    fooling_rate: float  # on the images it was built from: share with k(x + v) ≠ k(x)
    history: list[float] = field(default_factory=list)  # fooling rate after each pass (the
    # returned perturbation is the one after the best pass)
    seconds: float = 0.0


def fooling_rate(model: nn.Module, images: torch.Tensor, perturbation: torch.Tensor) -> float:
    """Returns the share of images whose predicted class changes when v is added (and clipped)."""
    with eval_mode(model):
        clean, _ = classify(model, images)
        moved, _ = classify(model, (images + perturbation).clamp(0, 1))
    return float((clean != moved).float().mean()) if len(images) else 0.0


def universal_perturbation(
    model: nn.Module,
    images: torch.Tensor,
    xi: float = 4.0,
    norm: str = "l2",
    target_rate: float = 0.8,
    max_passes: int = 5,
    overshoot: float = 0.02,
    max_iter: int = 10,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = False,
) -> UniversalResult:
    """Returns a universal perturbation of size ≤ xi that fools `target_rate` of `images`
    (or the best reached in `max_passes` passes over them, in a seeded random order)."""
    start = time.perf_counter()
    check_images(images)
    check_eps(xi, "xi")
    check_norm(norm)
    check_positive_int(max_passes, "max_passes")
    check_positive_int(batch_size, "batch_size")
    if not 0 < target_rate <= 1:
        raise NetscopeError(f"target_rate {target_rate!r}: expected a fraction in (0, 1]")
    generator = torch.Generator().manual_seed(seed)
    with eval_mode(model):
        clean, _ = classify(model, images)
    v = best = torch.zeros_like(images[0])
    history: list[float] = []
    for _ in tqdm(range(max_passes), desc="universal", disable=not progress, file=sys.stderr):
        order = torch.randperm(len(images), generator=generator).to(images.device)
        for index in order.split(batch_size):
            v = _visit(model, images[index], clean[index], v, xi, norm, overshoot, max_iter)
        history.append(fooling_rate(model, images, v))
        if history[-1] >= max(history):
            best = v  # the rate can dip after a pass; keep the best perturbation seen
        if history[-1] >= target_rate:
            break
    seconds = time.perf_counter() - start
    return UniversalResult(best, norm, xi, max(history), history, seconds)


def _visit(model, images, clean, v, xi, norm, overshoot, max_iter) -> torch.Tensor:
    moved = (images + v).clamp(0, 1)
    with eval_mode(model):
        still, _ = classify(model, moved)
    keep = still == clean
    if not keep.any():
        return v
    step = deepfool(model, moved[keep], clean[keep], overshoot, max_iter, norm)
    done = step.success
    if not done.any():
        return v
    return project(v + step.perturbation[done].mean(0, keepdim=True), xi, norm)[0]


def apply_universal(
    model: nn.Module,
    images: torch.Tensor,
    perturbation: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> AttackResult:
    """Returns the AttackResult of adding one perturbation to every image (clipped to [0, 1])."""
    start = time.perf_counter()
    check_images(images)
    adversarial = (images + perturbation.to(images.device)).clamp(0, 1)
    return make_result("universal", model, images, adversarial, labels, None, start)
