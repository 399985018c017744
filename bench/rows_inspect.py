"""Benchmark rows for the inspection methods: netscope vs Captum (saliency, integrated gradients,
occlusion) and vs torch-lucent (class-model images), on one Setup. Same structure as rows_attack:
(settings, variants, judge)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from peers import lucent
from setups import Setup

from netscope.inspect import class_models, integrated_gradients, occlusion, saliency


def judge_map(setup: Setup, convert=None):
    """Returns a judge: (variant, map) -> the map's largest absolute difference from netscope's
    (judged first), absolute and relative to netscope's largest |value|. `convert` turns
    netscope's map into the peer's form first (outside the timing)."""
    seen: dict[str, torch.Tensor] = {}

    def judge(name: str, value: torch.Tensor) -> dict:
        value = value.detach().to(setup.device).float()
        if name == "netscope":
            seen["netscope"] = value = convert(value) if convert else value
        base = seen["netscope"]
        diff = float((value - base).abs().max())
        return {
            "max_abs_diff": diff,
            "max_rel_diff": diff / float(base.abs().max().clamp_min(1e-30)),
        }

    return judge


def saliency_row(setup: Setup):
    """|d logit / d pixel|, maximum over colour channels (Simonyan et al. 2014)."""
    from captum.attr import Saliency

    def captum():
        grads = Saliency(setup.model).attribute(setup.images, target=setup.labels, abs=True)
        return grads.amax(1)

    variants = {
        "netscope": lambda: saliency(setup.model, setup.images, setup.labels),
        "captum": captum,
    }
    return {}, variants, judge_map(setup)


def integrated_gradients_row(setup: Setup, steps: int = 32):
    """Integrated gradients from black, `steps` midpoint (Riemann) steps, setup.batch path points
    per forward on both sides."""
    from captum.attr import IntegratedGradients

    x, y = setup.images, setup.labels
    variants = {
        "netscope": lambda: integrated_gradients(
            setup.model, x, y, steps=steps, batch_size=setup.batch
        ),  # fmt: skip
        "captum": lambda: IntegratedGradients(setup.model).attribute(
            x, target=y, n_steps=steps, method="riemann_middle", internal_batch_size=setup.batch
        ),  # fmt: skip
    }
    return {"steps": steps, "batch": setup.batch}, variants, judge_map(setup)


def captum_occlusion_from_ours(
    ours: torch.Tensor, clean_prob: torch.Tensor, window: int, stride: int
) -> torch.Tensor:
    """Returns the map Captum's Occlusion gives, rebuilt from netscope's occlusion map.

    netscope maps p(target | window centred on each stride-grid pixel), windows may hang over the
    edge; Captum slides windows from the top-left corner, keeps only those fully inside, and gives
    each pixel p(clean) − p(occluded) averaged over the windows covering it. With the window's half
    a multiple of the stride, Captum's windows are a subset of ours, so the rebuilt map is exact."""
    n, height, width = ours.shape
    total, count = torch.zeros_like(ours), torch.zeros_like(ours)
    for top in range(0, height - window + 1, stride):
        for left in range(0, width - window + 1, stride):
            prob = ours[:, top + window // 2, left + window // 2]  # the window centred there
            total[:, top : top + window, left : left + window] += (clean_prob - prob)[:, None, None]
            count[:, top : top + window, left : left + window] += 1
    return total / count


def occlusion_row(setup: Setup):
    """Occlusion by a grey (0.5) square, softmax probability of the label; same window, stride and
    images per forward. netscope also evaluates windows that hang over the border (one per stride
    cell); Captum only those fully inside (fewer forwards); the map difference is measured on
    Captum's windows (captum_occlusion_from_ours)."""
    from captum.attr import Occlusion

    x, y, w, s = setup.images, setup.labels, setup.window, setup.stride
    channels = x.shape[1]

    def probabilities(images: torch.Tensor) -> torch.Tensor:
        return setup.model(images).softmax(1)

    def to_captum(maps: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            clean = probabilities(x).gather(1, y[:, None])[:, 0]
        return captum_occlusion_from_ours(maps, clean, w, s)

    def captum():
        maps = Occlusion(probabilities).attribute(
            x, sliding_window_shapes=(channels, w, w), strides=(channels, s, s), baselines=0.5,
            target=y, perturbations_per_eval=setup.batch)  # fmt: skip
        return maps[:, 0]

    side = len(range(0, x.shape[2], s)), len(range(0, x.shape[2] - w + 1, s))
    settings = {"window": w, "stride": s, "batch": setup.batch,
                "forwards_per_image": {"netscope": side[0] ** 2, "captum": side[1] ** 2}}  # fmt: skip
    variants = {
        "netscope": lambda: occlusion(
            setup.model, x, y, window=w, stride=s, value=0.5, batch_size=setup.batch
        ),  # fmt: skip
        "captum": captum,
    }
    return settings, variants, judge_map(setup, to_captum)


def last_linear(model: torch.nn.Module) -> str:
    """Returns lucent's name (dots → underscores) of the model's last Linear layer: the logits."""
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    return names[-1].replace(".", "_")


def class_model_row(setup: Setup, steps: int):
    """Class-model images for the first setup.classes classes, grown together in one batch for
    `steps` Adam steps (lr 0.05 on both sides). netscope: its defaults (pixels from grey, TV,
    jitter, blur). lucent: its documented render_vis defaults (FFT parameterisation, standard
    transforms), colour decorrelation only for 3 channels, no ImageNet preprocessing (the model
    normalises itself). Objective reached: the mean target logit of the final images, evaluated
    by the same forward for both."""
    render, param, objectives = lucent()
    classes = torch.arange(setup.classes, device=setup.device)
    channels, height, width = setup.shape
    layer = last_linear(setup.model)

    def lucent_images():
        objective = sum(objectives.channel(layer, int(c), batch=i) for i, c in enumerate(classes))
        images = render.render_vis(
            setup.model, objective,
            lambda: param.image(width, height, batch=len(classes), channels=channels,
                                decorrelate=channels == 3),
            thresholds=(steps,), preprocess=False, progress=False, show_image=False,
            fixed_image_size=(height, width))  # fmt: skip
        return torch.from_numpy(images[-1]).permute(0, 3, 1, 2)

    variants = {
        "netscope": lambda: class_models(setup.model, classes, setup.shape, steps=steps).images,
        "lucent": lucent_images,
    }

    def judge(name: str, images: torch.Tensor) -> dict:
        with torch.no_grad():
            logits = setup.model(images.to(setup.device).float())
        target = logits.gather(1, classes[:, None])[:, 0]
        prob = F.softmax(logits, 1).gather(1, classes[:, None])[:, 0]
        return {"mean_target_logit": float(target.mean()), "mean_target_prob": float(prob.mean()),
                "argmax_is_target": float((logits.argmax(1) == classes).float().mean())}  # fmt: skip

    images = {name: setup.classes for name in variants}  # images/s counts class images made
    settings = {"steps": steps, "classes": setup.classes, "lr": 0.05, "images": images}
    return settings, variants, judge
