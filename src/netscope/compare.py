"""Compare the representations of two networks (or a network and recorded responses) layer by layer.

Both measures are computed for every (layer of A, layer of B) pair on the same held-out images:

- **Predictivity** (Yamins et al. 2014, PNAS; Yamins & DiCarlo 2016, Nat. Neurosci.): ridge
  regression from A's layer to each unit of B's layer, cross-validated over images (`folds`-fold);
  each unit's penalty is chosen by an inner leave-one-out cross-validation on the training folds
  only. The score is the median over B's units of the explained variance R² on held-out images
  (every image is predicted by a model that never saw it).
- **Linear CKA** (Kornblith et al. 2019, ICML): a regression-free similarity of the two layers'
  image-by-image geometry; 1 for identical layers (and under rotation or isotropic scaling).

Solver: scikit-learn's `RidgeCV` (cv=None, alpha_per_target=True). It decomposes the training
features once and gets the exact leave-one-out error of every penalty and every target unit in
closed form, so the inner cross-validation costs about as much as a single fit; it is well tested
and runs in float64. Activations are computed on the models' device; only the bounded feature
matrices below move to the CPU for the regression. CKA is a few matrix products in torch, on the
device.

Bounded memory: a layer is flattened (or pooled over positions, `spatial="pool"`) batch by batch.
A layer with more than `max_units` (default 2048) units is reduced on the fly by a sparse random
projection (Li et al. 2006; scikit-learn's `SparseRandomProjection`, stored as a sparse torch
tensor on the device), which approximately preserves distances and so CKA and linear
predictivity. As a regression *target* a layer keeps up to `max_targets` (default 500) of its real
units, drawn at random, and its score is the median over that sample. Memory is thus at most
images × (max_units + max_targets) floats per layer, whatever the layer's size. Self-prediction
is near perfect only when the training folds hold more images than the layer has dimensions.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from netscope.errors import NetscopeError
from netscope.models import Normalized
from netscope.png import save_png

# Penalties tried by the inner cross-validation, relative to the total variance of the training
# features (trace of Xc^T Xc), so that one grid fits every layer whatever its scale.
RELATIVE_ALPHAS = np.logspace(-8, 1, 10)
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


def inner_model(model: nn.Module) -> nn.Module:
    """Returns the network inside a `Normalized` wrapper (whose layer names users know)."""
    return model.model if isinstance(model, Normalized) else model


def default_layers(model: nn.Module) -> list[str]:
    """Returns the names of the model's activation-function layers followed by its output layer."""
    leaves = [n for n, m in inner_model(model).named_modules() if n and not list(m.children())]
    modules = dict(inner_model(model).named_modules())
    chosen = [n for n in leaves if isinstance(modules[n], ACTIVATIONS)]
    if not chosen:  # activations applied functionally: every leaf layer is a candidate
        return leaves
    return chosen if chosen[-1] == leaves[-1] else chosen + [leaves[-1]]


def check_layers(model: nn.Module, layers: list[str], argument: str = "--layers") -> list[str]:
    """Returns `layers` unchanged, or raises NetscopeError listing the valid names."""
    valid = [n for n, _ in inner_model(model).named_modules() if n]
    unknown = [name for name in layers if name not in valid]
    if unknown:
        raise NetscopeError(f"{argument}: unknown layer(s) {unknown} (expected some of {valid})")
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
    modules = dict(inner_model(model).named_modules())
    reducers: dict[str, Reducer] = {}
    batches: dict[str, list] = {name: [] for name in layers}

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            if not torch.is_tensor(output):
                raise NetscopeError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            flat = flatten_response(output, spatial)
            if name not in reducers:
                layer_seed = seed * 1000 + layers.index(name)
                reducers[name] = Reducer(
                    flat.shape[1], max_units, max_targets, layer_seed, flat.device
                )
            batches[name].append(reducers[name](flat))

        return hook

    hooks = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    was_training = model.training
    model.eval()
    try:
        starts = range(0, len(images), batch_size)
        bar = tqdm(starts, desc="activations", disable=not progress, leave=False, file=sys.stderr)
        for start in bar:
            model(images[start : start + batch_size])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
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


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Returns the linear CKA (Kornblith et al. 2019) of two N × units matrices (rows = images);
    NaN when one of them does not vary over images."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    if max(x.shape[1], y.shape[1]) <= x.shape[0]:
        cross = (y.T @ x).square().sum()
        norms = (x.T @ x).norm() * (y.T @ y).norm()
    else:  # fewer images than units: the N × N Gram matrices are the smaller objects
        gram_x, gram_y = x @ x.T, y @ y.T
        cross = (gram_x * gram_y).sum()
        norms = gram_x.norm() * gram_y.norm()
    return (cross / norms).item() if norms > 0 else float("nan")


