"""The lecture's networks, a registry to build them by name, and a layer-by-layer summary.

Every model takes inputs normalised by the data set's mean/std. Analysis code works on pixels in
[0, 1] instead and wraps a model in `Normalized`, so perturbation sizes mean the same for all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from netscope.errors import NetscopeError


class Normalized(nn.Module):
    """A model that takes pixels in [0, 1] and normalises them before calling `model`."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


class LectureCNN(nn.Module):
    """The lecture's MNIST network: conv5×32 → maxpool3 → relu → conv5×64 → maxpool2 → relu →
    fc200 → relu → fc10 (28×28 input: 24 → 8 → 4 → 2, so fc1 sees 64·2·2 = 256 features)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=5)
        self.pool1 = nn.MaxPool2d(3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.pool2 = nn.MaxPool2d(2)
        self.relu2 = nn.ReLU()
        side = ((image_size - 4) // 3 - 4) // 2
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * side * side, 200)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(200, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.pool1(self.conv1(x)))
        x = self.relu2(self.pool2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))


ModelFactory = Callable[..., nn.Module]
REGISTRY: dict[str, ModelFactory] = {"lecture_cnn": LectureCNN}


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Returns a decorator that adds a model factory to the registry under `name`."""

    def add(factory: ModelFactory) -> ModelFactory:
        REGISTRY[name] = factory
        return factory

    return add


def build_model(
    name: str, in_channels: int = 1, num_classes: int = 10, image_size: int = 28
) -> nn.Module:
    """Returns a freshly initialised model from the registry."""
    if name not in REGISTRY:
        raise NetscopeError(f"unknown model {name!r} (expected one of {sorted(REGISTRY)})")
    return REGISTRY[name](in_channels=in_channels, num_classes=num_classes, image_size=image_size)


@dataclass
class LayerInfo:
    """One row of a model summary."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Returns name, type, output shape (without batch) and parameter count of each leaf layer."""
    rows: list[LayerInfo] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def record(mod, _inputs, output, name=name):
                params = sum(p.numel() for p in mod.parameters(recurse=False))
                rows.append(LayerInfo(name, type(mod).__name__, tuple(output.shape[1:]), params))

            hooks.append(module.register_forward_hook(record))
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def format_summary(rows: list[LayerInfo]) -> str:
    """Returns the summary as a fixed-width text table with a total parameter count."""
    lines = [f"{'layer':<16}{'type':<14}{'output':<18}{'params':>10}"]
    for row in rows:
        shape = "×".join(str(s) for s in row.output_shape)
        lines.append(f"{row.name:<16}{row.kind:<14}{shape:<18}{row.parameters:>10,}")
    lines.append(f"{'total':<48}{sum(r.parameters for r in rows):>10,}")
    return "\n".join(lines)
