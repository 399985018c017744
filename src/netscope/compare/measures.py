"""The two measures, for every (layer of A, layer of B) pair on the same held-out images, both
computed exactly from each layer's N×N Gram matrix K = X Xᵀ over all its units (`features.py`).

- **Predictivity** (Yamins et al. 2014, PNAS; Yamins & DiCarlo 2016, Nat. Neurosci.): ridge
  regression from A's layer to each unit of B's layer, cross-validated over images (`folds`-fold);
  each unit's penalty is chosen by an inner leave-one-out cross-validation on the training folds
  only. The score is the median over B's units of the explained variance R² on held-out images
  (every image is predicted by a model that never saw it). Self-prediction is near perfect only
  when the training folds hold more images than the layer has dimensions.
- **Linear CKA** (Kornblith et al. 2019, ICML): a regression-free similarity of the two layers'
  image-by-image geometry, ⟨HKH, HLH⟩ / (‖HKH‖ ‖HLH‖) with the centring matrix H; 1 for
  identical layers (and under rotation or isotropic scaling).

Solver: ridge with an intercept in its dual form (kernel ridge on the centred Gram matrix of the
training images): one eigendecomposition per fold gives the exact leave-one-out error of every
penalty and every target unit in closed form (what scikit-learn's `RidgeCV(alpha_per_target=True)`
computes from the features, and equal to it; see tests), whatever the layer's width.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from netscope.compare.features import LayerFeatures, gram_of
from netscope.display import Shows
from netscope.errors import NetscopeError
from netscope.progress import progress_bar

# Penalties tried by the inner cross-validation, relative to the total variance of the training
# features (trace of the centred Gram matrix), so that one grid fits every layer whatever its scale.
RELATIVE_ALPHAS = np.logspace(-8, 1, 10)


def centred(gram: torch.Tensor) -> torch.Tensor:
    """Returns HKH: the Gram matrix of the responses minus their mean over images (float64)."""
    gram = gram.double()
    rows = gram.mean(0, keepdim=True)
    return gram - rows - rows.T + rows.mean()


def gram_cka(gram_x: torch.Tensor, gram_y: torch.Tensor) -> float:
    """Returns the linear CKA of two layers given their N×N Gram matrices; NaN when one of them
    does not vary over images."""
    x, y = centred(gram_x), centred(gram_y)
    norms = x.norm() * y.norm()
    return ((x * y).sum() / norms).item() if norms > 0 else float("nan")


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Returns the linear CKA (Kornblith et al. 2019) of two N × units matrices (rows = images);
    NaN when one of them does not vary over images."""
    if max(x.shape[1], y.shape[1]) > x.shape[0]:  # the N × N Gram matrices are the smaller
        return gram_cka(gram_of(x), gram_of(y))
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    norms = (x.T @ x).norm() * (y.T @ y).norm()
    return ((y.T @ x).square().sum() / norms).item() if norms > 0 else float("nan")


def cka_matrix(
    feats_a: dict[str, LayerFeatures], feats_b: dict[str, LayerFeatures]
) -> torch.Tensor:
    """Returns linear CKA for every (layer of A, layer of B) pair, rows = A's layers."""
    return torch.tensor(
        [[gram_cka(a.gram, b.gram) for b in feats_b.values()] for a in feats_a.values()],
        dtype=torch.float64,
    )


