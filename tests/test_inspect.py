"""netscope.inspect on the real lecture run and on small models whose answers are known."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from user_models import resnet18, tiny_resnet

from netscope.cli import main
from netscope.errors import NetscopeError
from netscope.inspect import (
    STAGES,
    InspectConfig,
    activations,
    class_models,
    deep_dream,
    filters,
    integrated_gradients,
    load_photo,
    morph,
    occlusion,
    receptive_field,
    recompute_on_canvas,
    run_inspect,
    saliency,
    top_patches,
)
from netscope.threads import small_steps_on_one_thread


@pytest.fixture(autouse=True)
def small_steps_on_one_cpu_thread():
    """The image optimisations as `netscope inspect` runs them: on one CPU thread (measured on
    the shared 2-core test machine: class models 1.8 s instead of 8 s)."""
    with small_steps_on_one_thread():
        yield


def user_cnn(padding: int = 2) -> nn.Sequential:
    """A small model that is not one of ours: padding, stride, dilation, pooling with padding."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=padding),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(4, 6, 3, stride=2, dilation=2, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.LazyLinear(10),
    ).eval()


# ---------------------------------------------------------------- layers and hooks


def test_activations_of_named_layers_and_hooks_removed(lecture, test_pixels):
    images = test_pixels[0][:50]
    out = activations(lecture, images, ["conv1", "relu2", "fc2"])
    assert out["conv1"].shape == (50, 32, 24, 24)
    assert out["relu2"].shape == (50, 64, 2, 2)
    torch.testing.assert_close(out["fc2"], lecture(images))
    assert all(not m._forward_hooks for m in lecture.modules())


def test_unknown_layer_lists_valid_names(lecture):
    with pytest.raises(NetscopeError, match=r"unknown layer 'conv9'.*conv1, pool1, relu1, conv2"):
        activations(lecture, torch.zeros(1, 1, 28, 28), ["conv9"])


def test_filters_of_first_conv(lecture):
    name, weights = filters(lecture)
    assert name == "conv1" and weights.shape == (32, 1, 5, 5)
    with pytest.raises(NetscopeError, match="no 4-d kernel.*conv1, conv2"):
        filters(lecture, "fc1")


# ---------------------------------------------------------------- receptive fields


