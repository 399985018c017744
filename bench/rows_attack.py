"""Benchmark rows for the attacks: netscope vs torchattacks, Foolbox and ART on one Setup.

Every row returns (settings, variants, judge): each variant is a call that returns adversarial
images (N×C×H×W tensor on the setup's device), or for the universal row a perturbation, and the
judge turns that into the numbers compared, with netscope's own metric code for every library.
PGD runs with a constant step size 2.5·eps/steps (Madry et al.) and one random start everywhere;
netscope's early stop (an image stops once fooled) is shown with and without.
"""

from __future__ import annotations

import numpy as np
import torch
from peers import art_classifier
from setups import Setup

from netscope.attack import deepfool, fgsm, fooling_rate, pgd, universal_perturbation
from netscope.attack.result import make_result

ATTACK_KEYS = ("success_rate", "l2_median", "linf_median", "rho_adv")


def judge_adversarial(setup: Setup):
    """Returns a judge: (variant, adversarial images) -> success rate and perturbation sizes,
    over the first len(adversarial) images (a variant may attack fewer)."""

    def judge(name: str, adversarial: torch.Tensor) -> dict:
        count = len(adversarial)
        result = make_result("", setup.model, setup.images[:count], adversarial.to(setup.device),
                             setup.labels[:count], None, 0.0)  # fmt: skip
        metrics = result.metrics()
        linf_max = float(result.norms()["linf"].max())
        return {k: metrics[k] for k in ATTACK_KEYS} | {"linf_max": linf_max}

    return judge


def foolbox_call(setup: Setup, attack, eps: float | None):
    """Returns a call running a Foolbox attack on the setup (its clipped adversarials)."""
    import foolbox

    fmodel = foolbox.PyTorchModel(setup.model, bounds=(0, 1), device=setup.device)
    return lambda: attack(fmodel, setup.images, setup.labels, epsilons=eps)[1]


def art_call(setup: Setup, make_attack):
    """Returns a call running an ART attack (numpy in, numpy out) on the setup."""
    classifier = art_classifier(setup.model, setup.shape, setup.num_classes, setup.device)
    attack = make_attack(classifier)
    x, y = setup.images.cpu().numpy(), setup.labels.cpu().numpy()
    return lambda: torch.from_numpy(attack.generate(x, y=y))


def fgsm_row(setup: Setup):
    """FGSM (L-inf), one step of size eps."""
    import foolbox
    import torchattacks
    from art.attacks.evasion import FastGradientMethod

    eps, n = setup.eps_linf, len(setup.images)
    variants = {
        "netscope": lambda: fgsm(setup.model, setup.images, setup.labels, eps).adversarial,
        "torchattacks": lambda: torchattacks.FGSM(setup.model, eps=eps)(setup.images, setup.labels),
        "foolbox": foolbox_call(setup, foolbox.attacks.FGSM(), eps),
        "art": art_call(setup, lambda c: FastGradientMethod(c, norm=np.inf, eps=eps, batch_size=n)),
    }
    return {"eps": eps}, variants, judge_adversarial(setup)


def pgd_row(setup: Setup, norm: str):
    """PGD in the L-inf or L2 ball: same eps, steps, step size and one random start."""
    import foolbox
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescentPyTorch

    eps = setup.eps_linf if norm == "linf" else setup.eps_l2
    steps, n = setup.steps, len(setup.images)
    alpha = 2.5 * eps / steps
    ta = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    fb = foolbox.attacks.LinfPGD if norm == "linf" else foolbox.attacks.L2PGD

    def ours(early_stop: bool):
        return lambda: pgd(setup.model, setup.images, setup.labels, eps, norm, steps, alpha,
                           schedule="constant", early_stop=early_stop).adversarial  # fmt: skip

    def art_pgd(classifier):
        return ProjectedGradientDescentPyTorch(
            classifier, norm=np.inf if norm == "linf" else 2, eps=eps, eps_step=alpha,
            max_iter=steps, num_random_init=1, batch_size=n, verbose=False)  # fmt: skip

    variants = {
        "netscope": ours(early_stop=True),
        "netscope (no early stop)": ours(early_stop=False),
        "torchattacks": lambda: ta(
            setup.model, eps=eps, alpha=alpha, steps=steps, random_start=True
        )(setup.images, setup.labels),  # fmt: skip
        "foolbox": foolbox_call(setup, fb(steps=steps, abs_stepsize=alpha, random_start=True), eps),
        "art": art_call(setup, art_pgd),
    }
    return {"eps": eps, "steps": steps, "step_size": alpha}, variants, judge_adversarial(setup)


def deepfool_row(setup: Setup, slow_n: int):
    """DeepFool (L2), overshoot 0.02, 50 steps, the 10 most likely classes as candidates.

    torchattacks has no candidate limit (its Jacobian covers every class, one image at a time), so
    it runs on the first `slow_n` images only: its images/s is comparable, its success and norms
    are over those images."""
    import foolbox
    import torchattacks
    from art.attacks.evasion import DeepFool

    n = len(setup.images)
    fb = foolbox.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02)
    slow = min(slow_n, n)
    few = setup.images[:slow], setup.labels[:slow]

    variants = {
        "netscope": lambda: (
            deepfool(
                setup.model, setup.images, setup.labels, overshoot=0.02, max_iter=50, candidates=10
            ).adversarial
        ),  # fmt: skip
        "foolbox": foolbox_call(setup, fb, None),
        "torchattacks": lambda: torchattacks.DeepFool(setup.model, steps=50, overshoot=0.02)(*few),
        "art": art_call(
            setup,
            lambda c: DeepFool(
                c, max_iter=50, epsilon=0.02, nb_grads=10, batch_size=n, verbose=False
            ),
        ),  # fmt: skip
    }
    settings = {"overshoot": 0.02, "steps": 50, "candidates": 10, "images": {"torchattacks": slow}}
    return settings, variants, judge_adversarial(setup)


def universal_row(setup: Setup, passes: int):
    """Universal perturbation (L2 ball of radius xi) built with DeepFool steps on the setup's
    images, its fooling rate measured on the held-out images by the same code for both."""
    from art.attacks.evasion import UniversalPerturbation

    deepfool_params = {"max_iter": 10, "epsilon": 0.02, "nb_grads": 10, "verbose": False}

    def art():
        classifier = art_classifier(setup.model, setup.shape, setup.num_classes, setup.device)
        attack = UniversalPerturbation(
            classifier, attacker="deepfool", attacker_params=deepfool_params, delta=0.2,
            max_iter=passes, eps=setup.xi, norm=2, batch_size=len(setup.images), verbose=False)  # fmt: skip
        attack.generate(setup.images.cpu().numpy())
        return torch.from_numpy(attack.noise[0]).float()

    variants = {
        "netscope": lambda: (
            universal_perturbation(
                setup.model,
                setup.images,
                xi=setup.xi,
                target_rate=0.8,
                max_passes=passes,
                overshoot=0.02,
                max_iter=10,
            ).perturbation
        ),  # fmt: skip
        "art": art,
    }

    def judge(name: str, v: torch.Tensor) -> dict:
        v = v.to(setup.device)
        return {"heldout_fooling_rate": fooling_rate(setup.model, setup.heldout, v),
                "train_fooling_rate": fooling_rate(setup.model, setup.images, v),
                "l2": float(v.norm())}  # fmt: skip

    settings = {"xi_l2": setup.xi, "passes": passes, "target_rate": 0.8, "deepfool_steps": 10,
                "heldout": len(setup.heldout)}  # fmt: skip
    return settings, variants, judge
