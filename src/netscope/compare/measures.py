"""The two measures, for every (layer of A, layer of B) pair on the same held-out images.

- **Predictivity** (Yamins et al. 2014, PNAS; Yamins & DiCarlo 2016, Nat. Neurosci.): ridge
  regression from A's layer to each unit of B's layer, cross-validated over images (`folds`-fold);
  each unit's penalty is chosen by an inner leave-one-out cross-validation on the training folds
  only. The score is the median over B's units of the explained variance R² on held-out images
  (every image is predicted by a model that never saw it). Self-prediction is near perfect only
  when the training folds hold more images than the layer has dimensions.
- **Linear CKA** (Kornblith et al. 2019, ICML): a regression-free similarity of the two layers'
  image-by-image geometry; 1 for identical layers (and under rotation or isotropic scaling).

Solver: scikit-learn's `RidgeCV` (cv=None, alpha_per_target=True). It decomposes the training
features once and gets the exact leave-one-out error of every penalty and every target unit in
closed form, so the inner cross-validation costs about as much as a single fit; it is well tested
and runs in float64. CKA is a few matrix products in torch, on the features' device.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from netscope.compare.features import LayerFeatures
from netscope.errors import NetscopeError
from netscope.progress import progress_bar

# Penalties tried by the inner cross-validation, relative to the total variance of the training
# features (trace of Xc^T Xc), so that one grid fits every layer whatever its scale.
RELATIVE_ALPHAS = np.logspace(-8, 1, 10)


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
    with progress_bar(
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
