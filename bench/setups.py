"""The two models every benchmark runs on, with their images and per-model budgets.

- "lecture": the trained lecture CNN (a run directory, default $NETSCOPE_TEST_RUN) on the first
  MNIST test images, 1×28×28, 10 classes, labels = the true digits.
- "resnet": a ResNet-18-style network (He et al. 2016: 7×7 stem, four stages of two basic blocks,
  64–512 maps, global average pooling), **randomly initialised** (seeded), in eval mode, on real
  photographs from scikit-image (random crops and flips), 3×size×size, any number of classes,
  labels = the model's own predictions. Random weights are fine for speed; its success rates and
  maps say nothing about a trained ImageNet model.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from netscope import load_run
from netscope.inspect import PHOTOS, load_photo
from netscope.models import BasicBlock, Normalized

DEFAULT_RUN = os.environ.get("NETSCOPE_TEST_RUN", "/work/wt/lecture_run")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Setup:
    """A model in pixel space [0, 1], its images and labels, and the budget of every row."""

    name: str
    model: nn.Module
    images: torch.Tensor  # N×C×H×W in [0, 1]
    labels: torch.Tensor  # N
    heldout: torch.Tensor  # M×C×H×W: held-out images for the universal perturbation's rate
    eps_linf: float
    eps_l2: float
    steps: int  # PGD steps
    batch: int  # path points / occluded images per forward (IG, occlusion)
    window: int  # occlusion window; its half must be a multiple of the stride (see rows_inspect)
    stride: int
    classes: int  # number of class models optimised together
    xi: float  # universal perturbation's L2 bound

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        with torch.no_grad():
            return self.model(self.images[:1]).shape[1]


def resnet18(num_classes: int = 1000) -> nn.Module:
    """Returns a ResNet-18-style network for 3×H×W images (H, W ≥ 32), randomly initialised."""
    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
    layers, channels = stem + [nn.MaxPool2d(3, 2, 1)], 64
    for stage, width in enumerate((64, 128, 256, 512)):
        for index in range(2):
            layers.append(BasicBlock(channels, width, 2 if stage and not index else 1))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def photo_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Returns n×3×size×size real photographs: random crops (half to all of each side) of the
    scikit-image photos, resized and randomly flipped."""
    generator = torch.Generator().manual_seed(seed)
    photos = [load_photo(name, (3, 2 * size, 2 * size))[0] for name in PHOTOS]
    images = []
    for i in range(n):
        photo = photos[i % len(photos)]
        side = int(torch.randint(size, 2 * size + 1, (1,), generator=generator))
        top, left = torch.randint(0, 2 * size - side + 1, (2,), generator=generator).tolist()
        crop = photo[:, top : top + side, left : left + side][None]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True)[0]
        images.append(crop.flip(2) if torch.rand(1, generator=generator) < 0.5 else crop)
    return torch.stack(images).clamp(0, 1)


def lecture_setup(run: str, n: int, heldout: int, device: torch.device) -> Setup:
    """Returns the lecture CNN on the first n MNIST test images (and the next `heldout`)."""
    loaded = load_run(run)
    model = loaded.pixel_model().to(device).eval()
    dataset = loaded.load_dataset()
    pixels = dataset.test_images[: n + heldout].float().div(255).to(device)
    labels = dataset.test_labels[:n].to(device)
    return Setup(
        "lecture", model, pixels[:n], labels, pixels[n:], 0.1, 1.0, 40, 1024, 7, 1, 10, 4.0
    )


def resnet_setup(
    n: int, heldout: int, size: int, num_classes: int, device: torch.device, batch: int = 32
) -> Setup:
    """Returns the random ResNet-18-style model on n photos of size×size (and `heldout` more)."""
    torch.manual_seed(0)
    model = Normalized(resnet18(num_classes), IMAGENET_MEAN, IMAGENET_STD).to(device).eval()
    pixels = photo_batch(n + heldout, size).to(device)
    with torch.no_grad():
        labels = model(pixels[:n]).argmax(1)
    window = max(2, size // 7) // 2 * 2  # even, so that its half is the stride
    return Setup("resnet", model, pixels[:n], labels, pixels[n:], 8 / 255, 3.0, 10, batch,
                 window, window // 2, 4, 10.0)  # fmt: skip


def warm_up(setup: Setup) -> None:
    """Runs one forward and backward pass and one Adam step (its first step imports more of
    torch), so that no measured call pays for first-call set-up."""
    x = setup.images[:2].clone().requires_grad_(True)
    setup.model(x).sum().backward()
    torch.optim.Adam([x]).step()
    setup.model.zero_grad(set_to_none=True)


def limit_dataset(dataset, n: int):
    """Returns the data set with only its first n training and n test images (0: all of them),
    for smoke tests of the training benchmarks."""
    if not n:
        return dataset
    return dataclasses.replace(
        dataset, train_images=dataset.train_images[:n], train_labels=dataset.train_labels[:n],
        test_images=dataset.test_images[:n], test_labels=dataset.test_labels[:n])  # fmt: skip
