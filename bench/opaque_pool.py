"""Max-pooling as custom operators Inductor cannot look into (bench/cpu_step.py).

Compiled, the lecture step spends most of its time in Inductor's own C++ loops for max_pool2d
with indices and its backward (RESULTS.md §13), where eager PyTorch calls ATen's kernels. These
two operators wrap ATen's forward (with indices) and the scatter back to the arg-max positions
(`max_unpool2d`: the windows do not overlap, so it equals the pooling backward bit for bit), so
a compiled model that uses `LecturePoolsOpaque` keeps ATen's pooling and lets Inductor fuse the
rest (ReLU, loss, SGD).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from netscope.models import LectureCNN


def _like(x: Tensor, shape, dtype=None) -> Tensor:
    """Returns an empty tensor of `shape` in x's memory format (channels_last or contiguous)."""
    empty = x.new_empty(shape, dtype=dtype or x.dtype)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return empty.to(memory_format=torch.channels_last) if channels_last else empty


@torch.library.custom_op("netscope_bench::max_pool", mutates_args=())
def max_pool(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Returns ATen's max_pool2d(x, k) and its arg-max indices."""
    return F.max_pool2d(x, k, return_indices=True)


@max_pool.register_fake
def _(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    shape = (*x.shape[:2], x.shape[2] // k, x.shape[3] // k)
    return _like(x, shape), _like(x, shape, torch.int64)


@torch.library.custom_op("netscope_bench::unpool", mutates_args=())
def unpool(grad: Tensor, where: Tensor, k: int, like: Tensor) -> Tensor:
    """Returns `grad` placed at the arg-max positions in a zero tensor shaped like `like`."""
    return F.max_unpool2d(grad, where, k, output_size=like.shape[-2:])


@unpool.register_fake
def _(grad: Tensor, where: Tensor, k: int, like: Tensor) -> Tensor:
    return _like(like, like.shape)


def _backward(ctx, grad: Tensor, _grad_where: Tensor):
    return unpool(grad, ctx.where, ctx.k, ctx.like), None


def _setup(ctx, inputs, output) -> None:
    x, ctx.k = inputs
    ctx.where, ctx.like = output[1], x


max_pool.register_autograd(_backward, setup_context=_setup)


class LecturePoolsOpaque(nn.Module):
    """The lecture CNN with both max-pools run by the `max_pool` operator; shares `model`'s
    parameters."""

    def __init__(self, model: LectureCNN):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        m = self.model
        x = m.relu1(max_pool(m.conv1(x), 3)[0])
        x = m.relu2(max_pool(m.conv2(x), 2)[0])
        return m.fc2(m.relu3(m.fc1(m.flatten(x))))
