"""The one layer resolver and capture (netscope.inspect.hooks) on models that are not ours: a
residual network with BatchNorm, in-place ReLU (one module used twice per block) and
`out += identity`, and a CNN written with functions in `forward`."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from user_models import FunctionalCNN, tiny_resnet

from netscope.errors import NetscopeError
from netscope.inspect import activations
from netscope.inspect.hooks import layer_calls, resolve_layer, run_to
from netscope.models import Normalized
from netscope.serve.app import shown_layers

# BatchNorm outputs that an in-place ReLU or `out += identity` overwrites later in the pass,
# both calls of a shared ReLU, a block, a shortcut and the logits
LAYERS = [
    "bn1",
    "layer1.0.bn1",
    "layer1.0.bn2",
    "layer1.0.relu",
    "layer1.0.relu#1",
    "layer1",
    "layer2.0.downsample",
    "layer2.0.bn2",
    "fc",
]


@pytest.fixture(scope="module")
def resnet():
    return tiny_resnet()


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def by_hand(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The block's intermediate values, computed without hooks or in-place operations."""
    stem = F.relu(model.bn1(model.conv1(x)))
    block = model.layer1[0]
    bn1 = block.bn1(block.conv1(model.maxpool(stem)))
    bn2 = block.bn2(block.conv2(F.relu(bn1)))
    return {
        "bn1": model.bn1(model.conv1(x)),
        "layer1.0.bn1": bn1,
        "layer1.0.bn2": bn2,
        "layer1.0.relu": F.relu(bn1),
        "layer1.0.relu#1": F.relu(bn2 + model.maxpool(stem)),
    }


def test_all_layers_at_once_equal_each_layer_alone_exactly(resnet, photos):
    together = activations(resnet, photos, LAYERS)
    for name in LAYERS:
        assert torch.equal(together[name], activations(resnet, photos, [name])[name]), name
    with torch.no_grad():
        expected = by_hand(resnet, photos)
    for name, value in expected.items():
        torch.testing.assert_close(together[name], value, rtol=0, atol=1e-6)
    assert (together["layer1.0.bn2"] < 0).any()  # values an in-place ReLU would have zeroed
    assert torch.equal(together["layer1.0.relu#1"], together["layer1"])
    torch.testing.assert_close(together["fc"], resnet(photos), rtol=0, atol=0)


def test_a_module_called_twice_is_one_layer_per_call(resnet):
    calls = layer_calls(resnet, (3, 32, 32))
    assert calls[:4] == ["conv1", "bn1", "relu", "maxpool"]
    block = [c for c in calls if c.startswith("layer1.")]
    assert block == [
        "layer1.0.conv1",
        "layer1.0.bn1",
        "layer1.0.relu",
        "layer1.0.conv2",
        "layer1.0.bn2",
        "layer1.0.relu#1",
    ]
    assert calls[-2:] == ["avgpool", "fc"] and "layer2.0.downsample.0" in calls
    wrapped = Normalized(resnet, (0.5,) * 3, (0.25,) * 3)
    assert layer_calls(wrapped, (3, 32, 32)) == calls
    assert "layer1.0.relu#1" in shown_layers(resnet, (3, 32, 32))  # the web page's layer list


def test_gradients_flow_through_the_captured_copies(resnet, photos):
    pixels = photos[:2].clone().requires_grad_(True)
    out = run_to(resnet, pixels, ["layer1.0.bn2", "layer1.0.relu#1"])
    (grad,) = torch.autograd.grad(out["layer1.0.bn2"].sum() + out["layer1.0.relu#1"].sum(), pixels)
    pixels_again = photos[:2].clone().requires_grad_(True)
    values = by_hand(resnet, pixels_again)
    (expected,) = torch.autograd.grad(
        values["layer1.0.bn2"].sum() + values["layer1.0.relu#1"].sum(), pixels_again
    )
    torch.testing.assert_close(grad, expected)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in resnet.modules())


def test_unknown_layers_get_the_closest_name_and_the_rule_for_functions():
    model = FunctionalCNN()
    with pytest.raises(NetscopeError) as err:
        activations(model, torch.zeros(1, 1, 28, 28), ["cnv2"])
    message = str(err.value)
    assert "unknown layer 'cnv2' (did you mean 'conv2'? valid layers: conv1, conv2, fc)" in message
    assert "operations applied as functions in forward (F.relu" in message
    with pytest.raises(NetscopeError, match="expected NAME or NAME#CALL"):
        resolve_layer(model, "conv1#last")


def test_a_call_that_never_happens_says_how_often_the_module_ran(resnet, photos):
    with pytest.raises(NetscopeError, match=r"'layer1.0.relu#2' \(its module ran 2 times\)"):
        activations(resnet, photos, ["layer1.0.relu#2"])
    model = FunctionalCNN()
    model.unused = torch.nn.ReLU()
    with pytest.raises(NetscopeError, match=r"'unused' \(its module ran 0 times\)"):
        run_to(model, torch.zeros(1, 1, 28, 28), ["unused"])


def test_listing_calls_leaves_modes_and_statistics_as_found():
    model = tiny_resnet()
    model.train()
    model.layer1.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_calls(model, (3, 32, 32))
    assert model.training and not model.layer1.training and model.layer2.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
