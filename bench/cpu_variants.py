"""The CPU training steps bench/cpu_step.py compares: the lecture step (LectureCNN, batch 100,
plain SGD at lr 0.1, seed 0), each a way of computing the same math.

Every builder returns a `Variant`: `step(i)` trains on batch i and returns the loss, `params` are
the weights it trains, and `context()` is entered around each timed block (a backend switch or a
CPU pin that must hold during the backward pass too).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F
from cpp_gemm_template import KERNELS
from fused_block import BiasAfterPoolLectureCNN, FusedLectureCNN
from im2col_conv import Im2colLectureCNN
from opaque_pool import LecturePoolsOpaque
from torch import nn
from torch._inductor.utils import run_and_get_code

from netscope.models import LectureCNN

CL = torch.channels_last


@dataclass
class Variant:
    """One way of running the training step."""

    step: Callable[[int], torch.Tensor]
    params: list[torch.Tensor]
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    notes: dict = field(default_factory=dict)


def lecture_model(*, conv1_format=None, conv2_format=None) -> LectureCNN:
    """Returns the seed-0 lecture CNN with each convolution's weight in the given memory format."""
    torch.manual_seed(0)
    model = LectureCNN()
    for conv, memory_format in ((model.conv1, conv1_format), (model.conv2, conv2_format)):
        if memory_format is not None:
            # .to, not .contiguous: conv1's 32×1×5×5 weight is already "contiguous" in either
            # format, and only .to restrides it, which is what makes oneDNN pick NHWC for conv1
            conv.weight.data = conv.weight.data.to(memory_format=memory_format)
    return model


def sgd_step(forward: Callable, model: nn.Module, inputs, labels, *, compile_mode=False) -> Variant:
    """Returns the training step of `forward` on `model`'s weights, the slide's loop body; with
    `compile_mode` (None or a torch.compile mode) the loss (hence, through AOTAutograd, the
    backward) and the SGD update are each compiled by Inductor."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn, update = lambda x, y: F.cross_entropy(forward(x), y), optimizer.step
    if compile_mode is not False:
        loss_fn = torch.compile(loss_fn, mode=compile_mode)
        update = torch.compile(optimizer.step, mode=compile_mode)

    def step(i: int) -> torch.Tensor:
        loss = loss_fn(inputs[i * 100 : (i + 1) * 100], labels[i * 100 : (i + 1) * 100])
        optimizer.zero_grad()
        loss.backward()
        update()
        return loss

    return Variant(step, list(model.parameters()))


def slide(inputs, labels) -> Variant:
    """The slide's eager code: NCHW, autograd, torch.optim.SGD (the baseline)."""
    model = lecture_model()
    return sgd_step(model, model, inputs, labels)


def channels_last(inputs, labels) -> Variant:
    """netscope's CPU default: images and both convolution weights channels_last."""
    model = lecture_model(conv1_format=CL, conv2_format=CL)
    return sgd_step(model, model, inputs.contiguous(memory_format=CL), labels)


def fused(inputs, labels, *, bias_after_pool: bool = False) -> Variant:
    """channels_last, each conv → pool → ReLU block one autograd Function (fused_block.py)."""
    model = lecture_model(conv1_format=CL, conv2_format=CL)
    forward = FusedLectureCNN(model, bias_after_pool=bias_after_pool)
    return sgd_step(forward, model, inputs.contiguous(memory_format=CL), labels)


def bias_after_pool(inputs, labels) -> Variant:
    """channels_last, each bias added after its max-pool, in plain autograd (fused_block.py)."""
    model = lecture_model(conv1_format=CL, conv2_format=CL)
    forward = BiasAfterPoolLectureCNN(model)
    return sgd_step(forward, model, inputs.contiguous(memory_format=CL), labels)


def conv2_channels_last(inputs, labels) -> Variant:
    """conv1 NCHW (one input channel: the image is the same bytes in both layouts), conv2's
    weight channels_last, so only conv2 and what follows it run in NHWC."""
    model = lecture_model(conv2_format=CL)
    return sgd_step(model, model, inputs, labels)