def test_receptive_fields_of_the_lecture_cnn(lecture):
    # conv5 → 5; pool3/3 → 5 + 2 = 7, jump 3; conv5 → 7 + 4·3 = 19; pool2/2 → 19 + 3 = 22, jump 6
    fields = {
        name: receptive_field(lecture, name, (1, 28, 28)) for name in ["conv1", "conv2", "relu2"]
    }
    assert (fields["conv1"].size, fields["conv1"].jump) == ((5, 5), (1, 1))
    assert (fields["conv2"].size, fields["conv2"].jump) == ((19, 19), (3, 3))
    assert (fields["relu2"].size, fields["relu2"].jump) == ((22, 22), (6, 6))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_receptive_field_is_the_gradient_support_of_a_unit():
    """With positive weights and linear layers, the pixels a unit depends on span exactly its box."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.AvgPool2d(2, padding=1),
        nn.Conv2d(2, 2, 3, stride=2, dilation=2, padding=2),
        nn.Conv2d(2, 3, 2, padding="same"),
    )
    for p in model.parameters():
        p.data.uniform_(0.1, 1.0)
    field = receptive_field(model, "3", (1, 20, 20))
    pixels = torch.ones(1, 1, 20, 20, requires_grad=True)
    out = model(pixels)
    for i, j in [(0, 0), (1, 2), (out.shape[2] - 1, out.shape[3] - 1)]:
        (grad,) = torch.autograd.grad(out[0, 0, i, j], pixels, retain_graph=True)
        rows, cols = grad[0, 0].nonzero().unbind(1)
        top, left, bottom, right = field.box(i, j)
        assert (rows.min(), rows.max() + 1) == (max(top, 0), min(bottom, 20))
        assert (cols.min(), cols.max() + 1) == (max(left, 0), min(right, 20))


def test_receptive_field_of_a_non_spatial_layer_is_an_error(lecture):
    with pytest.raises(NetscopeError, match="'fc1' is not spatial"):
        receptive_field(lecture, "fc1", (1, 28, 28))


def test_top_patches_recompute_exactly_on_a_blank_canvas(lecture, test_pixels):
    images = test_pixels[0]
    top = top_patches(lecture, images, "conv2", k=9)
    assert top.patches.shape == (64, 9, 1, 19, 19)
    assert (top.values[:, :-1] >= top.values[:, 1:]).all()
    brute = activations(lecture, images, ["conv2"])["conv2"].flatten(2).amax(2)  # N×C
    torch.testing.assert_close(top.values[:, 0], brute.amax(0))
    recomputed = recompute_on_canvas(lecture, (1, 28, 28), top)
    torch.testing.assert_close(recomputed, top.values, atol=1e-4, rtol=1e-4)


def test_top_patches_of_a_user_model_with_padding(test_pixels):
    model = user_cnn(padding=2)
    images = test_pixels[0][:300]
    model(images[:1])  # materialise the lazy layer
    top = top_patches(model, images, "4", k=4)
    assert top.field.start == (-5, -5)  # padding reaches outside the image
    recomputed = recompute_on_canvas(model, (1, 28, 28), top)
    torch.testing.assert_close(recomputed, top.values, atol=1e-5, rtol=1e-5)


def test_receptive_fields_of_resnet18_match_the_known_values():
    """torchvision's ResNet-18 at 224×224, by hand: conv 7×7/2 → 7 (jump 2), max pool 3×3/2 →
    11 (jump 4); each stage's four 3×3 convolutions add 2·jump each, the first (stride 2 from
    layer2 on) before it doubles the jump: layer1 11 + 4·8 = 43, layer2 43 + 8 + 3·16 = 99
    (jump 8), layer3 211 (16), layer4 435 (32). The shortcuts' boxes lie inside these. The width
    does not change the geometry: width 2 keeps the trace fast."""
    model = resnet18(width=2)
    fields = {name: receptive_field(model, name, (3, 224, 224)) for name in ["layer2", "layer4"]}
    assert (fields["layer2"].size, fields["layer2"].jump) == ((99, 99), (8, 8))
    assert (fields["layer4"].size, fields["layer4"].jump) == ((435, 435), (32, 32))
    first_relu = receptive_field(model, "layer4.1.relu", (3, 224, 224))  # mid-block: 435 − 2·32
    assert first_relu.size == (371, 371)
    with pytest.raises(NetscopeError, match="'avgpool' has no exact receptive field: .*global"):
        receptive_field(model, "avgpool", (3, 224, 224))
    with pytest.raises(NetscopeError, match="'fc' is not spatial"):
        receptive_field(model, "fc", (3, 224, 224))


class PoolBetweenConvs(nn.Module):
    """A same-size F.avg_pool2d between two convolutions, invisible to module hooks."""

    def __init__(self, resample: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.resample = resample

    def forward(self, x):
        x = F.relu(self.conv1(x))
        if self.resample:
            x = F.interpolate(x, scale_factor=2.0)
        x = F.avg_pool2d(x, 3, stride=1, padding=1)
        return self.conv2(x)


def test_functional_pooling_counts_in_the_receptive_field(test_pixels):
    model = PoolBetweenConvs().eval()
    field = receptive_field(model, "conv2", (1, 28, 28))
    assert (field.size, field.jump, field.start) == ((7, 7), (1, 1), (-3, -3))
    top = top_patches(model, test_pixels[0][:200], "conv2", k=3)
    recomputed = recompute_on_canvas(model, (1, 28, 28), top)
    torch.testing.assert_close(recomputed, top.values, atol=1e-6, rtol=0)
    with pytest.raises(NetscopeError, match="no exact receptive field: .*`interpolate`"):
        receptive_field(PoolBetweenConvs(resample=True), "conv2", (1, 28, 28))


@pytest.mark.parametrize(
    "layer",
    ["relu", "layer1.0.relu", "layer1.0.relu#1", "layer2.0.bn2", "layer2", "layer2.0.downsample"],
)
def test_top_patches_of_residual_layers_recompute_exactly(layer):
    model = tiny_resnet()
    photos = torch.cat(
        [load_photo(name, (3, 32, 32)) for name in ["astronaut", "coffee", "chelsea", "rocket"]]
    )
    images = torch.cat(
        [photos, torch.rand(40, 3, 32, 32, generator=torch.Generator().manual_seed(1))]
    )
    top = top_patches(model, images, layer, k=3)
    recomputed = recompute_on_canvas(model, (3, 32, 32), top)
    torch.testing.assert_close(recomputed, top.values, atol=1e-6, rtol=0)


def test_top_patches_of_lenet5_through_its_replicate_padding(test_pixels):
    """LeNet-5 pads MNIST's 28×28 to 32×32 by repeating the border pixels: fields are measured
    on the padded grid, and the repeated pixels a box holds are in the image part of it."""
    from netscope.models import build_model

    torch.manual_seed(0)
    model = build_model("lenet5", in_channels=1, num_classes=10, image_size=28).eval()
    field = receptive_field(model, "c3", (1, 28, 28))
    assert (field.size, field.jump, field.start) == ((14, 14), (2, 2), (-2, -2))
    top = top_patches(model, test_pixels[0][:200], "c3", k=2)
    recomputed = recompute_on_canvas(model, (1, 28, 28), top)
    torch.testing.assert_close(recomputed, top.values, atol=1e-6, rtol=0)
    with pytest.raises(NetscopeError, match="wholly in the input's replicate padding"):
        receptive_field(model, "pad", (1, 28, 28))


class Branches(nn.Module):
    """Two branches of different kernels joined by torch.cat, a functional pool, a stride-2 conv
    and a stride-2 shortcut added to it: linear, with positive weights."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(1, 2, 5, padding=0)
        self.down = nn.Conv2d(4, 3, 3, stride=2, padding=1)
        self.shortcut = nn.Conv2d(4, 3, 1, stride=2)
        for name, p in self.named_parameters():
            p.data.uniform_(0.1, 1.0) if name.endswith("weight") else p.data.zero_()

    def forward(self, x):
        x = torch.cat([self.a(x), F.pad(self.b(x), (2, 2, 2, 2))], dim=1)
        x = F.avg_pool2d(x, 2, stride=1, padding=1)
        return self.down(x) + self.shortcut(x)


