"""The lecture's networks, a registry to build them by name, and a layer-by-layer summary.

Besides the lecture CNN: LeNet-5 in its 1998 form, AlexNet-, VGG- and ResNet-style networks sized
for CIFAR-10's 32×32 inputs, and multi-layer perceptrons. `flops` counts multiply-adds per image.

Every model takes inputs normalised by the data set's mean/std. Analysis code works on pixels in
[0, 1] instead and wraps a model in `Normalized`, so perturbation sizes mean the same for all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


class MLP(nn.Module):
    """A multi-layer perceptron on flattened images: Linear → activation per hidden layer, then a
    linear read-out to `num_classes` logits."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int = 10):
        super().__init__()
        widths = (in_features, *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ---------------------------------------------------------------- LeNet-5 (LeCun et al. 1998)

# Table I of the paper: which of S2's six maps each of C3's sixteen maps reads.
LENET_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class ScaledTanh(nn.Module):
    """LeNet-5's squashing function f(a) = 1.7159 tanh(2a/3) (the paper's Appendix A)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2 / 3))


class Subsample(nn.Module):
    """LeNet-5's S-layer: the sum of each 2×2 block times a trainable coefficient plus a
    trainable bias, one pair per map (2 parameters per map)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 0.25))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_sum = F.avg_pool2d(x, 2) * 4
        return block_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def multiply_adds(self, output: torch.Tensor) -> int:
        return output[0].numel() * 4


