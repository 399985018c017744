"""AttackResult: adversarial images, what the model says about them, and the lecture's metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from netscope.display import Shows
from netscope.progress import progress_bar


@dataclass
class AttackResult(Shows):
    """What an attack produced for a batch of N images (all tensors on the images' device)."""

    method: str
    images: torch.Tensor  # N×C×H×W pixels in [0, 1], the clean inputs
    adversarial: torch.Tensor  # N×C×H×W pixels in [0, 1]
    labels: torch.Tensor  # int64 N: true classes (or the clean predictions when none were given)
    original_pred: torch.Tensor  # int64 N
    original_prob: torch.Tensor  # float N: softmax probability of original_pred
    adversarial_pred: torch.Tensor  # int64 N
    adversarial_prob: torch.Tensor  # float N: softmax probability of adversarial_pred
    success: torch.Tensor  # bool N: misclassified (untargeted) or classified as the target
    seconds: float
    targets: torch.Tensor | None = None

    def __repr__(self) -> str:
        m = self.metrics()
        if not m["n_attacked"]:
            found = "no image was classified correctly"
        else:
            fooled = round(m["success_rate"] * m["n_attacked"])
            found = f"fooled {fooled} of {m['n_attacked']} correctly classified"
            if fooled:
                found += f", median ‖r‖₂ {m['l2_median']:.2f}, ‖r‖∞ {m['linf_median']:.2f}"
        return f"AttackResult({self.method}, {m['n']} images: {found}; {self.seconds:.2g} s)"

    @property
    def perturbation(self) -> torch.Tensor:
        """Returns adversarial - images."""
        return self.adversarial - self.images

    def norms(self) -> dict[str, torch.Tensor]:
        """Returns the per-image L2 and L-inf norms of the perturbation and ‖r‖₂/‖x‖₂."""
        flat = self.perturbation.flatten(1)
        l2 = flat.norm(dim=1)
        return {
            "l2": l2,
            "linf": flat.abs().amax(dim=1),
            "rho": l2 / self.images.flatten(1).norm(dim=1).clamp_min(1e-12),
        }

    def metrics(self) -> dict:
        """Returns success rate and perturbation sizes as plain numbers.

        Only images the model classified correctly count (an attack on a mistake proves nothing);
        the norms and ρ_adv = mean ‖r‖₂/‖x‖₂ (Moosavi-Dezfooli et al. 2016) are taken over the
        images the attack fooled. `s_per_image` is the attack's wall time over all N images.
        """
        attacked = self.original_pred == self.labels
        fooled = self.success & attacked
        norms = {k: v[fooled].double() for k, v in self.norms().items()}
        n = len(self.images)

        def stat(values: torch.Tensor, how: str) -> float | None:
            if not len(values):
                return None
            return float(values.quantile(0.5) if how == "median" else values.mean())

        return {
            "n": n,
            "n_attacked": int(attacked.sum()),
            "clean_accuracy": float(attacked.float().mean()) if n else None,
            "success_rate": float(fooled.sum() / attacked.sum()) if attacked.any() else None,
            "l2_mean": stat(norms["l2"], "mean"),
            "l2_median": stat(norms["l2"], "median"),
            "linf_mean": stat(norms["linf"], "mean"),
            "linf_median": stat(norms["linf"], "median"),
            "rho_adv": stat(norms["rho"], "mean"),
            "seconds": self.seconds,
            "s_per_image": self.seconds / n if n else None,
        }


# images per forward pass where only predictions are needed (no graph is kept)
CLASSIFY_BATCH = 256


@torch.no_grad()
def classify(
    model: nn.Module, images: torch.Tensor, batch_size: int = CLASSIFY_BATCH
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (predicted class, its softmax probability) for pixel images, in batches."""
    preds, probs = [], []
    for start in range(0, len(images), batch_size):
        prob, pred = model(images[start : start + batch_size]).softmax(1).max(1)
        preds.append(pred)
        probs.append(prob)
    if not preds:
        empty = images.new_zeros(0)
        return empty.long(), empty
    return torch.cat(preds), torch.cat(probs)


def is_success(
    pred: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
) -> torch.Tensor:
    """Returns True where the prediction is the target, or (untargeted) differs from the label."""
    return pred == targets if targets is not None else pred != labels


def batched(
    attack: Callable[..., torch.Tensor],
    batch_size: int,
    *tensors: torch.Tensor | None,
    desc: str = "attack",
    progress: bool = False,
) -> torch.Tensor:
    """Returns attack(*batch) over consecutive batches of the tensors, concatenated (None passes);
    a progress bar counts the batches when `progress`."""
    n = len(tensors[0])
    starts = range(0, n, batch_size)
    parts = [
        attack(*(t[s : s + batch_size] if t is not None else None for t in tensors))
        for s in progress_bar(starts, desc=desc, disable=not progress)
    ]
    return torch.cat(parts) if parts else tensors[0].clone()


def make_result(
    method: str,
    model: nn.Module,
    images: torch.Tensor,
    adversarial: torch.Tensor,
    labels: torch.Tensor | None,
    targets: torch.Tensor | None,
    start: float,
    batch_size: int = CLASSIFY_BATCH,
) -> AttackResult:
    """Returns the AttackResult for finished adversarial images (timed from `start`),
    classifying them `batch_size` at a time."""
    original_pred, original_prob = classify(model, images, batch_size)
    adversarial_pred, adversarial_prob = classify(model, adversarial, batch_size)
    labels = original_pred if labels is None else labels.to(images.device)
    targets = None if targets is None else targets.to(images.device)
    return AttackResult(
        method=method,
        images=images,
        adversarial=adversarial.detach(),
        labels=labels,
        original_pred=original_pred,
        original_prob=original_prob,
        adversarial_pred=adversarial_pred,
        adversarial_prob=adversarial_prob,
        success=is_success(adversarial_pred, labels, targets),
        seconds=time.perf_counter() - start,
        targets=targets,
    )
