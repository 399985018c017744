"""The peer libraries, imported the way the benchmarks need them, and their versions.

torch-lucent 0.1.8 imports torchvision (only for `transforms.Normalize`, used when
`preprocess=True`) and IPython (only to show images in a notebook). torchvision cannot be
installed beside torch 2.13.0+cpu here (every wheel pins another torch), so `lucent()` puts two
empty stand-in modules in `sys.modules` before the import; the benchmark calls lucent with
`preprocess=False` and `show_image=False`, so neither stand-in is ever used. Nothing else of lucent
is changed.
"""

from __future__ import annotations

import importlib
import sys
import types

import torch
from torch import nn

PEERS = ("torchattacks", "foolbox", "art", "captum", "lucent", "sklearn")


def lucent():
    """Returns the modules (render, param, objectives) of torch-lucent."""
    if "torchvision" not in sys.modules:
        torchvision = types.ModuleType("torchvision")
        torchvision.transforms = types.ModuleType("torchvision.transforms")
        torchvision.transforms.Normalize = None  # only used with preprocess=True
        sys.modules |= {
            "torchvision": torchvision,
            "torchvision.transforms": torchvision.transforms,
        }
    if "IPython" not in sys.modules:
        ipython = types.ModuleType("IPython")
        ipython.display = types.ModuleType("IPython.display")
        sys.modules |= {"IPython": ipython, "IPython.display": ipython.display}
    from lucent.optvis import objectives, param, render

    return render, param, objectives


def art_classifier(model: nn.Module, shape: tuple[int, ...], num_classes: int, device):
    """Returns ART's PyTorchClassifier around a pixel model (inputs clipped to [0, 1])."""
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=shape,
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu",
    )


def versions() -> dict[str, str]:
    """Returns the version of torch and of every peer that imports."""
    found = {"torch": torch.__version__}
    for name in PEERS:
        try:
            module = lucent()[0] if name == "lucent" else importlib.import_module(name)
            root = importlib.import_module(module.__name__.split(".")[0])
            found[name] = getattr(root, "__version__", "?")
        except ImportError as err:
            found[name] = f"missing ({err})"
    return found