def test_receptive_field_of_a_branching_model_is_the_gradient_support_of_a_unit():
    """With positive weights, no biases and linear operations, the pixels a unit depends on span
    its box (at the border, where a branch reaches only padding, they may span less, never more)."""
    torch.manual_seed(0)
    model = Branches()
    field = receptive_field(model, "down#0", (1, 21, 21))  # its box holds the shortcut's
    assert field.jump == receptive_field(model, "shortcut", (1, 21, 21)).jump == (2, 2)
    with torch.no_grad():  # image k lights pixel k alone: out[k, u] > 0 iff u depends on it
        reach = model(torch.eye(21 * 21).view(-1, 1, 21, 21))[:, 0] > 0
    inside = 0
    for i in range(reach.shape[1]):
        for j in range(reach.shape[2]):
            pixels = reach[:, i, j].nonzero()[:, 0]
            rows, cols = pixels // 21, pixels % 21
            support = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
            top, left, bottom, right = field.box(i, j)
            box = (max(top, 0), min(bottom, 21), max(left, 0), min(right, 21))
            assert box[0] <= support[0] and support[1] <= box[1], (i, j)
            assert box[2] <= support[2] and support[3] <= box[3], (i, j)
            if top >= 0 and left >= 0 and bottom <= 21 and right <= 21:
                assert support == box, (i, j)
                inside += 1
    assert inside >= 9


# ---------------------------------------------------------------- occlusion


class OnePixel(nn.Module):
    """Logit of class 0 is 8·pixel(10, 17); class 1 always 0: only that pixel matters. Records
    the size of every batch it sees."""

    batches: list[int] = []

    def forward(self, x):
        OnePixel.batches.append(len(x))
        score = 8 * x[:, 0, 10, 17]
        return torch.stack([score, torch.zeros_like(score)], dim=1)


