"""Models that are not netscope's, written the way researchers write them: a ResNet in
torchvision's layout (BatchNorm, one in-place ReLU module used twice per block, `out +=
identity`, downsample shortcuts) and a CNN whose activations and pooling are functions in
`forward`. Written here (torchvision does not import on the test machines)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: conv3×3-BN-ReLU-conv3×3-BN, plus the (downsampled) input."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet layout: a stem (conv, BN, ReLU, 3×3/2 max pool), stages of
    BasicBlocks whose width doubles and whose first block has stride 2 (from the second stage),
    global average pooling and a linear read-out."""

    def __init__(self, blocks=(2, 2, 2, 2), width=64, stem=7, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, stem, 2 if stem == 7 else 1, stem // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for stage, count in enumerate(blocks):
            cout, stride = width * 2**stage, 1 if stage == 0 else 2
            layer = [BasicBlock(cin, cout, stride)] + [
                BasicBlock(cout, cout) for _ in range(count - 1)
            ]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layer))
            cin = cout
        self.stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(self.stages):
            x = getattr(self, f"layer{stage + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def with_batch_norm_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Returns `model` in eval mode with BatchNorm statistics and affine weights as after
    training (not the identity of a fresh layer)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.rand(c, generator=generator) - 0.5)
            module.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(c, generator=generator))
            module.bias.data.copy_(torch.rand(c, generator=generator) - 0.5)
    return model.eval()


def tiny_resnet(seed: int = 0) -> ResNet:
    """A two-block residual network for 3×32×32 images: 436 parameters."""
    torch.manual_seed(seed)
    return with_batch_norm_statistics(ResNet(blocks=(1, 1), width=2, stem=3, classes=10), seed)


def resnet18(width: int = 64, classes: int = 1000, seed: int = 0) -> ResNet:
    """torchvision's ResNet-18 layout (width 64: 11.7 M parameters)."""
    torch.manual_seed(seed)
    return with_batch_norm_statistics(ResNet(width=width, classes=classes), seed)


class FunctionalCNN(nn.Module):
    """An MNIST CNN with its ReLUs and max pooling written as functions in `forward`."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5)
        self.conv2 = nn.Conv2d(4, 8, 5)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def sequential_twin(model: FunctionalCNN) -> nn.Sequential:
    """Returns the same network, with copies of the same weights, written as nn.Sequential."""
    conv1, conv2, fc = (copy.deepcopy(m) for m in (model.conv1, model.conv2, model.fc))
    return nn.Sequential(
        conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), fc
    ).eval()
