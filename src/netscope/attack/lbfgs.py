"""Box-constrained L-BFGS (Szegedy et al. 2014, "Intriguing properties of neural networks").

For a target class l, minimise c·‖r‖₂² + loss(x + r, l) subject to x + r in the pixel box [0, 1],
with L-BFGS-B, and search over c for the largest weight on ‖r‖ (the smallest r) whose minimiser is
still classified as l. The squared norm keeps the objective smooth at r = 0, where L-BFGS starts.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import fmin_l_bfgs_b
from torch import nn

from netscope.attack.checks import check_labels, check_targets
from netscope.attack.extras import norm_histogram
from netscope.attack.result import AttackResult, batched, make_result
from netscope.attack.spec import AttackJob, AttackSpec
from netscope.errors import NetscopeError
from netscope.guard import check_fits, check_images, check_positive_int, guarded
from netscope.progress import progress_bar


def runner_up(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Returns the most likely class other than the label (the default target)."""
    with torch.no_grad():
        logits = model(images)
    return logits.scatter(1, labels.unsqueeze(1), float("-inf")).argmax(1)


def minimise_objective(
    model: nn.Module,
    x0: torch.Tensor,
    targets: torch.Tensor,
    c: torch.Tensor,
    max_iter: int,
) -> torch.Tensor:
    """Returns x0 + r with r minimising Σᵢ cᵢ‖rᵢ‖² + CE(x0ᵢ + rᵢ, targetᵢ) inside the box (L-BFGS-B).
    The images' objectives are independent, so one L-BFGS-B run over the whole batch solves all."""
    shape, device = x0.shape, x0.device
    x0_flat = x0.detach().flatten().double().cpu().numpy()
    weight = c.view(-1, *([1] * (x0.ndim - 1)))

    def value_and_grad(r_flat: np.ndarray) -> tuple[float, np.ndarray]:
        r = torch.from_numpy(r_flat).to(device=device, dtype=x0.dtype).view(shape)
        r.requires_grad_(True)
        logits = model(x0 + r)
        loss = (weight * r * r).sum() + F.cross_entropy(logits, targets, reduction="sum")
        (grad,) = torch.autograd.grad(loss, r)
        return float(loss.detach()), grad.flatten().double().cpu().numpy()

    bounds = np.stack([-x0_flat, 1.0 - x0_flat], axis=1)
    r_best, _, _ = fmin_l_bfgs_b(
        value_and_grad, np.zeros_like(x0_flat), bounds=bounds, maxiter=max_iter, factr=10.0
    )
    r = torch.from_numpy(r_best).to(device=device, dtype=x0.dtype).view(shape)
    return (x0 + r).clamp(0, 1)


def _lbfgs_batch(model, x0, targets, c_init, search_steps, max_iter, progress):
    n = len(x0)
    c = torch.full((n,), c_init, device=x0.device, dtype=x0.dtype)
    c_ok = torch.zeros_like(c)  # largest c seen to succeed (0: none yet)
    c_fail = torch.full_like(c, math.inf)  # smallest c seen to fail
    best = x0.clone()
    best_norm = torch.full_like(c, math.inf)
    for _ in progress_bar(
        range(search_steps), desc="L-BFGS line search", disable=not progress, file=sys.stderr
    ):
        x = minimise_objective(model, x0, targets, c, max_iter)
        with torch.no_grad():
            hit = model(x).argmax(1) == targets
        norm = (x - x0).flatten(1).norm(dim=1)
        better = hit & (norm < best_norm)
        best[better], best_norm[better] = x[better], norm[better]
        c_ok = torch.where(hit, torch.maximum(c_ok, c), c_ok)
        c_fail = torch.where(hit, c_fail, torch.minimum(c_fail, c))
        bracketed = (c_ok > 0) & torch.isfinite(c_fail)
        c = torch.where(bracketed, (c_ok * c_fail).sqrt(), torch.where(hit, c * 10, c / 10))
    return best


@guarded
def lbfgs(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    targets: torch.Tensor | None = None,
    c_init: float = 1.0,
    search_steps: int = 10,
    max_iter: int = 50,
    batch_size: int = 256,
    progress: bool = False,
) -> AttackResult:
    """Returns the box-constrained L-BFGS attack's result (Szegedy et al. 2014).

    Aims at `targets` (default: each image's runner-up class). `search_steps` rounds of the
    line search on c (×10 until bracketed, then bisection in log-space), each an L-BFGS-B solve
    of at most `max_iter` iterations; images never solved keep their clean pixels. One L-BFGS-B run
    serves a batch of `batch_size` images (which bounds memory), so large batches are much faster
    per image than small ones. The model runs in eval mode (and is left as it was found).
    """
    start = time.perf_counter()
    check_images(images, pixels=True)
    check_labels("labels", labels, len(images))
    check_positive_int(search_steps, "search_steps")
    check_positive_int(max_iter, "max_iter")
    check_positive_int(batch_size, "batch_size")
    if not c_init > 0:
        raise NetscopeError(f"c_init {c_init!r}: expected a number > 0")
    labels_dev = labels.to(images.device)
    check_targets(targets, labels_dev, check_fits(model, images))
    if targets is None:
        chosen = batched(lambda x, y: runner_up(model, x, y), batch_size, images, labels_dev)
    else:
        chosen = targets.to(images.device)

    def attack(x, t):
        return _lbfgs_batch(model, x, t, c_init, search_steps, max_iter, progress)

    adversarial = batched(attack, batch_size, images, chosen, desc="L-BFGS", progress=progress)
    return make_result("lbfgs", model, images, adversarial, labels, chosen, start, batch_size)


# ---------------------------------------------------------------- as the pipeline runs it


@dataclass
class LBFGSOptions:
    """L-BFGS's knobs; each field is a `netscope attack --flag` of the same name."""

    c_init: float = 1.0  # first weight on ‖r‖² in the line search
    search_steps: int = 10  # rounds of the line search on c
    max_iter: int = 50  # L-BFGS-B iterations per round


def _lbfgs_job(job: AttackJob) -> AttackResult:
    return lbfgs(
        job.model,
        job.images,
        job.labels,
        targets=job.targets,
        progress=job.progress,
        **asdict(job.options),
    )


SPEC = AttackSpec(
    "lbfgs",
    "L-BFGS",
    _lbfgs_job,
    norms=("l2",),
    options=LBFGSOptions,
    targeted=True,
    extras=norm_histogram,
)
