"""Live logging for TensorBoard (`netscope train --tensorboard`): after every epoch, its numbers
(the columns of metrics.jsonl) and the first convolutional layer's filters as an image, into
RUN/tensorboard/. metrics.jsonl stays the record netscope itself reads; this is for watching a
training with `tensorboard --logdir RUN`. Needs the optional `tensorboard` package.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from netscope.config import TrainConfig
from netscope.errors import NetscopeError

SCALARS = ("train_loss", "test_error_pct", "epoch_s")  # the metrics.jsonl columns logged


def summary_writer_class() -> type:
    """Returns torch's SummaryWriter, or raises NetscopeError saying how to install tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise NetscopeError(
            "--tensorboard needs the tensorboard package, which is not installed "
            "(pip install tensorboard)"
        ) from None
    return SummaryWriter


def check_tensorboard(config: TrainConfig) -> None:
    """Raises NetscopeError before any training when --tensorboard cannot write its logs."""
    if config.tensorboard:
        summary_writer_class()


class EpochLog:
    """Writes each finished epoch to RUN/tensorboard/ when enabled; does nothing otherwise."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.writer = (
            summary_writer_class()(str(Path(run_dir) / "tensorboard")) if enabled else None
        )

    def __call__(self, model: nn.Module, row: dict) -> None:
        if self.writer is None:
            return
        for name in SCALARS:
            self.writer.add_scalar(name, row[name], row["epoch"])
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if conv is not None:
            self.writer.add_image("conv1_filters", filter_grid(conv.weight), row["epoch"])
        self.writer.flush()  # visible to a running TensorBoard now, and safe if training dies

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def filter_grid(weight: torch.Tensor, columns: int = 8, zoom: int = 8) -> torch.Tensor:
    """Returns a conv layer's kernels tiled in a grid as a C×H×W image in [0, 1]: mid grey is 0,
    one shared scale; RGB for 3 input channels, otherwise the first input channel."""
    kernels = weight.detach().float().cpu()
    kernels = kernels[:, :3] if kernels.shape[1] == 3 else kernels[:, :1]
    kernels = 0.5 + kernels / (2 * kernels.abs().max().clamp_min(1e-12))
    count, channels, height, width = kernels.shape
    rows = -(-count // columns)
    grid = torch.ones(channels, rows * (height + 1) + 1, columns * (width + 1) + 1)
    for k, kernel in enumerate(kernels):
        top, left = 1 + (k // columns) * (height + 1), 1 + (k % columns) * (width + 1)
        grid[:, top : top + height, left : left + width] = kernel
    return grid.repeat_interleave(zoom, 1).repeat_interleave(zoom, 2)