@pytest.mark.parametrize("stride", [1, 2])
def test_occlusion_of_a_model_where_one_pixel_matters(stride):
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 10, 17] = 1.0
    OnePixel.batches = []
    maps = occlusion(OnePixel(), image, 0, window=5, stride=stride, value=0.5, batch_size=100)
    positions = (28 // stride) ** 2  # 784 or 196, in batches of at most 100, after one probe
    assert OnePixel.batches[1:] == [100] * (positions // 100) + [positions % 100]
    expected = torch.full((28, 28), torch.sigmoid(torch.tensor(8.0)).item())
    covered = torch.sigmoid(torch.tensor(4.0)).item()  # the square turns the pixel to 0.5
    for r in range(0, 28, stride):
        for c in range(0, 28, stride):
            if abs(r - 10) <= 2 and abs(c - 17) <= 2:
                expected[r : r + stride, c : c + stride] = covered
    torch.testing.assert_close(maps[0], expected)


def test_occlusion_on_the_lecture_cnn_matters_on_the_stroke_only(lecture, test_pixels):
    image, label = test_pixels[0][2:3], test_pixels[1][2:3]  # a thin 1
    assert label.item() == 1
    maps = occlusion(lecture, image, label, window=7)
    assert maps.shape == (1, 28, 28)
    assert maps[0, :3, :3].min() > 0.9  # grey in a corner changes nothing
    assert maps.min() < 0.5  # covering part of the stroke does
    row, col = divmod(int(maps.argmin()), 28)
    assert image[0, 0, max(row - 3, 0) : row + 4, max(col - 3, 0) : col + 4].max() > 0.5


# ---------------------------------------------------------------- saliency and IG


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_saliency_and_integrated_gradients_match_captum(test_pixels):
    from captum.attr import IntegratedGradients, Saliency

    model = user_cnn()
    images, labels = test_pixels[0][:4], test_pixels[1][:4]
    model(images)
    theirs = Saliency(model).attribute(images, target=labels, abs=True).amax(1)
    torch.testing.assert_close(saliency(model, images, labels), theirs)
    ours = integrated_gradients(model, images, labels, steps=16, batch_size=20)
    theirs = IntegratedGradients(model).attribute(
        images, torch.zeros_like(images), target=labels, n_steps=16, method="riemann_middle"
    )
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_integrated_gradients_do_not_depend_on_the_batch_size_and_show_progress(capsys):
    model = user_cnn()
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model(images)
    one_at_a_time = integrated_gradients(model, images, [1, 2, 3], steps=5, batch_size=1)
    all_at_once = integrated_gradients(model, images, [1, 2, 3], steps=5, batch_size=1000)
    torch.testing.assert_close(one_at_a_time, all_at_once)
    assert "integrated gradients" not in capsys.readouterr().err  # quiet by default
    integrated_gradients(model, images, [1, 2, 3], steps=5, batch_size=4, progress=True)
    # 15 path images in batches of 4; not a terminal here: one plain line (netscope.progress)
    assert "netscope: integrated gradients (4 steps)" in capsys.readouterr().err


def test_integrated_gradients_add_up_to_the_score_difference(lecture, test_pixels):
    images, labels = test_pixels[0][:3], test_pixels[1][:3]
    ig = integrated_gradients(lecture, images, labels, steps=64)
    with torch.no_grad():
        gap = lecture(images).gather(1, labels[:, None])[:, 0] - lecture(0 * images)[:, labels]
    torch.testing.assert_close(
        ig.flatten(1).sum(1), gap.diagonal(), atol=0.05 * gap.abs().max(), rtol=0
    )


def test_bad_targets_and_images_are_clear_errors(lecture):
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(NetscopeError, match=r"target class 10 out of range.*0\.\.9"):
        saliency(lecture, images, 10)
    with pytest.raises(NetscopeError, match="target class -1 out of range"):
        occlusion(lecture, images, [-1, 3])
    with pytest.raises(NetscopeError, match=r"expected a float tensor N×C×H×W.*\(28, 28\)"):
        saliency(lecture, torch.rand(28, 28), 3)
    with pytest.raises(NetscopeError, match="images of size 1×20×20 .C×H×W. do not fit"):
        integrated_gradients(lecture, torch.rand(2, 1, 20, 20), 3)
    with pytest.raises(NetscopeError, match="images of size 3×28×28 .C×H×W. do not fit"):
        occlusion(lecture, torch.rand(2, 3, 28, 28), 3)


# ---------------------------------------------------------------- optimised images


def test_class_models_reach_the_target_probability(lecture):
    models = class_models(lecture, list(range(10)), (1, 28, 28))
    assert models.images.shape == (10, 1, 28, 28)
    assert 0 <= models.images.min() and models.images.max() <= 1
    assert models.probability.min() >= 0.99
    with pytest.raises(NetscopeError, match="target class 12 out of range"):
        class_models(lecture, [12], (1, 28, 28), steps=1)


def test_class_models_do_not_depend_on_the_batch_size(lecture):
    together = class_models(lecture, [1, 4, 7], (1, 28, 28), steps=20)
    one_by_one = class_models(lecture, [1, 4, 7], (1, 28, 28), steps=20, batch_size=1)
    torch.testing.assert_close(one_by_one.images, together.images)
    torch.testing.assert_close(one_by_one.probability, together.probability)


def test_morph_from_a_digit_and_a_photo_ends_as_the_target(lecture, mnist):
    three = mnist.test_images[mnist.test_labels == 3][:1].float() / 255
    starts = torch.cat([three, load_photo("chelsea", (1, 28, 28))])
    path = morph(lecture, starts, [8, 6], steps=40)
    assert path.frames.shape == (2, 6, 1, 28, 28)
    torch.testing.assert_close(path.frames[:, 0], starts)
    assert path.steps[0].tolist() == [0, 1, 3, 6, 16, 40]  # 40 ** (k / 4), rounded
    assert path.final_prediction().tolist() == [8, 6]
    assert path.probabilities[0, 0].argmax() == 3  # it started as a 3


def test_deep_dream_amplifies_the_layer_and_is_deterministic(lecture):
    photo = load_photo("camera", (1, 56, 56))
    dreamed = deep_dream(lecture, photo, "conv2", octaves=2, steps=4, seed=1)
    assert dreamed.shape == photo.shape
    energy = [activations(lecture, x, ["conv2"])["conv2"].pow(2).mean() for x in (photo, dreamed)]
    assert energy[1] > 2 * energy[0]
    torch.testing.assert_close(
        deep_dream(lecture, photo, "conv2", octaves=2, steps=4, seed=1), dreamed
    )


def test_deep_dream_raises_the_energy_of_a_batchnorm_resnet_layer():
    """A ResNet-18 layout's layer3 (jump 16): rolling the image by a few pixels samples it on
    another grid, so pixel jitter left its energy where it was (×1.006 here); jitter on the
    layer's grid lets each step raise it (×1.27)."""
    model = resnet18(width=4, classes=10)
    photo = load_photo("astronaut", (3, 128, 128))
    dreamed = deep_dream(model, photo, "layer3", octaves=2, steps=5)
    energy = [activations(model, x, ["layer3"])["layer3"].pow(2).mean() for x in (photo, dreamed)]
    assert energy[1] > 1.15 * energy[0]


def test_figures_for_a_colour_user_model(tmp_path):
    from netscope.inspect import plots
    from netscope.inspect.filters import plot_filters
    from netscope.inspect.receptive import plot_top_patches

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 12, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)).eval()
    photos = torch.cat(
        [load_photo(name, (3, 32, 32)) for name in ["astronaut", "coffee", "chelsea"]]
    )
    name, weights = filters(model)
    top = top_patches(model, photos, "2", k=2)
    assert top.field.size == (6, 6) and top.patches.shape == (12, 2, 3, 6, 6)
    figures = [plot_filters(name, weights), plot_top_patches(top)]
    assert figures[0].axes[0].get_title() == "0: 12 filters of 3×5×5, input channels side by side"
    for k, fig in enumerate(figures):
        assert plots.save(fig, tmp_path / f"{k}.png").stat().st_size > 5_000


