"""Every public analysis on models that are not ours: a residual network with BatchNorm, Dropout
and in-place ReLU (passed in training mode, in eval mode, inside `torch.no_grad()`, and wrapped as
`Normalized(net.eval())`), a CNN written with functional ops, and an MLP. Each call must leave the
model and its inputs exactly as it found them. Then the oracles: Captum, Foolbox, torchattacks and
plain reference implementations on the same models."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from user_models import FunctionalCNN, ResNet

from netscope.attack import (
    apply_universal,
    deepfool,
    fgsm,
    fooling_images,
    fooling_rate,
    lbfgs,
    pgd,
    universal_perturbation,
)
from netscope.compare import CompareConfig, compare_models, layer_features
from netscope.data import load_dataset
from netscope.errors import NetscopeError
from netscope.guard import HOOK_DICTS
from netscope.inspect import (
    activations,
    class_models,
    deep_dream,
    filters,
    integrated_gradients,
    morph,
    occlusion,
    receptive_field,
    recompute_on_canvas,
    saliency,
    top_patches,
    top_projections,
    unit_growth,
    visualise_units,
)
from netscope.inspect.projection import project
from netscope.models import Normalized
from netscope.threads import one_cpu_thread


@pytest.fixture(autouse=True)
def one_thread_for_tiny_models():
    """These models are tiny: on the shared 2-core test machine a second CPU thread only adds
    waiting (measured: DeepFool and Foolbox 3-10x faster). The checks compare the thread count
    before and after each call, whatever it is."""
    with one_cpu_thread():
        yield


# ---------------------------------------------------------------- models that are not ours


def residual_net() -> nn.Module:
    """A ResNet in torchvision's layout in miniature (stem, one block per stage, the second
    downsampling; BatchNorm, one in-place ReLU module used twice per block, `out += identity`)
    with Dropout before its read-out: 1 342 parameters."""
    net = ResNet(blocks=(1, 1), width=4, stem=3, classes=10)
    net.fc = nn.Sequential(nn.Dropout(0.5), net.fc)
    return net


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), nn.ReLU(), nn.Linear(16, 10))


MODELS = {"residual": residual_net, "functional": FunctionalCNN, "mlp": mlp}


@functools.cache
def mnist(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns the first n real MNIST images of `split` as pixels in [0, 1], and their labels."""
    dataset = load_dataset("mnist")
    images = getattr(dataset, f"{split}_images")[:n].float() / 255
    return images, getattr(dataset, f"{split}_labels")[:n]


