"""Deep Dream (Mordvintsev et al. 2015): amplify what a layer already sees in an image, at several
scales (octaves), by gradient ascent on the mean squared activation of that layer.

Each step shifts the image at random (jitter) by whole steps of the layer's grid (its receptive
field's jump): a strided network is not shift-invariant, so a shift by a few pixels samples the
image on another grid, and steps taken on different grids pull against each other. On layer3
(jump 16) of a ResNet-18 layout with BatchNorm, pixel jitter of ±2 left the energy where it was
(×1.006 after 2 octaves of 5 steps) while jitter on the layer's grid raises it (×1.27)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from netscope.errors import NetscopeError
from netscope.guard import check_images, guarded
from netscope.inspect.context import Context, save_figure
from netscope.inspect.filters import conv_layers
from netscope.inspect.hooks import activations, resolve_layer, run_to
from netscope.inspect.optimise import few_threads_for_small
from netscope.inspect.photos import PHOTOS, load_photo
from netscope.inspect.plots import plt, show, styled
from netscope.inspect.receptive import receptive_field
from netscope.inspect.stage import Stage
from netscope.progress import progress_bar
from netscope.record import Figure


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Returns the image sizes from the smallest octave to the original."""
    return [(round(height / scale**k), round(width / scale**k)) for k in reversed(range(octaves))]


def layer_grid(model: nn.Module, layer: str, image_shape: tuple[int, ...]) -> tuple[int, int]:
    """Returns the layer's jump per axis (rows, columns): rolling the image by a multiple of it
    rolls the layer's map without resampling; (1, 1) where the layer has no receptive field."""
    try:
        return receptive_field(model, layer, image_shape).jump
    except NetscopeError:
        return (1, 1)


def dream_steps(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    steps: int,
    lr: float,
    jitter: int,
    generator,
) -> torch.Tensor:
    """Returns `images` after `steps` normalised gradient-ascent steps on the layer's energy,
    each on the images rolled by up to `jitter` steps of the layer's grid."""
    images = images.detach().clone()
    grid = layer_grid(model, layer, tuple(images.shape[1:]))
    with few_threads_for_small(images):
        for _ in range(steps):
            shift = torch.randint(-jitter, jitter + 1, (2,), generator=generator)
            dy, dx = (shift * torch.tensor(grid)).tolist()
            shifted = torch.roll(images, (dy, dx), (2, 3)).requires_grad_(True)
            with torch.enable_grad():
                energy = run_to(model, shifted, [layer])[layer].pow(2).flatten(1).mean(1).sum()
                (grad,) = torch.autograd.grad(energy, shifted)
            grad = torch.roll(grad, (-dy, -dx), (2, 3))
            scale = grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
            images = (images + lr * grad / scale).clamp(0, 1)
    return images


@guarded
def deep_dream(
    model: nn.Module,
    images: torch.Tensor,
    layer: str,
    *,
    octaves: int = 3,
    scale: float = 1.4,
    steps: int = 10,
    lr: float = 0.02,
    jitter: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Returns the dreamed images (same shape as `images`): the smallest octave is dreamed first,
    and the detail it adds is carried up to each larger one. The model runs in eval mode (and is
    left as it was found)."""
    check_images(images, pixels=True)
    if octaves < 1 or scale <= 1:
        raise NetscopeError(f"deep dream: octaves ({octaves}) must be >= 1 and scale ({scale}) > 1")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    detail = None
    sizes = octave_sizes(*images.shape[2:], octaves, scale)
    for size in progress_bar(sizes, desc=f"deep dream {layer}", disable=not progress, leave=False):
        base = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        if detail is not None:
            base = base + F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        dreamed = dream_steps(model, base.clamp(0, 1), layer, steps, lr, jitter, generator)
        detail = dreamed - F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    return dreamed


# ---------------------------------------------------------------- as `netscope inspect` runs it


@styled
def plot_dream(
    before: torch.Tensor, after: torch.Tensor, titles: list[str], layer: str
) -> plt.Figure:
    """Returns each image before and after dreaming on `layer`."""
    n = len(before)
    fig, axes = plt.subplots(n, 2, figsize=(8, 4 * n + 0.6), squeeze=False)
    for k in range(n):
        show(axes[k, 0], before[k], f"{titles[k]}: before")
        show(axes[k, 1], after[k], f"after dreaming on {layer}")
    fig.suptitle(f"Deep Dream: amplifying what {layer} sees, at several scales")
    fig.tight_layout()
    return fig


def check(ctx: Context) -> None:
    """Raises NetscopeError before any work for an unknown layer or photo."""
    if ctx.config.dream_layer is not None:
        resolve_layer(ctx.model, ctx.config.dream_layer)
    elif not conv_layers(ctx.model):
        raise NetscopeError(
            "deep dream: the model has no Conv2d layer (name one with --dream-layer)"
        )
    if ctx.config.dream_photo not in PHOTOS:
        raise NetscopeError(
            f"--dream-photo {ctx.config.dream_photo!r}: expected one of {', '.join(PHOTOS)}"
        )


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns the layer energy before/after dreaming on a photo and an enlarged digit, and figure."""
    config, model = ctx.config, ctx.model
    layer = config.dream_layer or conv_layers(model)[-1]
    side = config.dream_size
    photo = load_photo(config.dream_photo, (ctx.shape[0], side, side)).to(ctx.test.device)
    digit = torch.nn.functional.interpolate(ctx.images[:1], size=(side, side), mode="bilinear")
    before = torch.cat([photo, digit])
    after = deep_dream(
        model,
        before,
        layer,
        octaves=config.octaves,
        steps=config.dream_steps,
        seed=config.seed,
        progress=config.progress,
    )
    energy = [
        activations(model, x, [layer])[layer].pow(2).flatten(1).mean(1) for x in (before, after)
    ]
    entry = {
        "layer": layer,
        "size": side,
        "octaves": config.octaves,
        "steps": config.dream_steps,
        "energy_before": energy[0].tolist(),
        "energy_after": energy[1].tolist(),
    }
    names = [
        f"photo '{config.dream_photo}'",
        f"test digit {ctx.classes[ctx.targets[0]]} (enlarged)",
    ]
    figure = save_figure(
        ctx,
        plot_dream(before, after, names, layer),
        "deep_dream.png",
        f"Deep Dream on {layer}",
        f"The patterns that appear are what {layer}'s units respond to, drawn wherever the "
        "image already hints at them.",
    )
    return entry, [figure]


STAGE = Stage("deep_dream", "Deep Dream", stage, check)
