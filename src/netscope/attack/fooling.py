"""Fooling images (Nguyen et al. 2015): images nobody recognises that the network classifies with
≥ 99 % confidence, grown from uniform noise by gradient ascent on log p(class | x) or by a simple
evolutionary search that sees only the output probabilities (as the paper's direct encoding)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from netscope.attack.plots import pyplot, show
from netscope.display import Shows, class_names, figure_of
from netscope.errors import NetscopeError
from netscope.guard import check_fits, check_positive_int, guarded, model_device
from netscope.png import save_png
from netscope.progress import progress_bar

METHODS = ("gradient", "evolution")


@dataclass
class FoolingResult(Shows):
    """One image per requested class and the model's confidence that it shows that class."""

    method: str
    images: torch.Tensor  # K×C×H×W pixels in [0, 1]
    classes: torch.Tensor  # int64 K: the class each image was grown for
    confidence: torch.Tensor  # float K: softmax probability of that class
    predicted: torch.Tensor  # int64 K: the model's arg-max class
    steps: int  # gradient steps or generations used (the slowest image)
    seconds: float

    def __repr__(self) -> str:
        sure = int(self.success().sum())
        return (
            f"FoolingResult({self.method}, {len(self.images)} images: {sure} classified as their "
            f"class with ≥ 99 % confidence; {self.steps} steps, {self.seconds:.2g} s)"
        )

    def success(self, threshold: float = 0.99) -> torch.Tensor:
        """Returns True where the image is classified as its class with ≥ threshold confidence."""
        return (self.predicted == self.classes) & (self.confidence >= threshold)


def _goal(confidence: float, device: torch.device) -> torch.Tensor:
    # a hair above the threshold, so a re-evaluation on another device still clears it
    return torch.log(torch.tensor(confidence, device=device)) + 1e-3


