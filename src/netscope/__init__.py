"""netscope: train the classic deep-learning models on real image data and look inside them."""

from netscope.data import Dataset, load_dataset
from netscope.errors import NetscopeError
from netscope.models import Normalized, build_model
from netscope.run import Run, load_run

__all__ = [
    "Dataset",
    "NetscopeError",
    "Normalized",
    "Run",
    "build_model",
    "load_dataset",
    "load_run",
]
__version__ = "0.1.0"
