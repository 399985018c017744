"""Look inside a trained network: filters, receptive fields and top patches, occlusion, saliency
and integrated gradients, class-model images, Deep Dream and morphing (`STAGES`, in the order
`netscope inspect` runs them).

Every function takes a model that maps pixels in [0, 1] (N×C×H×W, any device) to logits, e.g.
`run.pixel_model()` or any user `nn.Module`, and returns tensors on the inputs' device.
"""

from netscope.inspect.classmodel import ClassModels, class_models
from netscope.inspect.config import InspectConfig
from netscope.inspect.dream import deep_dream
from netscope.inspect.filters import conv_layers, filters
from netscope.inspect.growth import Growth, unit_growth
from netscope.inspect.hooks import activations, layer_names, resolve_layer
from netscope.inspect.morph import Morph, morph
from netscope.inspect.occlusion import occlusion
from netscope.inspect.optimise import Regulariser
from netscope.inspect.photos import PHOTOS, load_photo
from netscope.inspect.pipeline import STAGES, run_inspect
from netscope.inspect.projection import Projections, project, top_projections
from netscope.inspect.receptive import (
    ReceptiveField,
    TopPatches,
    receptive_field,
    recompute_on_canvas,
    top_patches,
)
from netscope.inspect.saliency import integrated_gradients, saliency
from netscope.inspect.stage import Stage
from netscope.inspect.units import UnitImages, visualise_units

__all__ = [
    "PHOTOS",
    "STAGES",
    "Stage",
    "ClassModels",
    "Growth",
    "InspectConfig",
    "Morph",
    "Projections",
    "ReceptiveField",
    "Regulariser",
    "TopPatches",
    "UnitImages",
    "activations",
    "class_models",
    "conv_layers",
    "deep_dream",
    "filters",
    "integrated_gradients",
    "layer_names",
    "load_photo",
    "morph",
    "occlusion",
    "project",
    "receptive_field",
    "recompute_on_canvas",
    "resolve_layer",
    "run_inspect",
    "saliency",
    "top_patches",
    "top_projections",
    "unit_growth",
    "visualise_units",
]