def conv1_im2col(inputs, labels) -> Variant:
    """channels_last, conv1 as one BLAS matrix product over its 5×5 patches (im2col_conv.py)."""
    model = lecture_model(conv1_format=CL, conv2_format=CL)
    return sgd_step(Im2colLectureCNN(model), model, inputs, labels)


def mkldnn_off(inputs, labels) -> Variant:
    """The slide's step with oneDNN switched off (forward and backward): ATen's own
    convolution (im2col + a BLAS matrix product) and pooling."""
    variant = slide(inputs, labels)
    variant.context = lambda: torch.backends.mkldnn.flags(enabled=False)
    return variant


def pinned(inputs, labels) -> Variant:
    """channels_last with the (one) compute thread pinned to the CPU it is on during its blocks."""
    variant = channels_last(inputs, labels)
    variant.context = _pin_to_current_cpu
    return variant


@contextlib.contextmanager
def _pin_to_current_cpu():
    """Pins the calling thread to the CPU it runs on now; restores its CPU set on exit."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {ctypes.CDLL("libc.so.6").sched_getcpu()})  # glibc (Linux)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def compiled(inputs, labels, *, mode: str | None = None, aten_pools: bool = False) -> Variant:
    """channels_last, loss + backward + SGD update compiled by Inductor; for "max-autotune" the
    C++ GEMM template is allowed beside ATen (max_autotune_gemm_backends = "CPP,ATEN");
    `aten_pools`: the max-pools stay ATen's kernels (opaque_pool.py)."""
    model = lecture_model(conv1_format=CL, conv2_format=CL)
    if mode == "max-autotune":
        inductor_config.max_autotune_gemm_backends = "CPP,ATEN"
    forward = LecturePoolsOpaque(model) if aten_pools else model
    x = inputs.contiguous(memory_format=CL)
    return _recording_kernels(sgd_step(forward, model, x, labels, compile_mode=mode))


def _recording_kernels(variant: Variant) -> Variant:
    """Returns `variant` whose first step (the one that compiles) notes which matrix-product and
    convolution kernels Inductor's generated code calls: notes["kernels"]."""
    step = variant.step

    def first_step(i: int) -> torch.Tensor:
        variant.step = step
        loss, codes = run_and_get_code(step, i)
        variant.notes["kernels"] = sorted(set(re.findall(KERNELS, "\n".join(codes))))
        return loss

    variant.step = first_step
    return variant


VARIANTS: dict[str, tuple[Callable[..., Variant], str]] = {
    "slide": (slide, "the slide's eager code, NCHW (baseline)"),
    "channels_last": (channels_last, "netscope's CPU default"),
    "fused": (fused, "channels_last + conv→pool→ReLU as one autograd Function"),
    "fused_bias_after_pool": (
        lambda x, y: fused(x, y, bias_after_pool=True),
        "fused, bias added after the max-pool",
    ),
    "bias_after_pool": (bias_after_pool, "channels_last, bias added after the max-pool"),
    "conv2_channels_last": (conv2_channels_last, "conv1 NCHW, conv2 channels_last"),
    "conv1_im2col": (conv1_im2col, "channels_last, conv1 as im2col + one matrix product"),
    "mkldnn_off": (mkldnn_off, "NCHW, oneDNN off (ATen im2col + BLAS)"),
    "pinned": (pinned, "channels_last, thread pinned to one CPU (1 thread)"),
    "compile": (compiled, "channels_last, torch.compile (default mode), loss + backward + SGD"),
    "compile_max_autotune": (
        lambda x, y: compiled(x, y, mode="max-autotune"),
        "channels_last, torch.compile max-autotune, GEMM backends CPP,ATEN",
    ),
    "compile_aten_pools": (
        lambda x, y: compiled(x, y, aten_pools=True),
        "compile, the max-pools kept as ATen's kernels (custom operators)",
    ),
}
