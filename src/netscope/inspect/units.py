"""Unit feature visualisation (Olah et al. 2017, "Feature Visualization", Distill): the input a
channel, a single neuron or a direction in a layer's activation space likes most, grown by the
regularised ascent class models use (jitter, total variation, blur, or a 1/f-scaled spectrum),
with Olah et al.'s diversity term for several different optima per unit. Shown beside the data
set examples (top patches) that excite the same unit, as the lecture's slide "Dataset examples
vs optimization" does: the examples show what the unit responds to in practice, the optimum
what it responds to most, free of what merely comes with it in the data.

Objectives, for the layer's output A (channels × positions) and a unit's direction d:
- channel c: the mean over positions of A[c] (d one-hot; torch-lucent's `channel`);
- neuron c at (i, j): A[c, i, j] alone;
- direction d: the mean over positions of d · A (a dot product; lucent's `direction` takes the
  cosine instead).
Diversity (Olah et al. 2017, "Diversity"): each copy of a unit pays `diversity` × |its
objective| × the mean cosine similarity between its Gram matrix A·Aᵀ and those of the other
copies (as in style transfer; for a neuron, A at its own position only), so copies that excite
the unit through different channels score higher. Measuring the penalty in units of the objective (its size held fixed within a step)
lets one `diversity` serve layers whose activations differ a hundredfold; Olah et al. weigh a
summed similarity by a hand-set constant instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.guard import forward, guarded, model_device
from netscope.inspect.context import Context, save_figure
from netscope.inspect.hooks import Capture
from netscope.inspect.optimise import Regulariser, ascend
from netscope.inspect.plots import plt, show, styled
from netscope.inspect.projection import EXAMPLES, strongest_units, unit_examples
from netscope.inspect.receptive import (
    ReceptiveField,
    TopPatches,
    crop,
    top_patch_layers,
)
from netscope.inspect.stage import Stage
from netscope.record import Figure

UNIT_REGULARISER = Regulariser(tv=0.5, jitter=1, blur_every=10)


@dataclass
class UnitImages:
    """Optimised inputs for several units of one layer, `copies` each."""

    layer: str
    directions: torch.Tensor  # U×C: the unit as a direction in activation space
    position: tuple[int, int] | None  # a neuron's (i, j); None: mean over positions
    images: torch.Tensor  # U×copies×C×H×W in [0, 1]
    objective: torch.Tensor  # U×copies: the unit's objective on the final images
    similarity: torch.Tensor  # U×copies: mean Gram cosine similarity to the other copies


def layer_output(model: nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
    """Returns `layer`'s output on `images` as N×C×H×W (a vector layer's as N×C×1×1), graph
    kept (for the ascent)."""
    with Capture(model, [layer]) as captured:
        forward(model, images)
    output = captured.check()[layer]
    return output[:, :, None, None] if output.ndim == 2 else output


def as_directions(units, channels: int, layer: str) -> torch.Tensor:
    """Returns units (channel indices, or a U×C tensor of directions) as U×C float rows."""
    if isinstance(units, torch.Tensor) and units.is_floating_point():
        if units.ndim != 2 or units.shape[1] != channels:
            raise NetscopeError(
                f"directions: expected U×{channels} (layer {layer!r} has {channels} channels), "
                f"got {tuple(units.shape)}"
            )
        return units.float()
    index = torch.as_tensor(units, dtype=torch.int64).reshape(-1)
    bad = index[(index < 0) | (index >= channels)]
    if bad.numel():
        raise NetscopeError(
            f"unit {bad[0].item()} out of range: layer {layer!r} has {channels} channels"
        )
    return torch.eye(channels)[index]


def neuron_position(position, output_shape: Sequence[int]) -> tuple[int, int] | None:
    """Returns a neuron's (i, j) for `position` ((i, j), "center", or None for the channel)."""
    if position is None:
        return None
    height, width = output_shape[-2:]
    if position == "center":
        return height // 2, width // 2
    i, j = position
    if not (0 <= i < height and 0 <= j < width):
        raise NetscopeError(f"position {(i, j)}: the layer's maps are {height}×{width}")
    return int(i), int(j)


