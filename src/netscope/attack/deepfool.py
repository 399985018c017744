"""DeepFool (Moosavi-Dezfooli et al. 2016): the smallest step to the nearest linearised boundary.

At each iteration the classifier is linearised around x; for every candidate class k the distance
to the boundary with the original class is |f_k - f_0| / ‖∇f_k - ∇f_0‖, and x moves straight onto
the nearest one. The accumulated step is overshot by (1 + overshoot) to land past the boundary.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from netscope.attack.checks import check_labels, check_norm
from netscope.attack.extras import norm_histogram
from netscope.attack.result import AttackResult, batched, make_result
from netscope.attack.spec import AttackJob, AttackSpec
from netscope.errors import NetscopeError
from netscope.guard import check_fits, check_images, check_positive_int, guarded


def _class_gradients(
    f: torch.Tensor, x: torch.Tensor, block: torch.Tensor, retain: bool
) -> torch.Tensor:
    """Returns d f[:, k] / d x for the columns k in `block` (len(block)×n×C×H×W): one batched
    backward pass (vmap over the vector-Jacobian product), or a plain one for a single column."""
    if len(block) == 1:
        return torch.autograd.grad(f[:, block[0]].sum(), x, retain_graph=retain)[0][None]
    basis = torch.zeros(len(block), *f.shape, device=f.device, dtype=f.dtype)
    basis[torch.arange(len(block)), :, block] = 1
    return torch.autograd.grad(f, x, basis, retain_graph=retain, is_grads_batched=True)[0]


def nearest_boundary(
    model: nn.Module,
    x: torch.Tensor,
    origin: torch.Tensor,
    others: torch.Tensor,
    norm: str,
    rows_per_pass: int,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (logits, distance, w) at x for the nearest linearised boundary among the classes
    `others` (n×K): distance = |f_k| / ‖w_k‖ in the dual norm, with f_k = logit_k − logit_origin
    and w_k = ∇f_k. One forward pass; the K gradients come `rows_per_pass` classes per backward
    pass, and are compared in groups of about `batch_size` image gradients: only the nearest
    boundary so far is kept (memory n·(1 + group), not n·K, images)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    rows = torch.arange(len(x), device=x.device)
    f = logits.gather(1, others) - logits[rows, origin].unsqueeze(1)
    size = f.detach().abs().T  # K×n: |f_k| of each image
    best = torch.full((len(x),), float("inf"), device=x.device, dtype=x.dtype)
    w_best = torch.zeros_like(x)
    last = others.shape[1] - 1
    group = max(rows_per_pass, batch_size // len(x))
    for block in torch.arange(others.shape[1], device=x.device).split(group):
        parts = block.split(rows_per_pass)
        grads = torch.cat([_class_gradients(f, x, p, retain=int(p[-1]) < last) for p in parts])
        flat = grads.flatten(2)
        dual = flat.norm(dim=2) if norm == "l2" else flat.abs().sum(dim=2)
        nearest, k = (size[block] / (dual + 1e-8)).min(dim=0)  # per image
        nearer = nearest < best  # strictly: ties keep the first class, as one argmin over all
        best = torch.where(nearer, nearest, best)
        w_best = torch.where(nearer.view(-1, *[1] * (x.ndim - 1)), grads[k, rows], w_best)
    return logits.detach(), best, w_best


def boundary_step(distance: torch.Tensor, w: torch.Tensor, norm: str) -> torch.Tensor:
    """Returns the step onto the boundary at `distance` along w (plus 1e-4 for numerical
    safety): sign(w) scaled for L-inf, w/‖w‖₂ scaled for L2."""
    distance = distance + 1e-4
    shape = (-1,) + (1,) * (w.ndim - 1)
    if norm == "linf":
        return distance.view(shape) * w.sign()
    return (distance / (w.flatten(1).norm(dim=1) + 1e-8)).view(shape) * w


def _deepfool_batch(model, x0, labels, overshoot, max_iter, norm, candidates, rows, batch_size):
    with torch.no_grad():
        logits0 = model(x0)
    origin = logits0.argmax(1) if labels is None else labels
    # the candidates: the most likely other classes at the clean image
    ranked = logits0.scatter(1, origin.unsqueeze(1), float("-inf")).argsort(1, descending=True)
    others = ranked[:, : min(candidates, logits0.shape[1]) - 1]
    x = x0.clone()
    total = torch.zeros_like(x0)
    active = torch.arange(len(x0), device=x0.device)
    for _ in range(max_iter):
        rows_per_pass = rows or max(1, batch_size // len(active))  # default: ≤ batch_size
        logits, distance, w = nearest_boundary(
            model, x[active], origin[active], others[active], norm, rows_per_pass, batch_size
        )
        still = logits.argmax(1) == origin[active]
        active, distance, w = active[still], distance[still], w[still]
        if not len(active):
            break
        total[active] += boundary_step(distance, w, norm)
        x[active] = (x0[active] + (1 + overshoot) * total[active]).clamp(0, 1)
    return x


@guarded
def deepfool(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
    norm: str = "l2",
    candidates: int = 10,
    classes_per_backward: int | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> AttackResult:
    """Returns DeepFool's minimal perturbations (multi-class, Moosavi-Dezfooli et al. 2016).

    Leaves the class `labels` (default: the model's own prediction); images already not in that
    class stay unchanged. `candidates` limits the search to the most likely classes, the true
    one included (10, as in the authors' code: all of MNIST's). norm="linf" gives the L-inf
    variant.

    Each iteration takes one forward pass and the candidates' gradients in backward passes of
    `classes_per_backward` classes each (one vmapped vector-Jacobian product). By default: one
    class per pass on the CPU, where batching them measured slower and larger (docs/attack.md:
    the work is bound by arithmetic), and on accelerators as many as `batch_size` image
    gradients allow (all candidates in one pass when few images are left).

    The model runs in eval mode (and is left as it was found). `batch_size` bounds memory: at
    most that many images per batch, and that many image gradients per backward pass.
    """
    start = time.perf_counter()
    check_images(images, pixels=True)
    check_labels("labels", labels, len(images))
    check_norm(norm)
    check_positive_int(max_iter, "max_iter")
    check_positive_int(batch_size, "batch_size")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 2:
        raise NetscopeError(f"candidates {candidates!r}: expected an integer >= 2")
    if not overshoot >= 0:
        raise NetscopeError(f"overshoot {overshoot!r}: expected a number >= 0")
    if classes_per_backward is not None:
        check_positive_int(classes_per_backward, "classes_per_backward")
    check_fits(model, images)
    labels_dev = None if labels is None else labels.to(images.device)
    rows = (
        1 if classes_per_backward is None and images.device.type == "cpu" else classes_per_backward
    )

    def attack(x, y):
        return _deepfool_batch(model, x, y, overshoot, max_iter, norm, candidates, rows, batch_size)

    adversarial = batched(
        attack, batch_size, images, labels_dev, desc="deepfool", progress=progress
    )
    return make_result(
        f"deepfool-{norm}", model, images, adversarial, labels, None, start, batch_size
    )


# ---------------------------------------------------------------- as the pipeline runs it


@dataclass
class DeepFoolOptions:
    """DeepFool's knobs; each field is a `netscope attack --flag` of the same name."""

    overshoot: float = 0.02  # step past the boundary by this fraction (the paper's 0.02)
    max_iter: int = 50  # linearisations per image at most
    candidates: int = 10  # the most likely classes searched, the true one included


def _deepfool_job(job: AttackJob) -> AttackResult:
    return deepfool(
        job.model,
        job.images,
        job.labels,
        norm=job.norm,
        progress=job.progress,
        **asdict(job.options),
    )


SPEC = AttackSpec(
    "deepfool",
    "DeepFool",
    _deepfool_job,
    norms=("l2", "linf"),
    options=DeepFoolOptions,
    extras=norm_histogram,
    demo={"n": 500},
)
