"""Compare the representations of two networks (or a network and recorded responses) layer by
layer: ridge predictivity (Yamins & DiCarlo) and linear CKA (Kornblith et al. 2019).

    features.py   a layer's responses to N images (the shared layer capture): its exact Gram matrix
                  and a sample of its units, in bounded memory
    measures.py   CKA and cross-validated ridge predictivity from the Gram matrices
    plots.py      the two heat maps
    pipeline.py   `netscope compare`: compare.json and the figures
"""

from netscope.compare.features import (
    LayerFeatures,
    default_layers,
    layer_features,
    response_features,
)
from netscope.compare.measures import (
    Comparison,
    cka_matrix,
    compare_features,
    gram_cka,
    gram_predictivity,
    linear_cka,
    predictivity_matrix,
    ridge_predictivity,
)
from netscope.compare.pipeline import CompareConfig, compare_models, run_compare
from netscope.compare.plots import plot_heatmap, save_heatmaps

__all__ = [
    "CompareConfig",
    "Comparison",
    "LayerFeatures",
    "cka_matrix",
    "compare_features",
    "compare_models",
    "default_layers",
    "gram_cka",
    "gram_predictivity",
    "layer_features",
    "linear_cka",
    "plot_heatmap",
    "predictivity_matrix",
    "response_features",
    "ridge_predictivity",
    "run_compare",
    "save_heatmaps",
]