def unit_values(
    output: torch.Tensor, directions: torch.Tensor, position: tuple[int, int] | None
) -> torch.Tensor:
    """Returns each image's objective: its direction's activation at `position`, or its mean
    over positions (directions has one row per image)."""
    along = torch.einsum("nchw,nc->nhw", output, directions)
    return along.flatten(1).mean(1) if position is None else along[:, position[0], position[1]]


def seen(output: torch.Tensor, position: tuple[int, int] | None) -> torch.Tensor:
    """Returns the part of the layer's output a unit's copies must differ in: every position
    for a channel or a direction, the neuron's own position for a neuron (elsewhere the
    copies could differ at no cost to the neuron)."""
    return output if position is None else output[:, :, position[0], position[1], None, None]


def gram_similarity(output: torch.Tensor, copies: int) -> torch.Tensor:
    """Returns, per image, the mean cosine similarity of its Gram matrix (channels × channels)
    with those of the other images of its group of `copies` (0 when copies = 1)."""
    if copies == 1:
        return torch.zeros(len(output), device=output.device)
    flat = output.flatten(2)
    gram = (flat @ flat.transpose(1, 2)).flatten(1)
    gram = gram / gram.norm(dim=1, keepdim=True).clamp_min(1e-12)
    groups = gram.reshape(-1, copies, gram.shape[1])
    cosine = groups @ groups.transpose(1, 2)  # U×copies×copies, ones on the diagonal
    return ((cosine.sum(2) - cosine.diagonal(dim1=1, dim2=2)) / (copies - 1)).reshape(-1)


@guarded
def visualise_units(
    model: nn.Module,
    layer: str,
    image_shape: tuple[int, int, int],
    units: Sequence[int] | torch.Tensor,
    *,
    position: tuple[int, int] | str | None = None,
    copies: int = 1,
    diversity: float = 0.0,
    steps: int = 256,
    lr: float = 0.05,
    reg: Regulariser = UNIT_REGULARISER,
    seed: int = 0,
    progress: bool = False,
) -> UnitImages:
    """Returns `copies` images per unit of `layer` (channel indices, or a U×C tensor of
    directions) that maximise the unit's objective (its mean over positions, or the neuron at
    `position`: (i, j) or "center") less the diversity penalty, grown from grey with a little
    noise by `steps` of regularised ascent, all units in one batch. The model runs in eval mode
    (and is left as it was found)."""
    if copies < 1:
        raise NetscopeError(f"copies: expected at least 1, got {copies}")
    device = model_device(model)
    generator = torch.Generator().manual_seed(seed)
    probe = layer_output(model, torch.full((1, *image_shape), 0.5, device=device), layer)
    directions = as_directions(units, probe.shape[1], layer).to(device)
    position = neuron_position(position, probe.shape)
    per_image = directions.repeat_interleave(copies, 0)
    noise = 0.02 * torch.randn(len(per_image), *image_shape, generator=generator)
    start = (0.5 + noise).clamp(0, 1).to(device)

    def score(images: torch.Tensor) -> torch.Tensor:
        output = layer_output(model, images, layer)
        value = unit_values(output, per_image, position)
        scale = value.detach().abs()  # the penalty in units of the objective: scale-free
        return value - diversity * scale * gram_similarity(seen(output, position), copies)

    desc = f"unit images {layer}" if progress else None
    images = ascend(score, start, steps, lr, reg, seed=seed, desc=desc)
    with torch.no_grad():
        output = layer_output(model, images, layer)
        objective = unit_values(output, per_image, position)
        similarity = gram_similarity(seen(output, position), copies)
    shape = (len(directions), copies)
    return UnitImages(
        layer,
        directions,
        position,
        images.reshape(*shape, *image_shape),
        objective.reshape(shape),
        similarity.reshape(shape),
    )


# ---------------------------------------------------------------- as `netscope inspect` runs it

DIVERSITY = 0.25  # a copy as similar as can be to the others loses a quarter of its objective


