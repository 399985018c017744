"""A layer's responses to N images, computed batch by batch through the shared layer capture.

Bounded memory: a layer is flattened (or pooled over positions, `spatial="pool"`) batch by batch.
A layer with more than `max_units` (default 2048) units is reduced on the fly by a sparse random
projection (Li et al. 2006; scikit-learn's `SparseRandomProjection`, stored as a sparse torch
tensor on the device), which approximately preserves distances and so CKA and linear
predictivity. As a regression *target* a layer keeps up to `max_targets` (default 500) of its real
units, drawn at random, and its score is the median over that sample. Memory is thus at most
images × (max_units + max_targets) floats per layer, whatever the layer's size.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from netscope.attack.result import eval_mode
from netscope.errors import NetscopeError
from netscope.inspect.hooks import capture, forward, layer_names, resolve_layer
from netscope.progress import progress_bar

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ReLU6)


@dataclass
class LayerFeatures:
    """A layer's responses to N images: `dims` for CKA and as a regression source (all units, or a
    random projection of them), `units` as a regression target (all units, or a random sample)."""

    dims: torch.Tensor
    units: torch.Tensor
    total_units: int

    @property
    def projected(self) -> bool:
        return self.dims.shape[1] < self.total_units


def default_layers(model: nn.Module) -> list[str]:
    """Returns the names of the model's activation-function layers followed by its output layer."""
    modules = {name: module for name, module in leaf_modules(model)}
    leaves = list(modules)
    chosen = [n for n in leaves if isinstance(modules[n], ACTIVATIONS)]
    if not chosen:  # activations applied functionally: every leaf layer is a candidate
        return leaves
    return chosen if chosen[-1] == leaves[-1] else chosen + [leaves[-1]]


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Returns (user's name, module) of every module without children, in definition order."""
    return [(n, resolve_layer(model, n)[1]) for n in layer_names(model) if is_leaf(model, n)]


def is_leaf(model: nn.Module, name: str) -> bool:
    return not list(resolve_layer(model, name)[1].children())


def check_layers(model: nn.Module, layers: list[str], argument: str = "--layers") -> list[str]:
    """Returns `layers` unchanged, or raises NetscopeError listing the valid names."""
    for name in layers:
        try:
            resolve_layer(model, name)
        except NetscopeError as err:
            raise NetscopeError(f"{argument}: {err}") from None
    if len(set(layers)) != len(layers):
        raise NetscopeError(f"{argument}: layer names repeat ({layers})")
    return list(layers)


class Reducer:
    """Maps a batch of flat responses (B × p) to its bounded views, the same way for every batch."""

    def __init__(self, total: int, max_units: int, max_targets: int, seed: int, device):
        generator = torch.Generator().manual_seed(seed)
        self.total = total
        self.sample = None
        if total > max_targets:
            self.sample = torch.randperm(total, generator=generator)[:max_targets].sort().values
            self.sample = self.sample.to(device)
        self.projection = None
        if total > max_units:
            self.projection = sparse_projection(total, max_units, seed, device)

    def __call__(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = flat.float()
        if self.projection is not None:  # sparse @ dense is the product CPU and CUDA both have
            dims = torch.sparse.mm(self.projection, flat.T).T
        else:
            dims = flat.clone()
        units = flat[:, self.sample] if self.sample is not None else flat.clone()
        return dims, units


def sparse_projection(total: int, k: int, seed: int, device) -> torch.Tensor:
    """Returns a sparse k × total random projection (Li et al. 2006) that keeps squared norms on
    average; stored sparse, so its memory grows like k·sqrt(total), not k·total."""
    import scipy.sparse
    from sklearn.random_projection import SparseRandomProjection

    projector = SparseRandomProjection(n_components=k, random_state=seed, dense_output=False)
    matrix = projector.fit(scipy.sparse.csr_matrix((1, total))).components_.tocoo()
    index = torch.from_numpy(np.vstack([matrix.row, matrix.col])).long()
    values = torch.from_numpy(matrix.data).float()
    projection = torch.sparse_coo_tensor(index, values, (k, total), check_invariants=True)
    return projection.coalesce().to(device)


def flatten_response(output: torch.Tensor, spatial: str) -> torch.Tensor:
    """Returns one row per image: all values (`flatten`) or the mean over positions (`pool`)."""
    if spatial == "pool" and output.dim() > 2:
        return output.flatten(2).mean(2)
    return output.flatten(1)


@torch.inference_mode()
def layer_features(
    model: nn.Module,
    images: torch.Tensor,
    layers: list[str],
    *,
    spatial: str = "flatten",
    max_units: int = 2048,
    max_targets: int = 500,
    seed: int = 0,
    batch_size: int = 250,
    progress: bool = False,
) -> dict[str, LayerFeatures]:
    """Returns the bounded responses of `layers` (names from `named_modules()`) to `images`
    (pixels in [0, 1] for a `Normalized` model), computed in batches on the images' device."""
    check_layers(model, layers)
    reducers: dict[str, Reducer] = {}
    batches: dict[str, list] = {name: [] for name in layers}
    starts = range(0, len(images), batch_size)
    bar = progress_bar(
        starts, desc="activations", disable=not progress, leave=False, file=sys.stderr
    )
    with eval_mode(model), capture(model, layers) as outputs:
        for start in bar:
            outputs.clear()
            forward(model, images[start : start + batch_size])
            for index, name in enumerate(layers):
                flat = flatten_response(outputs[name], spatial)
                if name not in reducers:
                    reducers[name] = Reducer(
                        flat.shape[1], max_units, max_targets, seed * 1000 + index, flat.device
                    )
                batches[name].append(reducers[name](flat))
    return {name: stack_batches(batches[name], reducers[name].total) for name in layers}


def stack_batches(batches: list, total: int) -> LayerFeatures:
    """Returns the LayerFeatures made of per-batch (dims, units) pairs."""
    return LayerFeatures(
        torch.cat([d for d, _ in batches]), torch.cat([u for _, u in batches]), total
    )


def response_features(
    responses: torch.Tensor, max_units: int = 2048, max_targets: int = 500, seed: int = 0
) -> LayerFeatures:
    """Returns an images × units response matrix (e.g. recordings) reduced like a layer."""
    flat = responses.flatten(1).float()
    dims, units = Reducer(flat.shape[1], max_units, max_targets, seed, flat.device)(flat)
    return LayerFeatures(dims, units, flat.shape[1])
