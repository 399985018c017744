"""The registered networks: sizes from their papers, FLOPs counted by hand, LeNet-5's wiring."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netscope.errors import NetscopeError
from netscope.models import (
    LENET_C3_TABLE,
    REGISTRY,
    build_model,
    flops,
    format_summary,
    summary,
)


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 32, 32)])
def test_every_model_maps_a_batch_to_class_logits(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape[0], 10, shape[1])
    logits = model(torch.randn(2, *shape))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    rows = summary(model, shape)
    assert sum(r.parameters for r in rows) == sum(p.numel() for p in model.parameters())
    assert flops(model, shape) > 0
    assert "total" in format_summary(rows)


def test_lenet5_has_the_papers_60000_trainable_parameters():
    model = build_model("lenet5", 1, 10, 32)
    assert trainable(model) == 60_000  # LeCun et al. 1998, section II.B
    per_layer = {n: sum(p.numel() for p in m.parameters()) for n, m in model.named_children()}
    assert per_layer["c1"] == 156
    assert per_layer["s2"] == 12
    assert per_layer["c3"] == 1516
    assert per_layer["s4"] == 32
    assert per_layer["c5"] == 48_120
    assert per_layer["f6"] == 10_164


def test_lenet5_c3_reads_only_the_maps_of_table_1():
    torch.manual_seed(0)
    c3 = build_model("lenet5").c3
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    outputs = c3(x)
    for out_map, inputs in enumerate(LENET_C3_TABLE):
        (grad,) = torch.autograd.grad(outputs[0, out_map].sum(), x, retain_graph=True)
        reads = {m for m in range(6) if grad[0, m].abs().sum() > 0}
        assert reads == set(inputs), out_map


def test_lenet5_pads_mnist_to_32_with_the_border_value():
    model = build_model("lenet5", 1, 10, 28)
    padded = model.pad(torch.full((1, 1, 28, 28), -0.42))
    assert padded.shape == (1, 1, 32, 32)
    assert torch.all(padded == -0.42)


def test_flops_of_single_layers_by_hand():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    assert flops(conv, (3, 10, 10)) == 8 * 8 * 8 * 3 * 3 * 3
    assert flops(nn.Linear(5, 7), (5,)) == 35
    grouped = nn.Conv2d(4, 8, 3, padding=1, groups=2)
    assert flops(grouped, (4, 6, 6)) == 8 * 6 * 6 * 2 * 9


def test_lenet5_flops_by_hand():
    expected = (
        28 * 28 * 6 * 25  # C1
        + 14 * 14 * 6 * 4  # S2: four additions per output
        + 10 * 10 * 1500  # C3: 60 kernels of 5×5
        + 5 * 5 * 16 * 4  # S4
        + 120 * 400  # C5
        + 84 * 120  # F6
        + 84 * 10  # RBF output
    )
    assert flops(build_model("lenet5", 1, 10, 32), (1, 32, 32)) == expected == 332_824


def test_cifar_networks_match_their_published_sizes():
    resnet20 = build_model("resnet20_cifar", 3, 10, 32)
    # He et al. 2016, Table 6: ResNet-20 has 0.27 M parameters (with zero-padding shortcuts;
    # the 1×1 projection shortcuts used here add 2,752)
    assert 0.26e6 < trainable(resnet20) < 0.28e6
    assert (
        sum(1 for m in resnet20.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
        == 19
    )
    assert 40e6 < flops(resnet20, (3, 32, 32)) < 42e6
    vgg = build_model("vgg11_cifar", 3, 10, 32)
    assert sum(1 for m in vgg.modules() if isinstance(m, (nn.Conv2d, nn.Linear))) == 9
    assert 9.2e6 < trainable(vgg) < 9.25e6
    alexnet = build_model("alexnet_cifar", 3, 10, 32)
    convs = [m.out_channels for m in alexnet.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [64, 192, 384, 256, 256]  # AlexNet's widths
    assert trainable(build_model("mlp", 1, 10, 28)) == 784 * 300 + 300 + 300 * 10 + 10


def test_vgg_rejects_inputs_too_small_for_five_poolings():
    with pytest.raises(NetscopeError, match="pad MNIST to 32"):
        build_model("vgg11_cifar", 1, 10, 28)


def test_summary_leaves_batch_norm_statistics_untouched():
    model = build_model("resnet20_cifar", 3, 10, 32).train()
    before = model.stem[1].running_mean.clone()
    summary(model, (3, 32, 32))
    assert torch.equal(model.stem[1].running_mean, before)
    assert model.training
