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

from netscope.attack.checks import check_images, check_labels, check_norm, check_positive_int
from netscope.attack.extras import norm_histogram
from netscope.attack.result import AttackResult, batched, eval_mode, make_result
from netscope.attack.spec import AttackJob, AttackSpec
from netscope.errors import NetscopeError


def boundary_gradients(
    model: nn.Module, x: torch.Tensor, origin: torch.Tensor, others: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (logits, f, w) at x: f[:, k] = logit(others[:, k]) - logit(origin) (n×K) and
    w[:, k] = its gradient w.r.t. x (n×K×C×H×W); one forward, K backward passes."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    rows = torch.arange(len(x), device=x.device)
    f = logits.gather(1, others) - logits[rows, origin].unsqueeze(1)
    grads = [
        torch.autograd.grad(f[:, k].sum(), x, retain_graph=k < others.shape[1] - 1)[0]
        for k in range(others.shape[1])
    ]
    return logits.detach(), f.detach(), torch.stack(grads, dim=1)


def nearest_boundary_step(f: torch.Tensor, w: torch.Tensor, norm: str) -> torch.Tensor:
    """Returns the step onto the nearest linearised boundary (plus 1e-4 for numerical safety)."""
    flat = w.flatten(2)
    dual = flat.norm(dim=2) if norm == "l2" else flat.abs().sum(dim=2)  # dual norm of the gradient
    distance = f.abs() / (dual + 1e-8)
    best = distance.argmin(dim=1)
    rows = torch.arange(len(f), device=f.device)
    w_best, d_best = w[rows, best], distance[rows, best] + 1e-4
    shape = (-1,) + (1,) * (w_best.ndim - 1)
    if norm == "linf":
        return d_best.view(shape) * w_best.sign()
    return (d_best / (w_best.flatten(1).norm(dim=1) + 1e-8)).view(shape) * w_best


def _deepfool_batch(model, x0, labels, overshoot, max_iter, norm, candidates):
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
        logits, f, w = boundary_gradients(model, x[active], origin[active], others[active])
        still = logits.argmax(1) == origin[active]
        active, f, w = active[still], f[still], w[still]
        if not len(active):
            break
        total[active] += nearest_boundary_step(f, w, norm)
        x[active] = (x0[active] + (1 + overshoot) * total[active]).clamp(0, 1)
    return x


def deepfool(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
    norm: str = "l2",
    candidates: int = 10,
    batch_size: int = 500,
) -> AttackResult:
    """Returns DeepFool's minimal perturbations (multi-class, Moosavi-Dezfooli et al. 2016).

    Leaves the class `labels` (default: the model's own prediction); images already not in that
    class stay unchanged. `candidates` limits the search to the most likely classes (10 = all of
    MNIST's). norm="linf" gives the L-inf variant.
    """
    start = time.perf_counter()
    check_images(images)
    check_labels("labels", labels, len(images))
    check_norm(norm)
    check_positive_int(max_iter, "max_iter")
    if not isinstance(candidates, int) or candidates < 2:
        raise NetscopeError(f"candidates {candidates!r}: expected an integer >= 2")
    if not overshoot >= 0:
        raise NetscopeError(f"overshoot {overshoot!r}: expected a number >= 0")
    labels_dev = None if labels is None else labels.to(images.device)

    def attack(x, y):
        return _deepfool_batch(model, x, y, overshoot, max_iter, norm, candidates)

    with eval_mode(model):
        adversarial = batched(attack, batch_size, images, labels_dev)
    return make_result(f"deepfool-{norm}", model, images, adversarial, labels, None, start)


# ---------------------------------------------------------------- as the pipeline runs it


@dataclass
class DeepFoolOptions:
    """DeepFool's knobs; each field is a `netscope attack --flag` of the same name."""

    overshoot: float = 0.02  # step past the boundary by this fraction (the paper's 0.02)
    max_iter: int = 50  # linearisations per image at most
    candidates: int = 10  # the most likely classes searched (10 = all of MNIST's)


def _deepfool_job(job: AttackJob) -> AttackResult:
    return deepfool(job.model, job.images, job.labels, norm=job.norm, **asdict(job.options))


SPEC = AttackSpec(
    "deepfool",
    "DeepFool",
    _deepfool_job,
    norms=("l2", "linf"),
    options=DeepFoolOptions,
    extras=norm_histogram,
    demo={"n": 500},
)