def _log_prob(model: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    return model(images).log_softmax(1).gather(1, classes.unsqueeze(1)).squeeze(1)


def gradient_ascent(
    model, noise, classes, confidence, steps, lr, desc=None
) -> tuple[torch.Tensor, int]:
    """Returns (images, steps taken): Adam ascent on log p(class | x), each image kept as it is
    once it reaches the confidence (so it does not depend on the other images), pixels clipped
    to [0, 1] after every step (a progress bar with `desc`)."""
    x = noise.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    goal = _goal(confidence, x.device)
    taken = 0
    for taken in progress_bar(range(1, steps + 1), desc=desc, disable=desc is None):
        log_p = _log_prob(model, x, classes)
        open_ = (log_p.detach() < goal).float()
        if not open_.any():
            taken -= 1
            break
        reached = ~open_.bool()
        kept = x.detach()[reached].clone()
        optimizer.zero_grad(set_to_none=True)
        (-(log_p * open_).sum()).backward()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
            x[reached] = kept  # Adam's momentum would move it on: an image is done once reached
    return x.detach(), taken


@torch.no_grad()
def evolve(
    model, noise, classes, confidence, steps, population, mutation_rate, sigma, generator, desc=None
) -> tuple[torch.Tensor, int]:
    """Returns (images, generations): a (1 + λ) evolution strategy per class. Each generation
    mutates a share of the parent's pixels by Gaussian noise and keeps the best child if it raises
    the class's probability (the model is only queried, never differentiated)."""
    parent, (k, shape) = noise.clone(), (len(noise), noise.shape[1:])
    fitness = _log_prob(model, parent, classes)
    goal = _goal(confidence, noise.device)
    generation = 0
    for generation in progress_bar(range(1, steps + 1), desc=desc, disable=desc is None):
        if (fitness >= goal).all():
            generation -= 1
            break
        children = parent.repeat_interleave(population, 0)
        mask = torch.rand(children.shape, device=noise.device, generator=generator) < mutation_rate
        change = torch.randn(children.shape, device=noise.device, generator=generator) * sigma
        children = (children + mask * change).clamp(0, 1)
        child_fit = _log_prob(model, children, classes.repeat_interleave(population)).view(k, -1)
        best_fit, best = child_fit.max(1)
        better = best_fit > fitness
        chosen = children.view(k, population, *shape)[torch.arange(k, device=noise.device), best]
        parent[better], fitness[better] = chosen[better], best_fit[better]
    return parent, generation


@guarded
def fooling_images(
    model: nn.Module,
    image_shape: tuple[int, int, int],
    classes: list[int] | torch.Tensor | None = None,
    *,
    method: str = "gradient",
    confidence: float = 0.99,
    steps: int = 1000,
    lr: float = 0.01,
    population: int = 32,
    mutation_rate: float = 0.05,
    sigma: float = 0.3,
    seed: int = 0,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> FoolingResult:
    """Returns one fooling image per class (default: every class of the model) grown from
    uniform noise until the model gives it ≥ `confidence` (or `steps` run out).

    Classes are grown `batch_size` at a time (the evolution's children: `batch_size` ×
    `population` images per forward pass), which bounds memory; each class's noise comes from
    its own seed, so the gradient method's images do not depend on the batch size. The model
    runs in eval mode (and is left as it was found).
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise NetscopeError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    if not 0 < confidence < 1:
        raise NetscopeError(f"confidence {confidence!r}: expected a probability in (0, 1)")
    check_positive_int(steps, "steps")
    check_positive_int(population, "population")
    check_positive_int(batch_size, "batch_size")
    device = torch.device(device) if device else model_device(model)
    classes = _classes(
        classes, check_fits(model, torch.zeros(1, *image_shape, device=device)), device
    )
    chunks = classes.split(batch_size)
    images, taken = torch.empty(len(classes), *image_shape, device=device), 0
    for k, (chunk, grown) in enumerate(zip(chunks, images.split(batch_size))):
        noise = torch.cat([_noise(image_shape, seed, int(c), device) for c in chunk])
        desc = f"fooling ({method}) {k + 1}/{len(chunks)}" if progress else None
        if method == "gradient":
            found, used = gradient_ascent(model, noise, chunk, confidence, steps, lr, desc)
        else:
            generator = torch.Generator(device=device).manual_seed(seed)
            found, used = evolve(
                model,
                noise,
                chunk,
                confidence,
                steps,
                population,
                mutation_rate,
                sigma,
                generator,
                desc,
            )
        grown.copy_(found)
        taken = max(taken, used)
    with torch.no_grad():
        prob = torch.cat([model(x).softmax(1) for x in images.split(batch_size)])
    return FoolingResult(
        method=method,
        images=images,
        classes=classes,
        confidence=prob.gather(1, classes.unsqueeze(1)).squeeze(1),
        predicted=prob.argmax(1),
        steps=taken,
        seconds=time.perf_counter() - start,
    )


def _noise(image_shape, seed: int, image_class: int, device) -> torch.Tensor:
    """Returns the uniform noise a class's fooling image starts from (its own seed)."""
    generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + image_class)
    return torch.rand(1, *image_shape, device=device, generator=generator)


def _classes(classes, num_classes: int, device: torch.device) -> torch.Tensor:
    if classes is None:
        return torch.arange(num_classes, device=device)
    classes = torch.as_tensor(classes, device=device).long().flatten()
    if len(classes) == 0 or classes.min() < 0 or classes.max() >= num_classes:
        raise NetscopeError(f"classes {classes.tolist()}: expected indices in 0..{num_classes - 1}")
    return classes


def plot_fooling_grid(fooling: FoolingResult, classes: list[str], path: Path) -> Path:
    """Writes the fooling images in a grid, each titled with its class and the model's confidence."""
    plt = pyplot()
    n = len(fooling.images)
    cols = min(5, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.5 * rows + 0.6), dpi=120)
    axes = np.atleast_1d(axes).flatten()
    for ax in axes[n:]:
        ax.axis("off")
    for i, ax in enumerate(axes[:n]):
        c = int(fooling.classes[i])
        ok = bool(fooling.predicted[i] == c)
        show(
            ax,
            fooling.images[i],
            f"“{classes[c]}”: {100 * float(fooling.confidence[i]):.2f} %",
            "black" if ok else "gray",
        )
    fig.suptitle(
        f"Fooling images ({fooling.method} from noise): the network's confidence per class",
        fontsize=13,
    )
    return save_png(fig, path)


@figure_of(FoolingResult)
def fooling_figure(fooling: FoolingResult, path: Path, classes: list[str] | None = None) -> Path:
    """Returns `path` after drawing the fooling images there (what Jupyter shows)."""
    return plot_fooling_grid(
        fooling, class_names(classes, fooling.classes, fooling.predicted), path
    )
