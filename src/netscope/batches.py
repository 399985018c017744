"""What the trainer feeds the model: the data set as normalised tensors on the training device,
each epoch's batch order and shifts, seeded by (seed, epoch) so that a resumed run sees the same
batches as an uninterrupted one, and how many steps a data set gets (and whether they sufficed)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from netscope.config import DEFAULT_MIN_STEPS, TrainConfig
from netscope.data import Dataset
from netscope.run import near_chance


@dataclass
class Tensors:
    """The data set as normalised float tensors on the training device."""

    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor
    black: torch.Tensor  # a black pixel, normalised: one value per channel


def memory_format(config: TrainConfig) -> torch.memory_format:
    """Returns the memory format images and convolution weights are kept in."""
    return torch.channels_last if config.channels_last else torch.contiguous_format


def to_device(dataset: Dataset, config: TrainConfig, device: torch.device) -> Tensors:
    """Returns the (limited) data set normalised, on `device`, in the configured memory format."""
    train_n = config.train_limit or len(dataset.train_images)
    test_n = config.test_limit or len(dataset.test_images)

    def prepare(images: torch.Tensor) -> torch.Tensor:
        inputs = dataset.normalize(images.to(device))
        return inputs.contiguous(memory_format=memory_format(config))

    return Tensors(
        prepare(dataset.train_images[:train_n]),
        dataset.train_labels[:train_n].to(device),
        prepare(dataset.test_images[:test_n]),
        dataset.test_labels[:test_n].to(device),
        dataset.normalize(torch.zeros(1, len(dataset.mean), 1, 1, device=device)).flatten(),
    )


def epoch_order(
    config: TrainConfig, epoch: int, n: int, device: torch.device
) -> torch.Tensor | None:
    """Returns the sample order for `epoch` (None: in order); seeded by (seed, epoch) so a resumed
    run sees the same batches as an uninterrupted one."""
    if not config.shuffle:
        return None
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def epoch_shifts(config: TrainConfig, epoch: int, n: int) -> torch.Tensor:
    """Returns the (dy, dx) shift of the image at each of the epoch's n positions, n×2 in
    [-shift, shift] on the CPU; seeded by (seed, epoch) apart from the order, so resuming repeats
    them."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 50_000)
    span = 2 * config.shift + 1
    return torch.randint(span, (n, 2), generator=generator) - config.shift


def steps_per_epoch(config: TrainConfig, dataset: Dataset) -> int:
    """Returns how many optimiser steps one epoch over the (limited) training set takes."""
    n = len(dataset.train_images)
    return math.ceil(min(n, config.train_limit or n) / config.batch_size)


def with_min_steps(config: TrainConfig, dataset: Dataset) -> TrainConfig:
    """Returns `config` with enough epochs for at least `config.min_steps` steps on `dataset`."""
    epochs = math.ceil(config.min_steps / steps_per_epoch(config, dataset))
    return dataclasses.replace(config, epochs=max(config.epochs, epochs))


def chance_warning(error_pct: float, config: TrainConfig, dataset: Dataset) -> str | None:
    """Returns what to tell the user when a training ended near chance (None: it learned)."""
    classes = len(dataset.classes)
    if not near_chance(error_pct, classes):
        return None
    # twice as long, and at least as long as the default rule trains on data other than MNIST
    epochs = max(2 * config.epochs, math.ceil(DEFAULT_MIN_STEPS / steps_per_epoch(config, dataset)))
    return (
        f"training did not learn: test error {error_pct:.2f} % is near chance "
        f"({100 * (1 - 1 / classes):.2f} % for {classes} classes): try --recipe fast / "
        f"--epochs {epochs}"
    )
