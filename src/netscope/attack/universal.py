"""Universal adversarial perturbations (Moosavi-Dezfooli et al. 2017): one image-agnostic v that
changes the prediction of most images, built by adding DeepFool steps and projecting onto ‖v‖ ≤ xi.

The paper visits images one at a time: v ← P(v + Δvᵢ), Δvᵢ the DeepFool step that sends xᵢ + v
across its boundary. Here DeepFool runs on a mini-batch's not-yet-fooled images at once (from the
same v), then v takes their steps one after another, projected after each, as the paper's loop
does; with batch_size=1 it is the paper's loop exactly. An earlier version moved v by the mean of
the batch's steps: their directions partly cancel, and on few images v hardly moved (lecture CNN,
200 digits, xi 4, 5 passes, batches of 8: held-out fooling rate 13.5 % with the mean, 22.6 % now,
the same time; a ResNet-style model on 8 images: 0 % then, 12.5 % now; bench/RESULTS.md §14).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from netscope.attack.checks import check_eps, check_norm
from netscope.attack.deepfool import deepfool
from netscope.attack.gradient import project
from netscope.attack.plots import pick_examples, pyplot, show
from netscope.attack.result import AttackResult, classify, make_result
from netscope.attack.spec import AttackJob, AttackSpec
from netscope.display import Shows, figure_of
from netscope.errors import NetscopeError
from netscope.guard import check_fits, check_images, check_positive_int, guarded
from netscope.png import save_png
from netscope.progress import progress_bar
from netscope.record import Figure


@dataclass
class UniversalResult(Shows):
    """One perturbation for all images, and how often it changes the model's decision."""

    perturbation: torch.Tensor  # C×H×W, ‖v‖ ≤ xi in `norm`
    norm: str
    xi: float
    fooling_rate: float  # on the images it was built from: share with k(x + v) ≠ k(x)
    history: list[float] = field(default_factory=list)  # fooling rate after each pass (the
    # returned perturbation is the one after the best pass)
    seconds: float = 0.0
    n_images: int = 0  # the images it was built on

    def __repr__(self) -> str:
        size = f"‖v‖{'₂' if self.norm == 'l2' else '∞'} ≤ {self.xi:g}"
        return (
            f"UniversalResult({size}: changes {100 * self.fooling_rate:.1f} % of the "
            f"{self.n_images} images it was built on; {len(self.history)} passes, "
            f"{self.seconds:.2g} s)"
        )


@guarded
def fooling_rate(model: nn.Module, images: torch.Tensor, perturbation: torch.Tensor) -> float:
    """Returns the share of images whose predicted class changes when v is added (and clipped).
    The model runs in eval mode (and is left as it was found)."""
    check_images(images, pixels=True)
    check_fits(model, images)
    return _fooling_rate(model, images, perturbation)


def _fooling_rate(model: nn.Module, images: torch.Tensor, perturbation: torch.Tensor) -> float:
    clean, _ = classify(model, images)
    moved, _ = classify(model, (images + perturbation.to(images.device)).clamp(0, 1))
    return float((clean != moved).float().mean())


