"""Saliency maps (Simonyan et al. 2014) and integrated gradients (Sundararajan et al. 2017).

Our own code rather than Captum's: each is a few lines of autograd, runs batched on the inputs'
device, and avoids importing Captum (≈5 s) for every `netscope inspect`. tests/test_inspect.py
checks both against Captum's `Saliency` and `IntegratedGradients` (method "riemann_middle").
"""

from __future__ import annotations

import torch
from torch import nn

from netscope.guard import check_fits, check_images, check_positive_int, forward, guarded
from netscope.inspect.context import Context, save_figure
from netscope.inspect.hooks import check_targets
from netscope.inspect.plots import plt, show, styled
from netscope.inspect.stage import Stage
from netscope.progress import progress_bar
from netscope.record import Figure


def class_scores(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Returns the logit of each image's target class (N)."""
    return forward(model, images).gather(1, targets[:, None])[:, 0]


def input_gradient(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Returns d(target logit)/d(pixels), N×C×H×W (images are independent, so one backward)."""
    pixels = images.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(class_scores(model, pixels, targets).sum(), pixels)
    return grad


@guarded
def saliency(model: nn.Module, images: torch.Tensor, targets) -> torch.Tensor:
    """Returns N×H×W: |d score / d pixel|, the maximum over colour channels. The model runs in
    eval mode (and is left as it was found)."""
    check_images(images)
    targets = check_targets(targets, len(images), check_fits(model, images), images.device)
    return input_gradient(model, images, targets).abs().amax(dim=1)


@guarded
def integrated_gradients(
    model: nn.Module,
    images: torch.Tensor,
    targets,
    *,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    batch_size: int = 16,
    progress: bool = False,
) -> torch.Tensor:
    """Returns N×C×H×W: (x − baseline) · the mean gradient at the midpoints of `steps` equal
    steps from baseline (default black) to x. Its sum approximates score(x) − score(baseline).

    The model runs in eval mode (and is left as it was found). The N·steps path images go
    through the model `batch_size` at a time (one backward pass each), which bounds memory.
    """
    check_images(images)
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    baseline = torch.zeros_like(images) if baseline is None else baseline.expand_as(images)
    n = len(images)
    targets = check_targets(targets, n, check_fits(model, images), images.device)
    alphas = (torch.arange(steps, device=images.device) + 0.5) / steps
    # every (path point, image) pair, point-major; a batch is any run of consecutive pairs
    pairs = torch.cartesian_prod(torch.arange(steps), torch.arange(n)).to(images.device)
    total = torch.zeros_like(images)
    chunks = pairs.split(batch_size)
    for chunk in progress_bar(chunks, desc="integrated gradients", disable=not progress):
        point, image = chunk.unbind(1)
        alpha = alphas[point].view(-1, 1, 1, 1)
        path = baseline[image] + alpha * (images[image] - baseline[image])
        total.index_add_(0, image, input_gradient(model, path, targets[image]))
    return (images - baseline) * total / steps


# ---------------------------------------------------------------- as `netscope inspect` runs it


@styled
def plot_attributions(
    images: torch.Tensor, saliency: torch.Tensor, ig: torch.Tensor, titles: list[str], steps: int
) -> plt.Figure:
    """Returns image, saliency map and integrated gradients for each image, each map scaled to
    its own maximum."""
    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(2.2 * n + 1.4, 7.4), squeeze=False)
    ig_sum = ig.sum(1).cpu()
    for k in range(n):
        show(axes[0, k], images[k], titles[k])
        sal = saliency[k].cpu() / saliency[k].max().clamp_min(1e-12)
        s_img = axes[1, k].imshow(sal.numpy(), cmap="hot", vmin=0, vmax=1)
        signed = ig_sum[k] / ig_sum[k].abs().max().clamp_min(1e-12)
        i_img = axes[2, k].imshow(signed.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        for ax in axes[1:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("saliency\n|∂score/∂pixel|")
    axes[2, 0].set_ylabel(f"integrated\ngradients ({steps} steps)")
    fig.colorbar(s_img, ax=axes[1, :].tolist(), fraction=0.03, pad=0.02, label="÷ max")
    fig.colorbar(i_img, ax=axes[2, :].tolist(), fraction=0.03, pad=0.02, label="÷ max |IG|")
    fig.suptitle(
        "Which pixels matter for the true class: gradient (saliency) and integrated gradients"
    )
    return fig


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns saliency and IG with IG's completeness error (sum of IG vs score gap), and figure."""
    model, images, targets, steps = ctx.model, ctx.images, ctx.targets, ctx.config.ig_steps
    sal = saliency(model, images, targets)
    ig = integrated_gradients(model, images, targets, steps=steps, progress=ctx.config.progress)
    with torch.no_grad():
        scores = forward(model, images).gather(1, targets[:, None])[:, 0]
        base = forward(model, torch.zeros_like(images)).gather(1, targets[:, None])[:, 0]
    entry = {
        "ig_steps": steps,
        "ig_baseline": "black",
        "score_minus_baseline": (scores - base).tolist(),
        "ig_completeness_error": (ig.flatten(1).sum(1) - (scores - base)).abs().tolist(),
    }
    figure = save_figure(
        ctx,
        plot_attributions(images, sal, ig, ctx.titles, steps),
        "saliency.png",
        "Saliency and integrated gradients",
        "Saliency is bright where a small change moves the true class's score most; IG is red "
        "where a pixel adds to the score (compared with a black image) and blue where it takes "
        "away.",
    )
    return entry, [figure]


STAGE = Stage("saliency", "saliency and integrated gradients", stage)
