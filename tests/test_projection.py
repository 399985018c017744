"""Deconvnet and guided-backpropagation projections: equal to Captum's on the lecture CNN and on a
residual network with BatchNorm, exact on a first layer, local to the receptive field, and
leaving the model as it was."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netscope.errors import NetscopeError
from netscope.inspect import receptive_field
from netscope.inspect.projection import plot_projections, project, top_projections
from netscope.models import BasicBlock

pytestmark = pytest.mark.filterwarnings(
    "ignore:Setting backward hooks on ReLU activations",
    "ignore:Input Tensor 0 did not already require gradients",
)


@pytest.fixture(scope="module")
def digits(test_pixels):
    return test_pixels[0]


class TinyResNet(nn.Module):
    """A residual network with BatchNorm: a conv-BN-ReLU stem, a max pool, two basic blocks (the
    second halves the map through a strided 1×1 conv shortcut), a global pool and a linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.blocks = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, stride=2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.pool(self.stem(x))))


@pytest.fixture(scope="module")
def resnet(digits):
    """TinyResNet with BatchNorm statistics from real digits and random affine parameters."""
    torch.manual_seed(0)
    model = TinyResNet()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    with torch.no_grad():
        model.train()(digits[:500])  # running mean and variance of real data
    return model.eval()


class UnitOutput(nn.Module):
    """A model whose output is one unit's activation per image: Captum needs a scalar target."""

    def __init__(self, model: nn.Module, layer: str, channels, positions):
        super().__init__()
        self.model, self.layer = model, dict(model.named_modules())[layer]
        self.channels, self.positions = channels, positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = {}
        handle = self.layer.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
        try:
            self.model(x)
        finally:
            handle.remove()
        rows = torch.arange(len(x))
        out = seen["out"][rows, self.channels, self.positions[:, 0], self.positions[:, 1]]
        return out[:, None]


def captum(method: str, model: nn.Module, layer: str, images, channels, positions):
    from captum.attr import Deconvolution, GuidedBackprop

    kind = Deconvolution if method == "deconvnet" else GuidedBackprop
    return kind(UnitOutput(model, layer, channels, positions)).attribute(images, target=0)


def random_units(model, layer, images, seed=0):
    """Returns a random channel and position per image within the layer's output."""
    with torch.no_grad():
        seen = {}
        module = dict(model.named_modules())[layer]
        handle = module.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
        model(images[:1])
        handle.remove()
    _, c, h, w = seen["out"].shape
    generator = torch.Generator().manual_seed(seed)
    channels = torch.randint(c, (len(images),), generator=generator)
    positions = torch.stack(
        [torch.randint(h, (len(images),), generator=generator),
         torch.randint(w, (len(images),), generator=generator)], 1
    )  # fmt: skip
    return channels, positions


@pytest.mark.parametrize("method", ["deconvnet", "guided"])
@pytest.mark.parametrize("layer", ["model.conv1", "model.conv2", "model.relu2"])
def test_lecture_cnn_projections_equal_captum(lecture, digits, method, layer):
    images = digits[:12]
    channels, positions = random_units(lecture, layer, images)
    ours = project(lecture, images, layer, channels, positions, method=method)
    theirs = captum(method, lecture, layer, images, channels, positions)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("method", ["deconvnet", "guided"])
@pytest.mark.parametrize("layer", ["stem.0", "blocks.0.conv2", "blocks.0", "blocks.1"])
def test_residual_network_with_batchnorm_projections_equal_captum(resnet, digits, method, layer):
    images = digits[100:112]
    channels, positions = random_units(resnet, layer, images, seed=1)
    ours = project(resnet, images, layer, channels, positions, method=method)
    theirs = captum(method, resnet, layer, images, channels, positions)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def plain_gradient(model, images, module, channels, positions):
    pixels = images.clone().requires_grad_(True)
    seen = {}
    handle = module.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    model(pixels)
    handle.remove()
    rows = torch.arange(len(images))
    unit = seen["out"][rows, channels, positions[:, 0], positions[:, 1]]
    return torch.autograd.grad(unit.sum(), pixels)[0]


def test_the_three_agree_below_the_first_relu_and_differ_above_it(lecture, digits):
    images = digits[:8]
    for layer, module, differ in [("conv1", lecture.model.conv1, False),
                                  ("conv2", lecture.model.conv2, True)]:  # fmt: skip
        channels, positions = random_units(lecture, "model." + layer, images)
        deconv = project(lecture, images, layer, channels, positions)
        guided = project(lecture, images, layer, channels, positions, method="guided")
        gradient = plain_gradient(lecture, images, module, channels, positions)
        for a, b in [(deconv, guided), (deconv, gradient), (guided, gradient)]:
            assert ((a - b).abs().max() > 1e-3) == differ


