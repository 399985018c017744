"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a grey square over the image and map the
probability of the target class with the square centred on each pixel."""

from __future__ import annotations

import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.guard import check_fits, check_images, check_positive_int, forward, guarded
from netscope.inspect.context import Context, save_figure
from netscope.inspect.hooks import check_targets
from netscope.inspect.plots import plt, show, styled
from netscope.inspect.stage import Stage
from netscope.progress import progress_bar
from netscope.record import Figure


def occluder_centres(height: int, width: int, stride: int, device) -> torch.Tensor:
    """Returns the P×2 (row, column) centres of the square on a `stride` grid (row-major)."""
    rows = torch.arange(0, height, stride, device=device)
    cols = torch.arange(0, width, stride, device=device)
    return torch.cartesian_prod(rows, cols)


def occluder_masks(centres: torch.Tensor, height: int, width: int, window: int) -> torch.Tensor:
    """Returns P×1×H×W masks, True inside the `window`-sized square around each of the P
    centres."""
    top_left = centres - window // 2
    y = torch.arange(height, device=centres.device)
    x = torch.arange(width, device=centres.device)
    inside_y = (y >= top_left[:, :1]) & (y < top_left[:, :1] + window)  # P×H
    inside_x = (x >= top_left[:, 1:]) & (x < top_left[:, 1:] + window)  # P×W
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]


@guarded
def occlusion(
    model: nn.Module,
    images: torch.Tensor,
    targets,
    *,
    window: int = 7,
    stride: int = 1,
    value: float = 0.5,
    batch_size: int = 256,
    progress: bool = False,
) -> torch.Tensor:
    """Returns N×H×W: the softmax probability of each image's target class with a `window`-sized
    square of grey `value` centred on each pixel (computed every `stride` pixels; each computed
    value fills its stride×stride cell).

    The model runs in eval mode and is left as it was found. At most `batch_size` occluded images
    (and their masks, made batch by batch) are in memory at once.
    """
    check_images(images)
    if window < 1 or stride < 1:
        raise NetscopeError(f"occlusion: window ({window}) and stride ({stride}) must be >= 1")
    check_positive_int(batch_size, "batch_size")
    n, _, height, width = images.shape
    targets = check_targets(targets, n, check_fits(model, images), images.device)
    centres = occluder_centres(height, width, stride, images.device)
    chunks = centres.split(batch_size)
    maps = torch.empty(n, height, width, device=images.device)
    bar = progress_bar(total=n * len(chunks), desc="occlusion", disable=not progress)
    with torch.no_grad(), bar:
        for index in range(n):
            probs = []
            for chunk in chunks:
                masks = occluder_masks(chunk, height, width, window)
                occluded = torch.where(masks, value, images[index])
                probs.append(forward(model, occluded).softmax(1)[:, targets[index]])
                bar.update()
            grid = torch.cat(probs).reshape(len(range(0, height, stride)), -1)
            full = grid.repeat_interleave(stride, 0).repeat_interleave(stride, 1)
            maps[index] = full[:height, :width]
    return maps


# ---------------------------------------------------------------- as `netscope inspect` runs it


@styled
def plot_occlusion(
    images: torch.Tensor, maps: torch.Tensor, titles: list[str], window: int
) -> plt.Figure:
    """Returns each image above its occlusion map (probability of the true class)."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n + 1.2, 5.2), squeeze=False)
    for k in range(n):
        show(axes[0, k], images[k], titles[k])
        heat = axes[1, k].imshow(maps[k].cpu().numpy(), cmap="magma", vmin=0, vmax=1)
        axes[1, k].set_xticks([])
        axes[1, k].set_yticks([])
        axes[1, k].set_title(f"lowest {maps[k].min():.2f}")
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel(f"grey {window}×{window}\nsquare here")
    fig.colorbar(heat, ax=axes[1, :].tolist(), fraction=0.03, pad=0.02, label="p(true class)")
    fig.suptitle(
        "Occlusion: probability of the true class with a grey square centred on each pixel"
    )
    return fig


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns the occlusion entry of inspect.json and its figure."""
    config = ctx.config
    maps = occlusion(
        ctx.model,
        ctx.images,
        ctx.targets,
        window=config.window,
        stride=config.stride,
        value=config.occluder,
        progress=config.progress,
    )
    entry = {
        "window": config.window,
        "stride": config.stride,
        "value": config.occluder,
        "p_min": maps.flatten(1).min(1).values.tolist(),
    }
    figure = save_figure(
        ctx,
        plot_occlusion(ctx.images, maps, ctx.titles, config.window),
        "occlusion.png",
        "Occlusion sensitivity",
        "Dark where hiding the pixels under the square makes the network lose the true class: "
        "the parts of the digit it relies on.",
    )
    return entry, [figure]


STAGE = Stage("occlusion", "occlusion maps", stage)
