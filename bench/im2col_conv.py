"""conv1 of the lecture CNN as one matrix product (im2col), in float32 (bench/cpu_step.py).

conv1 has one input channel, so its 5×5 patches are rows of 25 numbers: gathering them once as an
(N·24·24)×25 matrix P turns the forward pass into P·Wᵀ + b, whose (N·24·24)×32 result already is
the NHWC (channels_last) output, and the weight gradient into Gᵀ·P with G the output gradient
read as a matrix without copying. The same products and sums as the convolution, in another
order: equal in exact arithmetic, not bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

from netscope.models import LectureCNN


class Im2colConv(torch.autograd.Function):
    """conv2d(x, weight, bias) for one input channel and stride 1, as a BLAS matrix product."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # noqa: D102
        n, _, height, width = x.shape
        k = weight.shape[-1]
        h, w = height - k + 1, width - k + 1
        patches = x.reshape(n, height, width).unfold(1, k, 1).unfold(2, k, 1).reshape(-1, k * k)
        out = torch.addmm(bias, patches, weight.reshape(len(weight), -1).t())
        ctx.save_for_backward(patches)
        ctx.weight_shape = weight.shape
        return out.view(n, h, w, -1).permute(0, 3, 1, 2)  # a channels_last N×C×H×W tensor

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        (patches,) = ctx.saved_tensors
        grad = grad_out.permute(0, 2, 3, 1).reshape(-1, ctx.weight_shape[0])
        return None, (grad.t() @ patches).view(ctx.weight_shape), grad.sum(0)


class Im2colLectureCNN(nn.Module):
    """The lecture CNN with conv1 run by `Im2colConv`; it shares `model`'s parameters."""

    def __init__(self, model: LectureCNN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.relu1(m.pool1(Im2colConv.apply(x, m.conv1.weight, m.conv1.bias)))
        x = m.relu2(m.pool2(m.conv2(x)))
        return m.fc2(m.relu3(m.fc1(m.flatten(x))))