def cka_matrix(
    feats_a: dict[str, LayerFeatures], feats_b: dict[str, LayerFeatures]
) -> torch.Tensor:
    """Returns linear CKA for every (layer of A, layer of B) pair, rows = A's layers."""
    return torch.tensor(
        [[linear_cka(a.dims, b.dims) for b in feats_b.values()] for a in feats_a.values()]
    )


def explained_variance(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Returns R² = 1 − SS_residual / SS_total per column; NaN for columns that do not vary."""
    total = ((target - target.mean(0)) ** 2).sum(0)
    residual = ((target - predicted) ** 2).sum(0)
    scale = max(float(total.max(initial=0.0)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 1e-12 * scale, 1.0 - residual / total, np.nan)


def ridge_predictions(
    source: np.ndarray, target: np.ndarray, folds: int = 5, seed: int = 0, bar=None
) -> np.ndarray:
    """Returns out-of-fold ridge predictions of every column of `target` from `source` (rows =
    images); each fold's penalties come from leave-one-out CV on its training images alone."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    predicted = np.empty_like(target)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(source):
        spread = ((source[train] - source[train].mean(0)) ** 2).sum()
        alphas = RELATIVE_ALPHAS * max(spread, 1e-12)
        ridge = RidgeCV(alphas=alphas, alpha_per_target=True).fit(source[train], target[train])
        predicted[test] = ridge.predict(source[test]).reshape(len(test), -1)
        if bar is not None:
            bar.update()
    return predicted


def ridge_predictivity(
    source: torch.Tensor, target: torch.Tensor, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Returns the held-out explained variance of each target unit (NaN for constant units)."""
    x = source.detach().cpu().double().numpy()
    y = target.detach().cpu().double().numpy()
    if len(x) != len(y):
        raise NetscopeError(f"source has {len(x)} images but target has {len(y)}")
    if len(x) < 2 * folds:
        raise NetscopeError(f"{len(x)} images are too few for {folds}-fold cross-validation")
    return explained_variance(y, ridge_predictions(x, y, folds, seed))


def predictivity_matrix(
    feats_a: dict[str, LayerFeatures],
    feats_b: dict[str, LayerFeatures],
    folds: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Returns the median held-out R² of B's units predicted from each of A's layers (rows = A).
    All of B's layers are fitted at once per fold, so the decomposition of A's layer is shared."""
    targets = np.concatenate([b.units.cpu().double().numpy() for b in feats_b.values()], axis=1)
    edges = np.cumsum([0] + [b.units.shape[1] for b in feats_b.values()])
    rows = []
    with tqdm(
        total=folds * len(feats_a), desc="ridge", disable=not progress, leave=False, file=sys.stderr
    ) as bar:
        for a in feats_a.values():
            source = a.dims.cpu().double().numpy()
            r2 = explained_variance(targets, ridge_predictions(source, targets, folds, seed, bar))
            rows.append([nanmedian(r2[lo:hi]) for lo, hi in zip(edges[:-1], edges[1:])])
    return torch.tensor(rows, dtype=torch.float64)


def nanmedian(values: np.ndarray) -> float:
    """Returns the median of the finite values, NaN when there are none."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


@dataclass
class Comparison:
    """Predictivity and CKA matrices (rows = layers of A, columns = layers of B)."""

    layers_a: list[str]
    layers_b: list[str]
    predictivity: torch.Tensor
    cka: torch.Tensor
    n_images: int
    units_a: dict[str, int] = field(default_factory=dict)
    units_b: dict[str, int] = field(default_factory=dict)

    def best_source(self, measure: str = "predictivity") -> list[str]:
        """Returns, for each layer of B, the layer of A that scores highest on `measure`."""
        matrix = getattr(self, measure).nan_to_num(nan=-float("inf"))
        return [self.layers_a[i] for i in matrix.argmax(0).tolist()]

    def as_dict(self) -> dict:
        """Returns the matrices and layer names as JSON-ready values (NaN as null)."""
        return {
            "layers_a": self.layers_a,
            "layers_b": self.layers_b,
            "predictivity": json_matrix(self.predictivity),
            "cka": json_matrix(self.cka),
            "best_source": {
                "predictivity": dict(zip(self.layers_b, self.best_source("predictivity"))),
                "cka": dict(zip(self.layers_b, self.best_source("cka"))),
            },
            "n_images": self.n_images,
            "units_a": self.units_a,
            "units_b": self.units_b,
        }


def json_matrix(matrix: torch.Tensor) -> list[list[float | None]]:
    """Returns the matrix as nested lists with NaN replaced by None (valid JSON)."""
    return [[None if v != v else round(v, 6) for v in row] for row in matrix.tolist()]


def compare_features(
    feats_a: dict[str, LayerFeatures],
    feats_b: dict[str, LayerFeatures],
    folds: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> Comparison:
    """Returns both measures for every pair of the given layer features (same images, same order)."""
    n_a = {len(f.dims) for f in feats_a.values()}
    n_b = {len(f.dims) for f in feats_b.values()}
    if len(n_a | n_b) != 1:
        raise NetscopeError(f"A and B must see the same images (image counts {n_a} and {n_b})")
    return Comparison(
        list(feats_a),
        list(feats_b),
        predictivity_matrix(feats_a, feats_b, folds, seed, progress),
        cka_matrix(feats_a, feats_b),
        n_a.pop(),
        {name: f.total_units for name, f in feats_a.items()},
        {name: f.total_units for name, f in feats_b.items()},
    )


def compare_models(
    model_a: nn.Module,
    model_b: nn.Module,
    images: torch.Tensor,
    layers_a: list[str] | None = None,
    layers_b: list[str] | None = None,
    config: CompareConfig | None = None,
) -> Comparison:
    """Returns the Comparison of two models' layers on `images` (pixels for `Normalized` models)."""
    config = config or CompareConfig()
    layers_a = layers_a or default_layers(model_a)
    layers_b = layers_b or default_layers(model_b)
    feats_a = layer_features(model_a, images, layers_a, **config.feature_options())
    feats_b = layer_features(model_b, images, layers_b, **config.feature_options(seed_offset=1))
    return compare_features(feats_a, feats_b, config.folds, config.seed, config.progress)


@dataclass
class CompareConfig:
    """What to compare and how; each field is a `netscope compare --flag` of the same name."""

    layers: list[str] | None = None  # layers of RUN_A (default: activation layers + output)
    layers_b: list[str] | None = None  # layers of RUN_B (default: --layers if B has them all)
    responses: str | None = None  # FILE.npy, images × units: use as B instead of RUN_B
    images: str | None = None  # FILE.npy, N×C×H×W uint8 or floats in [0, 1] (default: test set)
    n_images: int | None = None  # first N test images (default 1000, or the rows of --responses)
    spatial: str = "flatten"  # flatten | pool (mean over positions) for convolutional layers
    max_units: int = 2048  # larger layers are randomly projected to this many dimensions
    max_targets: int = 500  # predict at most this many (randomly drawn) units of each B layer
    folds: int = 5  # outer cross-validation folds over images
    seed: int = 0
    batch_size: int = 250
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("spatial", self.spatial in ("flatten", "pool"), "flatten or pool"),
            ("folds", self.folds >= 2, "an integer >= 2"),
            ("max-units", self.max_units >= 1, "an integer >= 1"),
            ("max-targets", self.max_targets >= 1, "an integer >= 1"),
            ("batch-size", self.batch_size >= 1, "an integer >= 1"),
            (
                "n-images",
                self.n_images is None or self.n_images >= 2 * self.folds,
                "2·folds or more",
            ),
        ]
        for flag, ok, expected in checks:
            if not ok:
                value = getattr(self, flag.replace("-", "_"))
                raise NetscopeError(f"--{flag} {value}: expected {expected}")

    def feature_options(self, seed_offset: int = 0) -> dict:
        """Returns the keyword arguments of `layer_features` this config sets."""
        return dict(
            spatial=self.spatial,
            max_units=self.max_units,
            max_targets=self.max_targets,
            seed=self.seed + seed_offset,
            batch_size=self.batch_size,
            progress=self.progress,
        )


def load_npy(path: str | Path, argument: str) -> np.ndarray:
    """Returns the numeric array in a .npy file (never unpickles), or raises NetscopeError."""
    try:
        array = np.load(Path(path), allow_pickle=False)
    except FileNotFoundError:
        raise NetscopeError(f"{argument} {path}: no such file") from None
    except (OSError, ValueError) as err:
        raise NetscopeError(f"{argument} {path}: not a numeric .npy array ({err})") from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise NetscopeError(f"{argument} {path}: expected a numeric array, got {array.dtype}")
    if not np.isfinite(array).all():
        raise NetscopeError(f"{argument} {path}: contains NaN or infinite values")
    return array


def load_responses(path: str | Path, n_images: int | None = None) -> torch.Tensor:
    """Returns an images × units float tensor from a .npy file, checked against `n_images`."""
    array = load_npy(path, "--responses")
    if array.ndim != 2 or array.shape[1] < 1:
        raise NetscopeError(
            f"--responses {path}: expected a 2-D array images × units, got shape {array.shape}"
            + (" (use array.reshape(-1, 1) for a single unit)" if array.ndim == 1 else "")
        )
    if n_images is not None and len(array) != n_images:
        raise NetscopeError(
            f"--responses {path}: has {len(array)} rows but {n_images} images are compared "
            "(one row per image, in the order of the images)"
        )
    return torch.from_numpy(array.astype(np.float32))


def load_images(path: str | Path, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """Returns N×C×H×W pixels in [0, 1] from a .npy file of uint8 or floats in [0, 1]."""
    array = load_npy(path, "--images")
    if array.ndim == 3 and image_shape[0] == 1:
        array = array[:, None]
    if array.ndim != 4 or tuple(array.shape[1:]) != tuple(image_shape):
        raise NetscopeError(
            f"--images {path}: expected shape N×{'×'.join(map(str, image_shape))}, got {array.shape}"
        )
    if array.dtype == np.uint8:
        return torch.from_numpy(array).float() / 255
    if array.min() < 0 or array.max() > 1:
        raise NetscopeError(f"--images {path}: float pixels must lie in [0, 1] (or use uint8)")
    return torch.from_numpy(array.astype(np.float32))


def comparison_images(run_a, config: CompareConfig, n_rows: int | None) -> tuple[torch.Tensor, str]:
    """Returns the images to compare on (pixels in [0, 1]) and a phrase naming them: the first
    `n_images` of --images or of RUN_A's test set (default: 1000, or one per --responses row)."""
    if config.images:
        images, source = load_images(config.images, run_a.image_shape), config.images
    else:
        images = run_a.load_dataset().test_images.float() / 255
        source = f"{run_a.info['data']['name']} test images"
    n = config.n_images or n_rows or (len(images) if config.images else 1000)
    if n > len(images):
        raise NetscopeError(f"--n-images {n}: {source} hold only {len(images)} images")
    if n_rows is not None and n != n_rows:
        raise NetscopeError(
            f"--responses {config.responses}: has {n_rows} rows but {n} images are compared "
            "(one row per image, in the order of the images)"
        )
    if n < 2 * config.folds:
        raise NetscopeError(f"{n} images are too few for --folds {config.folds}")
    return images[:n], f"the first {n} {source}"


def plot_heatmap(
    matrix: torch.Tensor,
    rows: list[str],
    columns: list[str],
    title: str,
    label: str,
    row_label: str = "layer of A (source)",
    column_label: str = "layer of B (target)",
):
    """Returns a matplotlib figure of `matrix` with each value written in its cell and the best
    source (row) of each target (column) outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = matrix.double().numpy()
    side = 1.0 + 0.9 * max(len(rows), len(columns))
    fig, ax = plt.subplots(figsize=(max(6.5, side + 2.5), max(5.0, side)), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(values):
        text = "–" if v != v else f"{v:.3f}"
        colour = "black" if v == v and v > 0.6 else "white"
        ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=12)
    for j, i in enumerate(np.nan_to_num(values, nan=-np.inf).argmax(0)):
        if np.isfinite(values[i, j]):
            box = plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, ec="red", lw=2.5)
            ax.add_patch(box)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=12)
    ax.set_yticks(range(len(rows)), rows, fontsize=12)
    ax.set_xlabel(column_label, fontsize=13)
    ax.set_ylabel(row_label, fontsize=13)
    ax.set_title(title, fontsize=14)
    fig.colorbar(image, ax=ax, shrink=0.85).set_label(label, fontsize=12)
    return fig


def save_heatmaps(comparison: Comparison, out: Path, names: tuple[str, str]) -> list[dict]:
    """Writes the predictivity and CKA heat maps into `out`; returns their figure records."""
    name_a, name_b = names
    specs = [
        (
            "compare_predictivity.png",
            comparison.predictivity,
            f"Predictivity of {name_b} from {name_a}",
            "median held-out R² over B's units",
            "How well a ridge regression from each layer of A predicts the units of each layer "
            "of B on held-out images; the outlined cell is the best source for each target, "
            "on the diagonal where the two hierarchies align.",
        ),
        (
            "compare_cka.png",
            comparison.cka,
            f"Linear CKA: {name_a} vs {name_b}",
            "linear CKA",
            "Regression-free similarity of every pair of layers (1 = same geometry up to "
            "rotation and scale); the outlined cell is the most similar layer of A for each "
            "layer of B.",
        ),
    ]
    figures = []
    for file, matrix, title, label, caption in specs:
        roles = ("(source)", "(target)") if matrix is comparison.predictivity else ("", "")
        fig = plot_heatmap(
            matrix,
            comparison.layers_a,
            comparison.layers_b,
            title,
            label,
            row_label=f"layer of A {roles[0]}",
            column_label=f"layer of B {roles[1]}",
        )
        save_png(fig, out / file, tight=False, dpi=110)
        figures.append({"file": file, "title": title, "caption": caption})
    return figures


def run_compare(run_a, run_b, out: str | Path, config: CompareConfig | None = None) -> dict:
    """Returns the compare.json record after comparing two runs (or RUN_A with `--responses`) and
    writing compare.json and the heat maps into `out`."""
    from netscope.run import write_json
    from netscope.train import resolve_device

    config = config or CompareConfig()
    if (run_b is None) == (config.responses is None):
        raise NetscopeError(
            "compare: give either a second run directory RUN_B or --responses FILE.npy"
        )
    if run_b is not None and tuple(run_b.image_shape) != tuple(run_a.image_shape):
        raise NetscopeError(
            f"{run_b.path}: takes {run_b.image_shape} images but {run_a.path} takes "
            f"{run_a.image_shape}; both runs must see the same images"
        )
    device = resolve_device(config.device)
    model_a = run_a.pixel_model().to(device)
    layers_a = check_layers(model_a, config.layers or default_layers(model_a))
    model_b = None if run_b is None else run_b.pixel_model().to(device)
    layers_b = None if run_b is None else layers_for_b(model_b, config)
    responses = load_responses(config.responses) if config.responses else None
    images, image_phrase = comparison_images(
        run_a, config, None if responses is None else len(responses)
    )
    images = images.to(device)
    feats_a = layer_features(model_a, images, layers_a, **config.feature_options())
    if responses is None:
        feats_b = layer_features(model_b, images, layers_b, **config.feature_options(1))
        label_b, source_b = run_label(run_b), str(run_b.path)
    else:
        options = dict(max_units=config.max_units, max_targets=config.max_targets)
        feats_b = {
            "responses": response_features(responses.to(device), **options, seed=config.seed + 1)
        }
        label_b, source_b = Path(config.responses).name, config.responses
    comparison = compare_features(feats_a, feats_b, config.folds, config.seed, config.progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = save_heatmaps(comparison, out, (f"A = {run_label(run_a)}", f"B = {label_b}"))
    record = {
        "run_a": str(run_a.path),
        "b": source_b,
        "images": image_phrase,
        **comparison.as_dict(),
        "projected_a": [n for n, f in feats_a.items() if f.projected],
        "projected_b": [n for n, f in feats_b.items() if f.projected],
        "config": asdict(config),
        "figures": figures,
    }
    write_json(out / "compare.json", record)
    return record


def run_label(run) -> str:
    """Returns a short name for a run in figure titles (with its checkpoint when not the last)."""
    if run.checkpoint == "model.safetensors":
        return run.path.name
    return f"{run.path.name} ({Path(run.checkpoint).stem})"


def layers_for_b(model_b: nn.Module, config: CompareConfig) -> list[str]:
    """Returns B's layers: --layers-b, else --layers when B has them all, else B's defaults."""
    if config.layers_b:
        return check_layers(model_b, config.layers_b, "--layers-b")
    names = {n for n, _ in inner_model(model_b).named_modules()}
    if config.layers and all(name in names for name in config.layers):
        return list(config.layers)
    return default_layers(model_b)