@guarded
def universal_perturbation(
    model: nn.Module,
    images: torch.Tensor,
    *,
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
    (or the best reached in `max_passes` passes over them, in a seeded random order).

    Each visit runs DeepFool on `batch_size` images (which bounds memory). The model runs in
    eval mode (and is left as it was found).
    """
    start = time.perf_counter()
    check_images(images, pixels=True)
    check_eps(xi, "xi")
    check_norm(norm)
    check_positive_int(max_passes, "max_passes")
    check_positive_int(batch_size, "batch_size")
    if not 0 < target_rate <= 1:
        raise NetscopeError(f"target_rate {target_rate!r}: expected a fraction in (0, 1]")
    check_fits(model, images)
    generator = torch.Generator().manual_seed(seed)
    clean, _ = classify(model, images)
    v = best = torch.zeros_like(images[0])
    history: list[float] = []
    for _ in progress_bar(
        range(max_passes), desc="universal", disable=not progress, file=sys.stderr
    ):
        order = torch.randperm(len(images), generator=generator).to(images.device)
        for index in order.split(batch_size):
            v = _visit(model, images[index], clean[index], v, xi, norm, overshoot, max_iter)
        history.append(_fooling_rate(model, images, v))
        if history[-1] >= max(history):
            best = v  # the rate can dip after a pass; keep the best perturbation seen
        if history[-1] >= target_rate:
            break
    seconds = time.perf_counter() - start
    return UniversalResult(best, norm, xi, max(history), history, seconds, len(images))


def _visit(model, images, clean, v, xi, norm, overshoot, max_iter) -> torch.Tensor:
    moved = (images + v).clamp(0, 1)
    still, _ = classify(model, moved)
    keep = still == clean
    if not keep.any():
        return v
    step = deepfool(
        model, moved[keep], clean[keep], overshoot=overshoot, max_iter=max_iter, norm=norm
    )
    done = step.success
    if not done.any():
        return v
    for step_of_one in step.perturbation[done]:
        v = project((v + step_of_one)[None], xi, norm)[0]
    return v


@guarded
def apply_universal(
    model: nn.Module,
    images: torch.Tensor,
    perturbation: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> AttackResult:
    """Returns the AttackResult of adding one perturbation to every image (clipped to [0, 1]).
    The model runs in eval mode (and is left as it was found)."""
    start = time.perf_counter()
    check_images(images, pixels=True)
    check_fits(model, images)
    adversarial = (images + perturbation.to(images.device)).clamp(0, 1)
    return make_result("universal", model, images, adversarial, labels, None, start)


def plot_universal(
    universal: UniversalResult,
    result: AttackResult | None,
    classes: list[str],
    path: Path,
    k: int = 4,
) -> Path:
    """Writes the universal perturbation (diverging colours) and k images of `result` with it
    added (none without a result)."""
    plt = pyplot()
    k = k if result is not None else 0
    width = 2.8 * (k + 1) + 0.8 if k else 5.0
    fig, axes = plt.subplots(1, k + 1, figsize=(width, 3.4 + (not k)), dpi=120, squeeze=False)
    axes = axes[0]
    v = universal.perturbation.detach().float().cpu()
    limit = float(v.abs().max()) or 1.0
    image = axes[0].imshow(v.mean(0).numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[0].set_title(f"v, ‖v‖{'₂' if universal.norm == 'l2' else '∞'} = {universal.xi:g}")
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    fig.colorbar(image, ax=axes[0], fraction=0.046, pad=0.04, label="pixel change")
    for ax, i in zip(axes[1:], pick_examples(result, k) if k else []):
        fooled = bool(result.adversarial_pred[i] != result.original_pred[i])
        title = (
            f"“{classes[int(result.original_pred[i])]}” → "
            f"“{classes[int(result.adversarial_pred[i])]}” {100 * float(result.adversarial_prob[i]):.0f} %"
        )
        show(ax, result.adversarial[i], title, "firebrick" if fooled else "black")
    fig.suptitle(
        f"One perturbation for all images:{' ' if k else chr(10)}changes "
        f"{100 * universal.fooling_rate:.0f} % of the images it was built on",
        fontsize=13,
    )
    return save_png(fig, path)


@figure_of(UniversalResult)
def universal_figure(universal: UniversalResult, path: Path) -> Path:
    """Returns `path` after drawing the perturbation there (what Jupyter shows)."""
    return plot_universal(universal, None, [], path)


# ---------------------------------------------------------------- as the pipeline runs it

# the universal perturbation's default budget ‖v‖ per norm
DEFAULT_XI = {"linf": 0.3, "l2": 5.0}


@dataclass
class UniversalOptions:
    """The universal perturbation's knobs; each field is a `netscope attack --flag`."""

    target_rate: float = 0.8  # stop once this share of its images is fooled
    max_passes: int = 5  # passes over its images
    overshoot: float = 0.02  # of each DeepFool step
    max_iter: int = 10  # DeepFool iterations per visit
    batch_size: int = 8  # images per visit


@dataclass(repr=False)
class UniversalAttack(AttackResult):
    """The result of adding one universal perturbation to every test image, and how it was made."""

    universal: UniversalResult | None = None


def _universal_job(job: AttackJob) -> UniversalAttack:
    """Builds v on the run's first `n` training images and applies it to the test images."""
    universal = universal_perturbation(
        job.model,
        job.train_images(),
        xi=job.eps,
        norm=job.norm,
        seed=job.seed,
        progress=job.progress,
        **asdict(job.options),
    )
    start = time.perf_counter()
    result = apply_universal(job.model, job.images, universal.perturbation, job.labels)
    result.seconds = universal.seconds + (time.perf_counter() - start)
    return UniversalAttack(**vars(result), universal=universal)


def _universal_extras(job: AttackJob, result: UniversalAttack) -> tuple[dict, list[Figure]]:
    universal = result.universal
    heldout = float((result.adversarial_pred != result.original_pred).float().mean())
    path = job.out / f"{job.name}.png"
    plot_universal(universal, result, job.classes, path)
    numbers = {
        "fooling_rate_train": universal.fooling_rate,
        "fooling_rate_heldout": heldout,
        "passes": len(universal.history),
        "history": universal.history,
    }
    caption = (
        f"One perturbation v built on {universal.n_images} training images; it changes the "
        f"prediction of {100 * heldout:.0f} % of {len(result.images)} held-out test images."
    )
    return numbers, [Figure(path, "Universal perturbation", caption)]


SPEC = AttackSpec(
    "universal",
    "Universal perturbation",
    _universal_job,
    norms=("l2", "linf"),
    options=UniversalOptions,
    budget=DEFAULT_XI,
    extras=_universal_extras,
    per_image=False,
)
