"""Adversarial examples and fooling images on any model that maps pixels in [0, 1] to logits.

from netscope.attack import deepfool, pgd
result = deepfool(run.pixel_model(), images, labels)
result.metrics()  # success_rate, l2_median, linf_median, rho_adv, s_per_image, ...

`ATTACKS` names every attack the CLI, the demo, the report and the web page can run.
"""

from netscope.attack.deepfool import DeepFoolOptions, deepfool
from netscope.attack.fooling import FoolingResult, fooling_images, plot_fooling_grid
from netscope.attack.gradient import PGDOptions, fgsm, pgd
from netscope.attack.lbfgs import LBFGSOptions, lbfgs
from netscope.attack.pipeline import AttackConfig, FoolConfig, run_attack, run_fool
from netscope.attack.plots import plot_attack_examples, plot_norm_histogram, plot_success_curve
from netscope.attack.registry import ATTACKS
from netscope.attack.result import AttackResult
from netscope.attack.spec import AttackJob, AttackSpec
from netscope.attack.training import adversarial_batch_transform
from netscope.attack.universal import (
    UniversalOptions,
    UniversalResult,
    apply_universal,
    fooling_rate,
    plot_universal,
    universal_perturbation,
)

__all__ = [
    "ATTACKS",
    "AttackConfig",
    "AttackJob",
    "AttackResult",
    "AttackSpec",
    "DeepFoolOptions",
    "FoolConfig",
    "FoolingResult",
    "LBFGSOptions",
    "PGDOptions",
    "UniversalOptions",
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