def regulariser_for(field: ReceptiveField, fourier: bool = False) -> Regulariser:
    """Returns the unit regulariser for a neuron with this receptive field: without jitter and
    blur below 10 pixels, where a 1-pixel shift and a 3×3 blur are much of the field (a first
    layer's 5×5 field would only be smeared: its best input is its filter's sign pattern)."""
    small = min(field.size) < 10
    reg = Regulariser(tv=UNIT_REGULARISER.tv, fourier=fourier)
    return reg if small else Regulariser(**{**vars(UNIT_REGULARISER), "fourier": fourier})


def field_crops(found: UnitImages, field: ReceptiveField) -> torch.Tensor:
    """Returns the optimised images of a neuron objective cropped to the neuron's receptive
    field (U×copies×C×h×w), the view its data set examples are shown in."""
    images = found.images.flatten(0, 1)
    corner = field.corners(torch.tensor([found.position], device=images.device))
    crops = crop(images, corner.expand(len(images), 2), field.size, 0.5)
    return crops.reshape(*found.images.shape[:2], *crops.shape[1:])


@styled
def plot_units(found: UnitImages, units: list[int], top: TopPatches) -> plt.Figure:
    """Returns one row per unit: its optimised images cropped to the neuron's receptive field
    ("optimization") beside the test patches that excite the unit most ("dataset examples"),
    each titled with the activation it gives."""
    n_units, copies = found.images.shape[:2]
    examples = min(EXAMPLES, top.patches.shape[1])
    optima = field_crops(found, top.field)
    widths = [1] * copies + [0.3] + [1] * examples  # a narrow gap between the two groups
    fig, axes = plt.subplots(
        n_units, len(widths), figsize=(1.5 * sum(widths) + 0.8, 1.65 * n_units + 1.3),
        squeeze=False, gridspec_kw={"width_ratios": widths, "wspace": 0.08},
    )  # fmt: skip
    for u, (row, unit) in enumerate(zip(axes, units)):
        for c in range(copies):
            show(row[c], optima[u, c], f"{found.objective[u, c]:.1f}")
        row[copies].axis("off")
        for e, ax in enumerate(row[copies + 1 :]):
            show(ax, top.patches[unit, e], f"{top.values[unit, e]:.1f}")
        row[0].set_ylabel(f"unit {unit}", fontsize=12)
    for ax, label in ((axes[0, 0], "optimization"), (axes[0, copies + 1], "dataset examples")):
        ax.annotate(label, (0, 1.4), xycoords="axes fraction", fontsize=13, fontweight="bold")
    h, w = top.field.size
    fig.suptitle(
        f"{found.layer}: optimization vs dataset examples, in the {h}×{w} receptive field of "
        f"the centre neuron\n{copies} inputs grown to excite it (kept apart by a diversity term) "
        "beside the test patches that excite the unit most; above each: the activation",
        y=1.0 + 0.25 / n_units,
    )
    return fig


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns, for the strongest units of each layer, the activation their optimised images
    reach beside the best one on test images, and one figure per layer."""
    config = ctx.config
    entry: dict = {"objective": "neuron at the centre", "steps": config.unit_steps,
                   "copies": config.unit_copies, "diversity": DIVERSITY, "fourier": config.fourier}  # fmt: skip
    figures = []
    for layer in top_patch_layers(ctx):
        top = unit_examples(ctx, layer)
        units = strongest_units(top, config.units)
        reg = regulariser_for(top.field, config.fourier)
        found = visualise_units(
            ctx.model, layer, ctx.shape, units, position="center", copies=config.unit_copies,
            diversity=DIVERSITY, steps=config.unit_steps, reg=reg, seed=config.seed,
            progress=config.progress,
        )  # fmt: skip
        entry[layer] = {
            "units": units,
            "position": found.position,
            "optimum_activation": found.objective.cpu().tolist(),
            "best_test_activation": top.values[units, 0].cpu().tolist(),
            "gram_similarity": found.similarity.cpu().tolist(),
        }
        figures.append(
            save_figure(
                ctx,
                plot_units(found, units, top),
                f"units_{layer.replace('.', '_')}.png",
                f"Optimization vs dataset examples, {layer}",
                "Left: inputs grown to excite each unit (Olah et al. 2017); right: the test "
                "patches that excite it most. What they share is what the unit detects.",
            )
        )
    return entry, figures


STAGE = Stage("units", "unit feature visualisation vs data set examples", stage)
