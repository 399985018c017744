"""netscope: train the classic deep-learning models on real image data and look inside them.

The names below load on first use, so that `import netscope.cli` (and `netscope --help`) does not
import torch.
"""

from importlib import import_module

from netscope.errors import NetscopeError

# name -> the module that defines it
_EXPORTS = {
    "Dataset": "netscope.data",
    "load_dataset": "netscope.data",
    "Normalized": "netscope.models",
    "build_model": "netscope.models",
    "Run": "netscope.run",
    "load_run": "netscope.run",
    "TrainConfig": "netscope.config",
    "show": "netscope.display",
}

__all__ = ["NetscopeError", *_EXPORTS]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'netscope' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