# ---------------------------------------------------------------- pipeline and CLI


def test_run_inspect_writes_figures_and_json(lecture_run, tmp_path):
    config = InspectConfig(
        images=2,
        search_images=300,
        layers=["conv2"],
        class_steps=3,
        dream_size=40,
        octaves=1,
        dream_steps=1,
        morph=["1:7"],
        morph_steps=5,
        ig_steps=4,
        units=1,
        unit_images=300,
        unit_steps=3,
        unit_copies=1,
        progress=False,
    )
    threads = torch.get_num_threads()
    result = run_inspect(lecture_run, tmp_path, config)
    assert torch.get_num_threads() == threads  # one thread for the optimisations, then restored
    saved = json.loads((tmp_path / "inspect.json").read_text())
    assert saved["figures"] == result["figures"]
    projections = [
        f"projections_conv2_{page:02d}.png" for page in range(1, 12)
    ]  # 64 units, 6 a page
    assert [f["file"] for f in result["figures"]] == [
        "filters.png",
        "top_patches_conv2.png",
        *projections,
        "growth_conv2.png",
        "growth_filters.png",
        "growth_filters.gif",
        "occlusion.png",
        "saliency.png",
        "units_conv2.png",
        "class_models.png",
        "deep_dream.png",
        "morph.png",
    ]
    assert all((tmp_path / f["file"]).stat().st_size > 10_000 for f in result["figures"])
    assert result["top_patches"]["conv2"]["max_recompute_error"] < 1e-4
    assert result["projections"]["conv2"]["max_outside_receptive_field"] == 0.0
    assert result["growth"]["epochs"] == [0, 1, 2, 5, 10]
    assert list(result["seconds"]) == list(STAGES)


