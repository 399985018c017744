"""Benchmark rows for the representation measures: netscope's linear CKA and ridge predictivity
vs reference implementations, on real activations of the lecture CNN.

Activations: A = `relu1` (2048 units, the first `units` kept), B = `conv1` (18 432 units, `units`
drawn at random), on the first `n` MNIST test images (10 000 × 2 000 by default). Ridge
predicts B's first `targets` units (netscope's `compare` keeps 500 target units by default)."""

from __future__ import annotations

import numpy as np
import torch
from setups import Setup

from netscope.compare import RELATIVE_ALPHAS, linear_cka, ridge_predictivity
from netscope.inspect import activations


def lecture_activations(setup: Setup, images: torch.Tensor, units: int):
    """Returns (A, B): n × units activations of relu1 and of a random sample of conv1's units."""
    layers = [n for n, _ in setup.model.named_modules() if n.endswith(("conv1", "relu1"))]
    found = activations(setup.model, images, layers)
    a = next(v for k, v in found.items() if k.endswith("relu1")).flatten(1)[:, :units]
    b = next(v for k, v in found.items() if k.endswith("conv1")).flatten(1)
    pick = torch.randperm(b.shape[1], generator=torch.Generator().manual_seed(0))[:units]
    return a.cpu(), b[:, pick.to(b.device)].cpu()


def cka_by_definition(x: np.ndarray, y: np.ndarray) -> float:
    """Returns HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with the n × n Gram matrices K = XXᵀ,
    L = YYᵀ centred on both sides (Kornblith et al. 2019, eq. 3), in float64 numpy."""

    def centred_gram(z: np.ndarray) -> np.ndarray:
        gram = z @ z.T
        return gram - gram.mean(0) - gram.mean(1)[:, None] + gram.mean()

    k, l = centred_gram(x), centred_gram(y)
    return float((k * l).sum() / np.sqrt((k * k).sum() * (l * l).sum()))


def ridge_reference(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Returns held-out R² per target unit as a scikit-learn user writes it: cross_val_predict
    over the same shuffled folds with RidgeCV (same relative penalty grid, scaled once by the
    whole data's spread rather than per fold), then r2_score per unit."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict

    alphas = RELATIVE_ALPHAS * ((x - x.mean(0)) ** 2).sum()
    ridge = RidgeCV(alphas=alphas, alpha_per_target=True)
    predicted = cross_val_predict(ridge, x, y, cv=KFold(folds, shuffle=True, random_state=seed))
    return r2_score(y, predicted, multioutput="raw_values")


def cka_row(features):
    """Linear CKA of A and B: netscope (feature space, torch float64) vs the definition."""
    a, b = features

    def judge(name: str, value: float) -> dict:
        return {"cka": value}

    variants = {
        "netscope": lambda: linear_cka(a, b),
        "reference (HSIC definition, numpy)": lambda: cka_by_definition(
            a.double().numpy(), b.double().numpy()
        ),
    }
    return {"shape": [list(a.shape), list(b.shape)]}, variants, judge


def ridge_row(features, targets: int):
    """Ridge predictivity of B's units from A, 5-fold: netscope vs cross_val_predict(RidgeCV)."""
    a, b = features
    b = b[:, :targets]
    seen: dict[str, np.ndarray] = {}

    def judge(name: str, r2: np.ndarray) -> dict:
        seen.setdefault("netscope", r2)
        diff = np.abs(r2 - seen["netscope"])
        finite = np.isfinite(diff)
        return {"median_r2": float(np.nanmedian(r2)),
                "max_abs_diff_r2": float(diff[finite].max()) if finite.any() else None}  # fmt: skip

    variants = {
        "netscope": lambda: ridge_predictivity(a, b),
        "sklearn cross_val_predict(RidgeCV)": lambda: ridge_reference(
            a.double().numpy(), b.double().numpy()
        ),
    }
    return {"source": list(a.shape), "target": list(b.shape), "folds": 5}, variants, judge