@functools.cache
def trained_weights(kind: str) -> dict[str, torch.Tensor]:
    """Returns the weights (BatchNorm statistics included) of `kind` after 150 Adam steps on
    MNIST, so that its decisions, gradients and attacks mean something."""
    torch.manual_seed(0)
    model = MODELS[kind]()
    images, labels = mnist("train", 4800)
    if kind == "residual":
        images = images.expand(-1, 3, -1, -1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for x, y in zip(images.split(32), labels.split(32)):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def trained(kind: str) -> nn.Module:
    """Returns a fresh model of `kind` with the cached trained weights, in training mode."""
    model = MODELS[kind]()
    model.load_state_dict(trained_weights(kind))
    return model


@dataclass
class Case:
    """A model, how it is called, the images it sees and the layers the analyses look at."""

    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    conv: str  # a convolutional layer (the MLP's first Linear, which conv analyses refuse)
    hidden: str  # a hidden layer
    context: Callable = contextlib.nullcontext

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


def make_case(name: str) -> Case:
    """Returns the test case `name` (one of CASES), built afresh on 6 real MNIST test digits."""
    grey, labels = mnist("test", 6)
    if name == "functional":
        return Case(trained("functional").eval(), grey, labels, "conv1", "conv2")
    if name == "mlp":
        return Case(trained("mlp").eval(), grey, labels, "1", "2")
    net = trained("residual").train(name == "residual-train")
    if name == "residual-wrapped":  # a new wrapper is in training mode, the network in eval mode
        net = Normalized(net, (0.0,) * 3, (1.0,) * 3)
    context = torch.no_grad if name == "residual-no-grad" else contextlib.nullcontext
    return Case(net, grey.repeat(1, 3, 1, 1), labels, "conv1", "layer1", context)


CASES = [
    "residual-train",
    "residual-eval",
    "residual-no-grad",
    "residual-wrapped",
    "functional",
    "mlp",
]


# ---------------------------------------------------------------- every public analysis


def _top(c: Case):
    return top_patches(c.model, c.images, c.conv, k=2)


def _recompute(c: Case):
    return recompute_on_canvas(c.model, c.shape, _top(c))


def _compare(c: Case):
    config = CompareConfig(folds=2, progress=False)
    return compare_models(c.model, c.model, c.images, [c.hidden], [c.hidden], config=config)


V = 0.05  # a universal perturbation's pixel change

ANALYSES: dict[str, Callable[[Case], object]] = {
    "activations": lambda c: activations(c.model, c.images, [c.hidden]),
    "filters": lambda c: filters(c.model),
    "receptive_field": lambda c: receptive_field(c.model, c.conv, c.shape),
    "top_patches": _top,
    "recompute_on_canvas": _recompute,
    "occlusion": lambda c: occlusion(c.model, c.images, c.labels, window=3, stride=2),
    "saliency": lambda c: saliency(c.model, c.images, c.labels),
    "integrated_gradients": lambda c: integrated_gradients(
        c.model, c.images, c.labels, steps=4, batch_size=5
    ),
    "project": lambda c: project(c.model, c.images[:2], c.conv, [0, 1]),
    "top_projections": lambda c: top_projections(c.model, c.images, c.conv, k=2, units=[0, 1]),
    "unit_growth": lambda c: unit_growth([(1, c.model)], c.images, {c.conv: [0]}),
    "visualise_units": lambda c: visualise_units(c.model, c.hidden, c.shape, [0, 1], steps=3),
    "class_models": lambda c: class_models(c.model, [0, 1, 2], c.shape, steps=3, batch_size=2),
    "deep_dream": lambda c: deep_dream(c.model, c.images[:2], c.hidden, octaves=1, steps=2),
    "morph": lambda c: morph(c.model, c.images[:2], [3, 4], steps=3, frames=3),
    "fgsm": lambda c: fgsm(c.model, c.images, c.labels, 0.1),
    "pgd": lambda c: pgd(c.model, c.images, c.labels, 0.1, steps=3),
    "deepfool": lambda c: deepfool(c.model, c.images, c.labels, max_iter=3),
    "lbfgs": lambda c: lbfgs(c.model, c.images[:2], c.labels[:2], search_steps=1, max_iter=3),
    "universal_perturbation": lambda c: universal_perturbation(
        c.model, c.images, xi=1.0, max_passes=1, max_iter=2, batch_size=3
    ),
    "apply_universal": lambda c: apply_universal(
        c.model, c.images, torch.full(c.shape, V), c.labels
    ),
    "fooling_images": lambda c: fooling_images(c.model, c.shape, [0, 1, 2], steps=3, batch_size=2),
    "fooling_evolution": lambda c: fooling_images(
        c.model, c.shape, [0, 1], method="evolution", steps=3, population=4
    ),
    "fooling_rate": lambda c: fooling_rate(c.model, c.images, torch.full(c.shape, V)),
    "layer_features": lambda c: layer_features(c.model, c.images, [c.hidden]),
    "compare_models": _compare,
}

# analyses that need a convolutional layer: on the MLP they refuse with one clear error
NEEDS_CONV = {
    "filters",
    "receptive_field",
    "top_patches",
    "recompute_on_canvas",
    "top_projections",
    "unit_growth",
}


def snapshot(case: Case) -> dict:
    """Returns everything an analysis must leave as it found it, copied."""
    model = case.model
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad": [(p.grad, None if p.grad is None else p.grad.clone()) for p in model.parameters()],
        "hooks": [{name: dict(getattr(m, name)) for name in HOOK_DICTS} for m in model.modules()],
        "threads": torch.get_num_threads(),
        "inputs": [(t, t._version, t.clone()) for t in (case.images, case.labels)],
    }


def assert_untouched(case: Case, before: dict) -> None:
    model = case.model
    after = model.state_dict()
    assert list(after) == list(before["state"])
    for key, value in before["state"].items():
        assert torch.equal(after[key], value), f"state_dict[{key!r}] changed"
    assert [m.training for m in model.modules()] == before["training"]
    assert [p.requires_grad for p in model.parameters()] == before["requires_grad"]
    for p, (grad, copy) in zip(model.parameters(), before["grad"]):
        assert p.grad is grad and (grad is None or torch.equal(grad, copy))
    hooks = [{name: dict(getattr(m, name)) for name in HOOK_DICTS} for m in model.modules()]
    assert hooks == before["hooks"]
    assert torch.get_num_threads() == before["threads"]
    for tensor, version, copy in before["inputs"]:
        assert tensor._version == version and torch.equal(tensor, copy)


def user_state(model: nn.Module) -> list:
    """Gives the model what a user's model carries: a forward hook, a pre-hook, gradients left
    from training and one frozen parameter. Returns the hook handles."""
    params = list(model.parameters())
    params[0].requires_grad_(False)
    for p in params[1:]:
        p.grad = torch.randn_like(p)
    first = next(m for m in model.modules() if not list(m.children()))
    return [
        first.register_forward_hook(lambda m, i, o: None),
        first.register_forward_pre_hook(lambda m, i: None),
    ]


@pytest.mark.parametrize("case_name", CASES)
@pytest.mark.parametrize("name", list(ANALYSES))
def test_every_analysis_leaves_the_model_and_inputs_as_it_found_them(name, case_name):
    case = make_case(case_name)
    handles = user_state(case.model)
    before = snapshot(case)
    with case.context():
        if case_name == "mlp" and name in NEEDS_CONV:
            with pytest.raises(NetscopeError):
                ANALYSES[name](case)
        else:
            ANALYSES[name](case)
    assert_untouched(case, before)
    for handle in handles:
        handle.remove()