def test_first_layer_projection_is_the_filter_over_the_receptive_field(lecture, digits):
    # conv1 is linear in the normalised pixels: its projection is its kernel / std, placed
    # where the unit looks, whatever the image
    image = digits[7:8]
    projection = project(lecture, image, "conv1", 5, torch.tensor([[3, 10]]))
    expected = torch.zeros_like(image)
    expected[0, :, 3:8, 10:15] = lecture.model.conv1.weight[5].detach() / lecture.std[0]
    torch.testing.assert_close(projection, expected)


def test_functional_and_in_place_relus_are_rectified_too(digits):
    torch.manual_seed(0)
    conv1, conv2 = nn.Conv2d(1, 4, 5), nn.Conv2d(4, 6, 5)

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = conv1, conv2

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            return self.conv2(x.relu_())  # an in-place ReLU after a functional one

    modules = nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), nn.ReLU(), conv2)
    images = digits[:6]
    channels, positions = torch.arange(6), torch.full((6, 2), 3)
    theirs = captum("deconvnet", modules, "4", images, channels, positions)
    ours = project(Functional(), images, "conv2", channels, positions)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    plain_captum = captum("deconvnet", Functional(), "conv2", images, channels, positions)
    assert (plain_captum - ours).abs().max() > 1e-3  # Captum sees no nn.ReLU there


def test_top_projections_stay_inside_the_receptive_field(lecture, digits):
    found = top_projections(lecture, digits, "conv2", k=4, units=[3, 0, 17])
    field = receptive_field(lecture, "conv2", (1, 28, 28))
    assert found.units == [3, 0, 17]
    assert found.projections.shape == (3, 4, 1, *field.size)
    assert found.outside == 0.0
    assert found.projections.flatten(1).abs().amax(1).min() > 0
    # each projection is that of the image and position the search found
    direct = project(lecture, digits[found.top.image_index[3]], "conv2", 3, found.top.position[3])
    assert direct.abs().sum() == pytest.approx(found.projections[0].abs().sum().item(), rel=1e-5)


def test_projection_leaves_the_model_as_it_was(resnet, digits):
    resnet.train()
    resnet.blocks[0].eval()  # a mixed state must come back as it was
    resnet.head[2].weight.grad = torch.ones_like(resnet.head[2].weight)
    state = {k: v.clone() for k, v in resnet.state_dict().items()}
    images = digits[:5].clone()
    before = images.clone()
    project(resnet, images, "blocks.1", 2, method="guided")
    top_projections(resnet, digits[:50], "stem.0", k=2, units=[1])
    assert resnet.training and not resnet.blocks[0].training and resnet.blocks[1].training
    assert all(torch.equal(v, resnet.state_dict()[k]) for k, v in state.items())
    assert torch.equal(resnet.head[2].weight.grad, torch.ones_like(resnet.head[2].weight))
    assert resnet.stem[0].weight.grad is None
    assert not any(m._forward_hooks or m._backward_hooks for m in resnet.modules())
    assert torch.equal(images, before)
    resnet.eval()
    resnet.head[2].weight.grad = None


def test_bad_arguments_are_clear_errors(lecture, digits):
    with pytest.raises(NetscopeError, match="expected one of deconvnet, guided"):
        project(lecture, digits[:1], "conv1", 0, method="lrp")
    with pytest.raises(NetscopeError, match="channel 32 out of range: layer 'conv1' has 32"):
        project(lecture, digits[:1], "conv1", 32)
    with pytest.raises(NetscopeError, match="unit 70 out of range"):
        top_projections(lecture, digits[:20], "conv2", k=2, units=[70])
    with pytest.raises(NetscopeError, match="unknown layer 'conv9'"):
        project(lecture, digits[:1], "conv9", 0)


def test_projection_figure_shows_units_side_by_side(lecture, digits, tmp_path):
    from netscope.inspect import plots

    found = top_projections(lecture, digits, "conv2", units=[0, 1, 2, 3, 4, 5])
    fig = plot_projections(found)
    assert fig._suptitle.get_text().startswith("conv2: deconvnet projections of each unit's 9")
    titles = [sub._suptitle.get_text() for sub in fig.subfigs]
    assert titles[0].startswith("unit 0 · strongest")
    path = plots.save(fig, tmp_path / "projections.png")
    assert path.stat().st_size > 30_000


def test_top_projections_of_a_residual_block_stay_in_its_field(resnet, digits):
    found = top_projections(resnet, digits[:300], "blocks.0", k=3, units=[0, 5], method="guided")
    assert found.projections.shape == (2, 3, 1, 12, 12)
    assert found.outside == 0.0 and found.projections.abs().amax() > 0