class PartialConv(nn.Module):
    """A 5×5 convolution in which output map j reads only the input maps `table[j]` (C3)."""

    def __init__(self, table: tuple[tuple[int, ...], ...], in_channels: int, kernel_size: int = 5):
        super().__init__()
        pairs = [(out, inp) for out, inputs in enumerate(table) for inp in inputs]
        self.register_buffer("pairs", torch.tensor(pairs, dtype=torch.long), persistent=False)
        self.in_channels, self.out_channels = in_channels, len(table)
        fan_in = max(len(inputs) for inputs in table) * kernel_size**2
        bound = fan_in**-0.5
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        nn.init.uniform_(self.weight, -bound, bound)
        self.bias = nn.Parameter(torch.zeros(len(table)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.weight.shape[-1]
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, size, size)
        dense = dense.index_put((self.pairs[:, 0], self.pairs[:, 1]), self.weight)
        return F.conv2d(x, dense, self.bias)

    def multiply_adds(self, output: torch.Tensor) -> int:
        return output.shape[-1] * output.shape[-2] * self.weight.numel()


class EuclideanRBF(nn.Module):
    """LeNet-5's output layer: logit_i = −‖x − c_i‖² for fixed ±1 codes c_i. The paper drew the
    codes as 7×12 bitmaps of the characters; here they are fixed random ±1 codes (seeded), so
    softmax cross-entropy on these logits is the paper's MAP criterion without its constant."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        generator = torch.Generator().manual_seed(1998)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=generator) * 2.0 - 1
        self.register_buffer("codes", codes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -((x.unsqueeze(1) - self.codes) ** 2).sum(-1)

    def multiply_adds(self, output: torch.Tensor) -> int:
        return self.codes.numel()


class LeNet5(nn.Module):
    """LeNet-5 as in LeCun, Bottou, Bengio & Haffner (1998): 32×32 input → C1 conv5 ×6 → S2
    trainable subsampling → C3 conv5 ×16 on Table I's partial connections → S4 → C5 conv5 ×120 →
    F6 84 → Euclidean RBF output, with the scaled tanh after every layer up to F6. 60,000 trainable
    parameters. Smaller inputs (MNIST's 28×28) are padded to 32×32 by repeating the border."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        if image_size > 32:
            raise NetscopeError(f"lenet5: image_size {image_size}: expected at most 32")
        margin = 32 - image_size
        self.pad = nn.ReplicationPad2d((margin // 2, margin - margin // 2) * 2)
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.act1 = ScaledTanh()
        self.s2 = Subsample(6)
        self.act2 = ScaledTanh()
        self.c3 = PartialConv(LENET_C3_TABLE, in_channels=6)
        self.act3 = ScaledTanh()
        self.s4 = Subsample(16)
        self.act4 = ScaledTanh()
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.act5 = ScaledTanh()
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(120, 84)
        self.act6 = ScaledTanh()
        self.output = EuclideanRBF(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.s2(self.act1(self.c1(self.pad(x)))))
        x = self.act4(self.s4(self.act3(self.c3(x))))
        x = self.flatten(self.act5(self.c5(x)))
        return self.output(self.act6(self.f6(x)))


# ---------------------------------------------------------------- CIFAR-10-sized networks


def conv_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> list[nn.Module]:
    """Returns [conv (same padding), ReLU]."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    return [conv, nn.ReLU()]


class AlexNetCifar(nn.Module):
    """AlexNet (Krizhevsky et al. 2012) scaled to 32×32: five convolutions with AlexNet's widths
    64-192-384-256-256 and ReLU, a strided first convolution and overlapping 3×3/2 max pooling
    (as AlexNet shrinks 224² to 13² early), dropout, and three fully connected layers
    (1024-1024-classes instead of 4096-4096-1000)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        pool = dict(kernel_size=3, stride=2, padding=1)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool2d(**pool),
            *conv_relu(64, 192, 5), nn.MaxPool2d(**pool),
            *conv_relu(192, 384), *conv_relu(384, 256), *conv_relu(256, 256),
            nn.MaxPool2d(**pool),
        )  # fmt: skip
        side = math.ceil(image_size / 16)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(256 * side * side, 1024),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(1024, 1024),
            nn.ReLU(),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


VGG11_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGGCifar(nn.Module):
    """VGG (Simonyan & Zisserman 2015) configuration A (VGG-11) for 32×32 inputs: 3×3
    convolutions with batch norm and ReLU, 2×2 max pooling, and one linear layer on the 512
    features left after five poolings (the usual CIFAR-10 form of VGG)."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int = 32,
        layout: tuple = VGG11_LAYOUT,
    ):
        super().__init__()
        pools = layout.count("M")
        if image_size < 2**pools:
            raise NetscopeError(
                f"vgg: image_size {image_size}: expected at least {2**pools} (pad MNIST to 32×32)"
            )
        layers: list[nn.Module] = []
        channels = in_channels
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            conv = nn.Conv2d(channels, item, 3, padding=1, bias=False)
            layers += [conv, nn.BatchNorm2d(item), nn.ReLU()]
            channels = item
        self.features = nn.Sequential(*layers)
        side = image_size // 2**pools
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * side * side, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity shortcut (ResNet's basic block); when the block
    halves the map and doubles the width, the shortcut is a strided 1×1 conv with batch norm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(residual + self.shortcut(x))


class ResNetCifar(nn.Module):
    """ResNet for CIFAR-10 as in He et al. (2016), section 4.2: a 3×3 conv with 16 maps, then three
    stages of n basic blocks with 16, 32 and 64 maps on 32², 16² and 8² grids, global average
    pooling and a linear layer: 6n + 2 weighted layers (n = 3: ResNet-20, 0.27 M parameters)."""

    def __init__(
        self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32, n: int = 3
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        blocks, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for index in range(n):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.blocks(self.stem(x)))))


ModelFactory = Callable[..., nn.Module]
REGISTRY: dict[str, ModelFactory] = {"lecture_cnn": LectureCNN}


def register(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Returns a decorator that adds a model factory to the registry under `name`."""

    def add(factory: ModelFactory) -> ModelFactory:
        REGISTRY[name] = factory
        return factory

    return add


@register("mlp")
def mlp(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> MLP:
    """Returns LeCun et al. (1998)'s 2-layer net: one hidden layer of 300 ReLU units."""
    return MLP(in_channels * image_size**2, (300,), num_classes)


@register("mlp_300_100")
def mlp_300_100(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> MLP:
    """Returns LeCun et al. (1998)'s 3-layer net: hidden layers of 300 and 100 ReLU units."""
    return MLP(in_channels * image_size**2, (300, 100), num_classes)


register("lenet5")(LeNet5)
register("alexnet_cifar")(AlexNetCifar)
register("vgg11_cifar")(VGGCifar)
register("resnet20_cifar")(ResNetCifar)


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
    multiply_adds: int = 0  # per image


def layer_multiply_adds(module: nn.Module, output: torch.Tensor) -> int:
    """Returns the multiply-adds `module` spent on one image to produce `output` (batch of 1);
    0 for layers without weights to multiply by (activations, pooling, batch norm)."""
    if isinstance(module, nn.Conv2d):
        kernel = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output[0].numel() * kernel
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    if hasattr(module, "multiply_adds"):
        return int(module.multiply_adds(output))
    return 0


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Returns name, type, output shape (without batch), parameters and multiply-adds per image
    of each leaf layer."""
    rows: list[LayerInfo] = []
    hooks = []
    for name, module in model.named_modules():
        if not list(module.children()):  # leaves (the model itself when it has none)
            name = name or type(module).__name__

            def record(mod, _inputs, output, name=name):
                params = sum(p.numel() for p in mod.parameters(recurse=False))
                macs = layer_multiply_adds(mod, output)
                shape = tuple(output.shape[1:])
                rows.append(LayerInfo(name, type(mod).__name__, shape, params, macs))

            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()  # a batch of one must not update batch-norm statistics
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return rows


def flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Returns the multiply-adds of one forward pass on one image of `input_shape` (C×H×W) in the
    convolutional and linear layers. Counted as the VGG and ResNet papers count "FLOPs": one
    multiply-add is one FLOP (ResNet-50: 3.8 × 10⁹ at 224×224)."""
    return sum(row.multiply_adds for row in summary(model, input_shape))


def format_summary(rows: list[LayerInfo]) -> str:
    """Returns the summary as a fixed-width text table with a total parameter count."""
    lines = [f"{'layer':<16}{'type':<14}{'output':<18}{'params':>10}"]
    for row in rows:
        shape = "×".join(str(s) for s in row.output_shape)
        lines.append(f"{row.name:<16}{row.kind:<14}{shape:<18}{row.parameters:>10,}")
    lines.append(f"{'total':<48}{sum(r.parameters for r in rows):>10,}")
    return "\n".join(lines)