def explained_variance(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Returns R² = 1 − SS_residual / SS_total per column; NaN for columns that do not vary."""
    total = ((target - target.mean(0)) ** 2).sum(0)
    residual = ((target - predicted) ** 2).sum(0)
    scale = max(float(total.max(initial=0.0)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 1e-12 * scale, 1.0 - residual / total, np.nan)


def centred_kernels(gram: np.ndarray, train, test) -> tuple[np.ndarray, np.ndarray]:
    """Returns the training images' Gram matrix and the test × training inner products, both of
    the responses minus the training images' mean response (which fits the intercept)."""
    k_train, k_cross = gram[np.ix_(train, train)], gram[np.ix_(test, train)]
    means = k_train.mean(0)
    k_train = k_train - means[:, None] - means[None, :] + means.mean()
    return k_train, k_cross - k_cross.mean(1, keepdims=True) - means[None, :] + means.mean()


def dual_ridge(gram: np.ndarray, target: np.ndarray, train, test) -> np.ndarray:
    """Returns ridge predictions (with intercept) of `target` on the `test` images, fitted on the
    `train` images from the Gram matrix alone; each target column gets the penalty with the
    smallest leave-one-out error on the training images."""
    k_train, k_cross = centred_kernels(gram, train, test)
    y_mean = target[train].mean(0)
    y = target[train] - y_mean
    scale = max(np.trace(k_train), 1e-12)  # the total variance of the training responses
    eigval, eigvec = np.linalg.eigh(k_train)
    keep = eigval > eigval[-1] * len(train) * np.finfo(float).eps  # the rest is rounding noise
    eigval, eigvec = eigval[keep], eigvec[:, keep]
    projected, cross = eigvec.T @ y, k_cross @ eigvec
    best_error = np.full(target.shape[1], np.inf)
    predicted = np.empty((len(test), target.shape[1]))
    for alpha in RELATIVE_ALPHAS * scale:
        shrink = eigval / (eigval + alpha)
        leverage = 1.0 / len(train) + (eigvec**2) @ shrink  # diagonal of the hat matrix
        residual = y - eigvec @ (shrink[:, None] * projected)
        error = ((residual / (1.0 - leverage)[:, None]) ** 2).mean(0)
        better = error < best_error  # ties keep the smaller penalty, as RidgeCV does
        best_error[better] = error[better]
        weights = projected[:, better] / (eigval + alpha)[:, None]
        predicted[:, better] = cross @ weights + y_mean[better]
    return predicted


def ridge_predictions(
    gram: np.ndarray, target: np.ndarray, folds: int = 5, seed: int = 0, bar=None
) -> np.ndarray:
    """Returns out-of-fold ridge predictions of every column of `target` from the source layer's
    Gram matrix (rows = images); each fold's penalties come from leave-one-out CV on its training
    images alone."""
    from sklearn.model_selection import KFold

    predicted = np.empty_like(target)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(target):
        predicted[test] = dual_ridge(gram, target, train, test)
        if bar is not None:
            bar.update()
    return predicted


def gram_predictivity(
    gram: torch.Tensor, target: torch.Tensor, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Returns the held-out explained variance of each target unit (NaN for constant units)
    predicted from the source layer with Gram matrix `gram`."""
    k = gram.detach().cpu().double().numpy()
    y = target.detach().cpu().double().numpy()
    if len(k) != len(y):
        raise NetscopeError(f"source has {len(k)} images but target has {len(y)}")
    if len(k) < 2 * folds:
        raise NetscopeError(f"{len(k)} images are too few for {folds}-fold cross-validation")
    return explained_variance(y, ridge_predictions(k, y, folds, seed))


def ridge_predictivity(
    source: torch.Tensor, target: torch.Tensor, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Returns the held-out explained variance of each target unit (NaN for constant units)
    predicted from the source features (rows = images)."""
    return gram_predictivity(gram_of(source), target, folds, seed)


def predictivity_matrix(
    feats_a: dict[str, LayerFeatures],
    feats_b: dict[str, LayerFeatures],
    folds: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Returns the median held-out R² of B's units predicted from each of A's layers (rows = A).
    All of B's layers are fitted at once per fold, so the decomposition of A's Gram is shared."""
    targets = np.concatenate([b.units.cpu().double().numpy() for b in feats_b.values()], axis=1)
    edges = np.cumsum([0] + [b.units.shape[1] for b in feats_b.values()])
    rows = []
    with progress_bar(
        total=folds * len(feats_a), desc="ridge", disable=not progress, leave=False, file=sys.stderr
    ) as bar:
        for a in feats_a.values():
            gram = a.gram.cpu().double().numpy()
            r2 = explained_variance(targets, ridge_predictions(gram, targets, folds, seed, bar))
            rows.append([nanmedian(r2[lo:hi]) for lo, hi in zip(edges[:-1], edges[1:])])
    return torch.tensor(rows, dtype=torch.float64)


def nanmedian(values: np.ndarray) -> float:
    """Returns the median of the finite values, NaN when there are none."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


@dataclass
class Comparison(Shows):
    """Predictivity and CKA matrices (rows = layers of A, columns = layers of B)."""

    layers_a: list[str]
    layers_b: list[str]
    predictivity: torch.Tensor
    cka: torch.Tensor
    n_images: int
    units_a: dict[str, int] = field(default_factory=dict)
    units_b: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        def spread(matrix: torch.Tensor) -> str:
            finite = matrix[matrix.isfinite()]
            return f"{float(finite.min()):.2f}–{float(finite.max()):.2f}" if len(finite) else "–"

        return (
            f"Comparison({len(self.layers_a)} layers of A × {len(self.layers_b)} of B on "
            f"{self.n_images} images: predictivity {spread(self.predictivity)}, "
            f"CKA {spread(self.cka)})"
        )

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
    n_a = {len(f.gram) for f in feats_a.values()}
    n_b = {len(f.gram) for f in feats_b.values()}
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
