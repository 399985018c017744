"""The lecture CNN's conv → max-pool → ReLU block as one autograd Function (bench/cpu_step.py).

Autograd records three nodes per block (convolution, max-pool with indices, ReLU), each with its
own output and its own gradient buffer. `ConvPoolReLU` runs the same three kernels, keeps only
what the backward pass needs (input, weight, pool indices, the block's output) and applies the
ReLU in place on the pooled tensor, so the block allocates its output once; the backward pass
masks the incoming gradient with the output (the ReLU's gradient), routes it to the arg-max
positions (max-pool's gradient) and calls oneDNN's convolution backward once.

With `bias_after_pool=True` the bias is added after the max-pool instead of inside the
convolution: max_i(a_i + b) = max_i(a_i) + b for a per-channel constant b, and rounding a + b
is monotone in a, so the forward values are equal bit for bit when the convolution adds its bias
last (oneDNN's channels_last kernel does; its NCHW one sums in another order: RESULTS.md §13); the bias then costs a pass over the pooled map (9× or 4× smaller) instead of the full one,
and its gradient is summed over the pooled map. Ties that appear only after rounding a_i + b can
move the arg-max, so the gradients are equal in exact arithmetic, not always bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from netscope.models import LectureCNN


class ConvPoolReLU(torch.autograd.Function):
    """relu(max_pool2d(conv2d(x, weight, bias), pool)) with one saved output and one backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, pool: int, bias_after_pool: bool):  # noqa: D102
        conv = F.conv2d(x, weight, None if bias_after_pool else bias)
        out, where = F.max_pool2d(conv, pool, return_indices=True)
        if bias_after_pool:
            out.add_(bias.view(1, -1, 1, 1))
        out.relu_()
        ctx.save_for_backward(x, weight, where, out)
        ctx.conv_size = conv.shape[-2:]
        ctx.pool, ctx.bias_after_pool = pool, bias_after_pool
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, weight, where, out = ctx.saved_tensors
        grad_pooled = torch.ops.aten.threshold_backward(grad_out, out, 0)
        # max-pool's gradient: windows do not overlap, so placing each value at its arg-max
        # (zeros elsewhere) equals max_pool2d's own backward bit for bit, without its input
        grad_conv = F.max_unpool2d(grad_pooled, where, ctx.pool, output_size=ctx.conv_size)
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_conv, x, weight, None if ctx.bias_after_pool else [weight.shape[0]],
            [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
            [ctx.needs_input_grad[0], True, not ctx.bias_after_pool],
        )  # fmt: skip
        if ctx.bias_after_pool:
            grad_b = grad_pooled.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None


class FusedLectureCNN(nn.Module):
    """The lecture CNN with each conv → pool → ReLU block run by `ConvPoolReLU`; it shares (not
    copies) `model`'s parameters, so an optimiser over `model.parameters()` trains it."""

    def __init__(self, model: LectureCNN, *, bias_after_pool: bool = False):
        super().__init__()
        self.model, self.bias_after_pool = model, bias_after_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, late = self.model, self.bias_after_pool
        x = ConvPoolReLU.apply(x, m.conv1.weight, m.conv1.bias, 3, late)
        x = ConvPoolReLU.apply(x, m.conv2.weight, m.conv2.bias, 2, late)
        return m.fc2(m.relu3(m.fc1(m.flatten(x))))


class BiasAfterPoolLectureCNN(nn.Module):
    """The lecture CNN written with each convolution's bias added after its max-pool, in plain
    autograd (no custom Function); it shares `model`'s parameters."""

    def __init__(self, model: LectureCNN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        for conv, pool in ((m.conv1, 3), (m.conv2, 2)):
            x = F.relu(F.max_pool2d(F.conv2d(x, conv.weight), pool) + conv.bias.view(1, -1, 1, 1))
        return m.fc2(m.relu3(m.fc1(m.flatten(x))))
