"""The learned kernels of a convolutional layer (by default the first one)."""

from __future__ import annotations

import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.guard import guarded
from netscope.inspect.context import Context, save_figure
from netscope.inspect.hooks import layer_names, resolve_layer
from netscope.inspect.plots import matplotlib, mosaic, plt, styled
from netscope.inspect.stage import Stage
from netscope.record import Figure


def conv_layers(model: nn.Module) -> list[str]:
    """Returns the names of the model's Conv2d layers, in definition order."""
    names = layer_names(model)
    return [name for name in names if isinstance(resolve_layer(model, name)[1], nn.Conv2d)]


@guarded
def filters(model: nn.Module, layer: str | None = None) -> tuple[str, torch.Tensor]:
    """Returns the layer's name and a copy of its kernels, out×in×kh×kw (default: the first
    Conv2d)."""
    if layer is None:
        convs = conv_layers(model)
        if not convs:
            raise NetscopeError(
                "filters: the model has no Conv2d layer (name one with --filters-layer)"
            )
        layer = convs[0]
    module = resolve_layer(model, layer)[1]
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise NetscopeError(
            f"filters: layer {layer!r} ({type(module).__name__}) has no 4-d kernel "
            f"(convolutional layers: {', '.join(conv_layers(model)) or 'none'})"
        )
    return layer, weight.detach().clone()


# ---------------------------------------------------------------- as `netscope inspect` runs it


@styled
def plot_filters(layer: str, weights: torch.Tensor, columns: int = 8) -> plt.Figure:
    """Returns every kernel of a conv layer on one shared diverging colour scale (0 = white); a
    kernel with several input channels shows them side by side."""
    out_ch, in_ch, kh, kw = weights.shape
    shown = weights[:, :8].detach().float().cpu()  # at most 8 input channels per filter
    tiles = torch.stack([mosaic(f[:, None], columns=shown.shape[1])[0] for f in shown])
    columns = min(columns, out_ch) if in_ch == 1 else min(4, out_ch)
    grid = mosaic(tiles, columns, gap=1 if in_ch == 1 else 3)  # wider between filters
    limit = float(weights.abs().max())
    width = min(14, 1.2 + 0.9 * columns * max(1, shown.shape[1] * kw / 8))
    fig, ax = plt.subplots(figsize=(width, width * grid.shape[0] / grid.shape[1] + 0.8))
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d0d0d0")
    image = ax.imshow(grid.numpy(), cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    note = "" if in_ch == 1 else f", input channels side by side{' (first 8)' if in_ch > 8 else ''}"
    ax.set_title(f"{layer}: {out_ch} filters of {in_ch}×{kh}×{kw}{note}")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="weight")
    return fig


def stage(ctx: Context) -> tuple[dict, list[Figure]]:
    """Returns the filters entry of inspect.json and its figure."""
    name, weights = filters(ctx.model, ctx.config.filters_layer)
    figure = save_figure(
        ctx,
        plot_filters(name, weights),
        "filters.png",
        f"Filters of {name}",
        "Red and blue are weights of opposite sign on one shared scale: look for edge and "
        "stroke detectors at different angles.",
    )
    return {"layer": name, "shape": list(weights.shape)}, [figure]


def check(ctx: Context) -> None:
    """Raises NetscopeError before any work when the filters layer has no kernels."""
    filters(ctx.model, ctx.config.filters_layer)


STAGE = Stage("filters", "first-layer filters", stage, check)