def test_cli_inspect_errors_name_the_choices(lecture_run, tmp_path, capsys):
    args = ["inspect", str(lecture_run.path), "--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--layers", "conv7"]) == 2
    assert "valid layers: conv1, pool1" in capsys.readouterr().err
    assert main([*args, "--layers", "fc1"]) == 2
    assert "not spatial" in capsys.readouterr().err
    assert main([*args, "--morph", "3:eleven"]) == 2
    assert "unknown class 'eleven' (classes: 0, 1, 2" in capsys.readouterr().err
    assert main([*args, "--projection", "lrp"]) == 2
    assert "projection method 'lrp': expected one of deconvnet, guided" in capsys.readouterr().err
    assert main([*args, "--unit-copies", "0"]) == 2
    assert "--unit-copies 0: expected a positive integer" in capsys.readouterr().err


def test_importing_and_plotting_leaves_the_callers_matplotlib_settings_alone():
    """The inspect figures draw in their slide style inside rc_context: a notebook that imports
    netscope keeps its own font sizes (checked in a fresh interpreter, before any import). Only
    the backend may change: off-screen Agg outside Jupyter (netscope.png.pyplot)."""
    import subprocess
    import sys

    code = (
        "import matplotlib; before = dict(matplotlib.rcParams)\n"
        "import torch, netscope.inspect.plots\n"
        "from netscope.inspect.filters import plot_filters\n"
        "figure = plot_filters('conv1', torch.randn(4, 1, 5, 5))\n"
        "assert figure.axes[0].title.get_fontsize() == 12\n"
        "changed = {k for k, v in matplotlib.rcParams.items() if before[k] != v}\n"
        "changed -= {'backend', 'backend_fallback'}\n"
        "assert not changed, changed\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_uint8_images_get_told_to_divide_by_255(lecture_run, mnist):
    images, labels = mnist.test_images[:2], mnist.test_labels[:2]  # what load_dataset holds
    with pytest.raises(NetscopeError) as caught:
        occlusion(lecture_run.pixel_model(), images, labels, window=7)
    assert "uint8 pixels: divide by 255 (or use `dataset.float_images()`)" in str(caught.value)
    maps = occlusion(lecture_run.pixel_model(), mnist.float_images()[:2], labels, window=7)
    assert maps.shape == (2, 28, 28)
