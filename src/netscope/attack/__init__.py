"""Adversarial examples and fooling images on any model that maps pixels in [0, 1] to logits.

from netscope.attack import deepfool, pgd
result = deepfool(run.pixel_model(), images, labels)
result.metrics()  # success_rate, l2_median, linf_median, rho_adv, s_per_image, ...
"""

from netscope.attack.deepfool import deepfool
from netscope.attack.fooling import FoolingResult, fooling_images
from netscope.attack.gradient import fgsm, pgd
from netscope.attack.lbfgs import lbfgs
from netscope.attack.pipeline import AttackConfig, FoolConfig, run_attack, run_fool
from netscope.attack.plots import (
    plot_attack_examples,
    plot_fooling_grid,
    plot_norm_histogram,
    plot_success_curve,
    plot_universal,
)
from netscope.attack.result import AttackResult
from netscope.attack.training import adversarial_batch_transform
from netscope.attack.universal import (
    UniversalResult,
    apply_universal,
    fooling_rate,
    universal_perturbation,
)

__all__ = [
    "AttackConfig",
    "AttackResult",
    "FoolConfig",
    "FoolingResult",
    "UniversalResult",
    "adversarial_batch_transform",
    "apply_universal",
    "deepfool",
    "fgsm",
    "fooling_images",
    "fooling_rate",
    "lbfgs",
    "pgd",
    "plot_attack_examples",
    "plot_fooling_grid",
    "plot_norm_histogram",
    "plot_success_curve",
    "plot_universal",
    "run_attack",
    "run_fool",
    "universal_perturbation",
]
