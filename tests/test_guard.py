"""netscope.guard: a model comes back exactly as it went in (per-module training flags,
requires_grad, .grad, hooks, thread count), analyses work inside no_grad and inference_mode, and
images that do not fit the model give one clear error. The test of every analysis on several
models is in test_any_model.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netscope.attack import deepfool, fgsm, lbfgs, pgd, universal_perturbation
from netscope.errors import NetscopeError
from netscope.guard import check_images, model_untouched
from netscope.inspect import class_models, integrated_gradients, morph, occlusion, saliency
from netscope.threads import small_steps_on_one_thread


def colour_net() -> nn.Sequential:
    """A 3-channel network with BatchNorm and Dropout, its statistics moved from their start."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(16, 10),
    )
    with torch.no_grad():
        net(torch.rand(8, 3, 10, 10))
    return net


class Normalize(nn.Module):
    """A user's own normalisation layer, put in front of the network with nn.Sequential."""

    def forward(self, x):
        return (x - 0.5) / 0.25


def images(n: int = 4, channels: int = 3) -> torch.Tensor:
    return torch.rand(n, channels, 10, 10, generator=torch.Generator().manual_seed(1))


def test_model_untouched_restores_every_module_even_after_an_error():
    net = colour_net().train()
    net[1].eval()  # a user's frozen BatchNorm inside a training model
    flags = [m.training for m in net.modules()]
    net[0].weight.grad = torch.ones_like(net[0].weight)
    grad = net[0].weight.grad
    net[6].bias.requires_grad_(False)
    with pytest.raises(RuntimeError, match="inside"):
        with model_untouched(net):
            assert not any(m.training for m in net.modules())
            assert not any(p.requires_grad for p in net.parameters())
            assert torch.is_grad_enabled()
            net[3].register_forward_hook(lambda *args: None)  # left behind by the error
            torch.set_num_threads(1)
            raise RuntimeError("inside")
    assert [m.training for m in net.modules()] == flags
    assert net[0].weight.grad is grad and torch.equal(grad, torch.ones_like(grad))
    assert [p.requires_grad for p in net.parameters()] == [True] * 5 + [False]
    assert not net[3]._forward_hooks


@pytest.mark.parametrize("wrap", ["Normalized", "nn.Sequential(Normalize(), net)"])
@pytest.mark.parametrize("attack", [pgd, deepfool])
def test_an_attack_on_a_wrapped_model_leaves_the_inner_model_in_eval_mode(wrap, attack):
    """The issue's case: after the attack the next plain forward moved BatchNorm's running mean
    (the wrapper, new and so in training mode, was restored with .train(True) for all)."""
    from netscope.models import Normalized

    net = colour_net().eval()
    model = Normalized(net, (0.5,) * 3, (0.25,) * 3) if wrap == "Normalized" else None
    model = model or nn.Sequential(Normalize(), net)
    x = images()
    with torch.no_grad():
        labels = model(x).argmax(1)
    kwargs = {"eps": 0.1, "steps": 3} if attack is pgd else {"max_iter": 3}
    attack(model, x, labels, **kwargs)
    assert model.training and not net.training and not net[1].training
    mean = net[1].running_mean.clone()
    with torch.no_grad():
        net(x)
    assert torch.equal(net[1].running_mean, mean)


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_analyses_work_inside_no_grad_and_inference_mode(mode):
    net = colour_net().eval()
    with mode():
        x = images()  # inside inference_mode: an inference tensor
        labels = torch.tensor([0, 1, 2, 3])
        assert fgsm(net, x, labels, 0.1).adversarial.shape == x.shape
        assert pgd(net, x, labels, 0.1, steps=2).adversarial.shape == x.shape
        assert deepfool(net, x, labels, max_iter=2).adversarial.shape == x.shape
        assert saliency(net, x, labels).shape == (4, 10, 10)
        assert integrated_gradients(net, x, labels, steps=2).shape == x.shape
        assert class_models(net, [1], (3, 10, 10), steps=2).images.shape == (1, 3, 10, 10)
        assert morph(net, x[:1], [2], steps=2, frames=2).frames.shape == (1, 2, 3, 10, 10)


GREY_CALLS = {
    "fgsm": lambda m, x, y: fgsm(m, x, y, 0.1),
    "pgd": lambda m, x, y: pgd(m, x, y, 0.1, steps=2),
    "deepfool": lambda m, x, y: deepfool(m, x, y),
    "lbfgs": lambda m, x, y: lbfgs(m, x, y),
    "universal": lambda m, x, y: universal_perturbation(m, x),
    "saliency": lambda m, x, y: saliency(m, x, y),
    "integrated_gradients": lambda m, x, y: integrated_gradients(m, x, y),
    "occlusion": lambda m, x, y: occlusion(m, x, y),
    "morph": lambda m, x, y: morph(m, x, y),
}


@pytest.mark.parametrize("name", list(GREY_CALLS))
def test_grey_images_for_a_colour_model_are_one_clear_error(name):
    with pytest.raises(NetscopeError, match=r"images of size 1×10×10 \(C×H×W\) do not fit"):
        GREY_CALLS[name](colour_net().eval(), images(channels=1), torch.tensor([0, 1, 2, 3]))


@pytest.mark.parametrize(
    "value, message",
    [
        (torch.rand(10, 10), r"expected a float tensor N×C×H×W .*\(10, 10\)"),
        (torch.zeros(4, 3, 10, 10, dtype=torch.uint8), "torch.uint8"),
        (torch.zeros(0, 3, 10, 10), "at least one image"),
        (torch.full((1, 3, 10, 10), 255.0), r"pixels must lie in \[0, 1\]"),
    ],
)
def test_bad_images_are_one_clear_error(value, message):
    with pytest.raises(NetscopeError, match=message):
        check_images(value, pixels=True)


def test_thread_count_is_the_callers_unless_small_steps_may_use_one_thread():
    """class_models leaves torch's thread count alone while the user's model runs; inside
    small_steps_on_one_thread (what `netscope inspect` enters) it uses one and restores it."""
    net = colour_net().eval()
    seen = []
    net[0].register_forward_hook(lambda *args: seen.append(torch.get_num_threads()))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        class_models(net, [1], (3, 10, 10), steps=2)
        assert set(seen) == {2}
        seen.clear()
        with small_steps_on_one_thread():
            class_models(net, [1], (3, 10, 10), steps=2)
        assert 1 in seen and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