# ---------------------------------------------------------------- oracles on the same models

ORACLE_CASES = ["residual-eval", "functional", "mlp"]


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
@pytest.mark.parametrize("case_name", ORACLE_CASES)
def test_saliency_and_integrated_gradients_equal_captum(case_name):
    from captum.attr import IntegratedGradients, Saliency

    case = make_case(case_name)
    model, images, labels = case.model, case.images, case.labels
    theirs = Saliency(model).attribute(images, target=labels, abs=True).amax(1)
    torch.testing.assert_close(saliency(model, images, labels), theirs)
    ours = integrated_gradients(model, images, labels, steps=8, batch_size=5)
    theirs = IntegratedGradients(model).attribute(
        images, torch.zeros_like(images), target=labels, n_steps=8, method="riemann_middle"
    )
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def reference_pgd(model, images, labels, eps, alpha, steps):
    """PGD from a fixed start as Madry et al. write it: x ← Π(x + α·sign(∇ CE)), the projection
    onto the L-inf ball around the image and the pixel box (one step from the image: FGSM)."""
    x = images.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), labels), x)
        x = x.detach() + alpha * grad.sign()
        x = (images + (x - images).clamp(-eps, eps)).clamp(0, 1)
    return x


def fixed_pgd(model, images, labels):
    """Returns our PGD's images with the settings every library shares: ε 0.1, 5 constant steps
    of 0.03 from the image itself, every image taking every step."""
    return pgd(
        model,
        images,
        labels,
        0.1,
        steps=5,
        step_size=0.03,
        random_start=False,
        schedule="constant",
        early_stop=False,
    ).adversarial


@pytest.mark.parametrize("case_name", ORACLE_CASES)
def test_fgsm_and_pgd_equal_a_plain_reference(case_name):
    case = make_case(case_name)
    model, images, labels = case.model, case.images, case.labels
    ours = fgsm(model, images, labels, 0.1).adversarial
    torch.testing.assert_close(ours, reference_pgd(model, images, labels, 0.1, 0.1, 1))
    ours = fixed_pgd(model, images, labels)
    torch.testing.assert_close(ours, reference_pgd(model, images, labels, 0.1, 0.03, 5))


@pytest.mark.parametrize("case_name", ORACLE_CASES)
def test_fgsm_and_pgd_equal_torchattacks(case_name):
    torchattacks = pytest.importorskip("torchattacks")
    case = make_case(case_name)
    model, images, labels = case.model, case.images, case.labels
    theirs = torchattacks.FGSM(model, eps=0.1)(images, labels)
    torch.testing.assert_close(fgsm(model, images, labels, 0.1).adversarial, theirs)
    attack = torchattacks.PGD(model, eps=0.1, alpha=0.03, steps=5, random_start=False)
    ours = fixed_pgd(model, images, labels)
    torch.testing.assert_close(ours, attack(images, labels))


@pytest.mark.parametrize("classes_per_backward", [None, 9])
@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("case_name", ORACLE_CASES)
def test_deepfool_equals_foolbox(case_name, norm, classes_per_backward):
    """Both ways of getting the candidates' gradients (a backward pass per class, or all 9 in
    one vmapped pass) give Foolbox's adversarial images."""
    foolbox = pytest.importorskip("foolbox")
    case = make_case(case_name)
    model, images, labels = case.model, case.images, case.labels
    with torch.no_grad():
        labels = model(images).argmax(1)  # attack the model's own decisions
    ours = deepfool(
        model, images, labels, norm=norm, overshoot=0.02, classes_per_backward=classes_per_backward
    )
    attack = (
        foolbox.attacks.L2DeepFoolAttack if norm == "l2" else foolbox.attacks.LinfDeepFoolAttack
    )
    _, theirs, success = attack(steps=50, overshoot=0.02, candidates=10)(
        foolbox.PyTorchModel(model, bounds=(0, 1)), images, labels, epsilons=None
    )
    assert torch.equal(ours.success, success)
    # rounding over the iterations: 1.2e-5 on one residual-network image, as before this change
    assert (ours.adversarial - theirs).abs().max() < 1e-4


def test_every_public_analysis_is_in_the_table():
    """A new analysis exported by inspect, attack or compare must join ANALYSES (and so be
    checked on every model above) and carry @guarded; the exports that only read a model's
    structure are named. unit_growth takes (epoch, model) pairs and runs guarded analyses."""
    import inspect as introspect

    import netscope.attack
    import netscope.compare
    import netscope.inspect

    exported = {
        name: getattr(package, name)
        for package in (netscope.inspect, netscope.attack, netscope.compare)
        for name in package.__all__
        if introspect.isfunction(getattr(package, name))
    }
    takes_a_model = {
        name
        for name, function in exported.items()
        if next(iter(introspect.signature(function).parameters)) in ("model", "model_a", "models")
    }
    analyses = takes_a_model - {"conv_layers", "layer_names", "resolve_layer", "default_layers"}
    assert analyses <= set(ANALYSES)
    assert all(hasattr(exported[name], "__wrapped__") for name in analyses - {"unit_growth"})
