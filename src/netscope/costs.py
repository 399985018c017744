"""How long the long commands take: measured unit costs, scaled by the command's arguments.

Every cost below is a multiple of one lecture-CNN SGD step (batch 100, channels_last), each
timed by `python bench/costs.py --run RUN --lessons` right around the work it measures, on the
shared 2-core AMD EPYC build machine (torch 2.13.0 CPU) while other jobs ran. The training and
lesson costs were measured with 2 threads; the analyses' (attacks, inspection stages, fooling,
compare) again after the capture and Gram-matrix compare rewrite, with OMP_NUM_THREADS=1: beside another
busy process, two threads wait on each other and small operations took 10-100x longer, which no
ratio survives. `STEP_S`, the step's time on the quiet machine (bench/RESULTS.md §8,
bench/interleaved.py), turns them into seconds. Estimates are good to about ±50 % on such a
CPU; a GPU is faster.
"""

from __future__ import annotations

import math

STEP_S = 0.00713  # seconds per lecture-CNN step on the quiet 2-core CPU (bench/RESULTS.md)
LECTURE_CNN_MULTIPLY_ADDS = 1_333_200  # per 1×28×28 image, netscope.models.flops

# cost in lecture-CNN steps, per the unit named after the last underscore
COSTS = {
    "train_step_clean": 1.0,  # one training step (batch 100), incl. its share of set-up
    "train_step_fgsm": 2.7,  # one step of --adversarial fgsm
    "train_step_pgd": 8.0,  # one step of --adversarial pgd (PGD-10)
    "score_image": 0.002,  # one test image scored after each epoch
    "attack_fgsm": 0.6,  # per image, --no-curve (incl. its share of writing the figures)
    "attack_fgsm_curve": 0.9,  # per image with the success curve (6 more budgets)
    "attack_pgd": 0.7,
    "attack_pgd_curve": 3.3,
    "attack_lbfgs": 25.0,
    "attack_deepfool": 1.8,
    "attack_universal": 3.4,  # per image and pass
    "inspect_filters": 7.0,  # whole stages, at InspectConfig's defaults
    "inspect_top_patches": 430.0,
    "inspect_occlusion": 80.0,
    "inspect_saliency": 33.0,
    "inspect_class_models": 100.0,
    "inspect_deep_dream": 44.0,
    "inspect_morph": 46.0,
    "inspect_projections": 850.0,
    "inspect_growth": 350.0,
    "inspect_units": 440.0,
    "fool_gradient_step": 0.36,  # per step, all classes at once
    "fool_evolution_step": 3.6,
    "compare_image": 0.74,  # per image compared, at CompareConfig's defaults
    "report": 1000.0,
}
LESSON_COSTS = {  # whole lessons at their quick defaults
    "perceptron": 100.0,
    "xor": 300.0,
    "approximation": 1500.0,
    "convolution": 200.0,
    "loss": 2000.0,
    "autoencoder": 4000.0,
    "architectures": 11000.0,
    "biology": 8000.0,
    "gan": 17000.0,
    "rnn": 4000.0,
    "scale": 200.0,
}
# --full, as a multiple of the quick version, from each lesson's settings (not measured)
FULL_FACTOR = {"perceptron": 10, "xor": 5, "approximation": 10, "loss": 12, "autoencoder": 20,
               "architectures": 200, "biology": 13, "gan": 5, "rnn": 4}  # fmt: skip
FOOL_TYPICAL_STEPS = {"gradient": 200, "evolution": 2000}  # steps the default run took


def describe(seconds: float) -> str:
    """Returns a duration as a person says it: "about 40 s", "about 3 min", "about 1.5 h"."""
    if seconds < 90:
        return f"about {max(1, round(seconds, -1 if seconds >= 20 else 0)):.0f} s"
    if seconds < 5400:
        return f"about {round(seconds / 60):.0f} min"
    return f"about {seconds / 3600:.1f} h"


def train_seconds(config, epochs: int | None = None) -> float | None:
    """Returns the expected seconds of training `config` (a TrainConfig) for `epochs` (default:
    all of them) on a named data set (None for an image folder, whose size is unknown here),
    counting the model's multiply-adds per image against the lecture CNN's."""
    from netscope.data import SPECS
    from netscope.models import build_model, flops

    spec = SPECS.get(config.data)
    if spec is None or spec.sizes is None:
        return None
    channels, height, _ = spec.image_shape
    model = build_model(config.model, channels, len(spec.classes), height)
    work = flops(model, spec.image_shape) / LECTURE_CNN_MULTIPLY_ADDS
    train_size = min(spec.sizes[0], config.train_limit or spec.sizes[0])
    test_size = min(spec.sizes[1], config.test_limit or spec.sizes[1])
    per_epoch = math.ceil(train_size / config.batch_size)
    if epochs is None:  # --min-steps may add epochs (netscope.batches.with_min_steps)
        epochs = max(config.epochs, math.ceil(config.min_steps / per_epoch))
    step = COSTS[f"train_step_{config.adversarial or 'clean'}"] * config.batch_size / 100
    steps = per_epoch * epochs * step
    steps += COSTS["score_image"] * test_size * epochs
    if config.adversarial and config.adversarial_check:  # the clean twin, then the attacks
        steps = steps * (1 + COSTS["train_step_clean"] / step)
        attacks = COSTS["attack_pgd"] + COSTS["attack_deepfool"]
        steps += 2 * config.adversarial_check * attacks
    return steps * work * STEP_S


def resume_seconds(run_dir, epochs: int | None = None) -> float | None:
    """Returns the expected seconds of `netscope train --resume RUN_DIR [--epochs N]` (None for
    an imported model, which has no training to resume)."""
    from netscope.run import config_from_info, read_run_info

    info = read_run_info(run_dir)
    if "imported" in info:
        return None
    config = config_from_info(info)
    return train_seconds(config, (epochs or config.epochs) - info["epochs_done"])


def attack_seconds(config) -> float:
    """Returns the expected seconds of `netscope attack` with `config` (an AttackConfig)."""
    curve = "_curve" if config.curve and f"attack_{config.method}_curve" in COSTS else ""
    per_image = COSTS.get(f"attack_{config.method}{curve}")
    if per_image is None:  # an attack added since the costs were measured
        return None
    options = config.options
    if config.method == "universal":
        per_image *= options.max_passes
    elif config.method == "pgd":
        per_image *= options.steps / 40
    elif config.method == "lbfgs":
        per_image *= options.search_steps / 10 * options.max_iter / 50
    return per_image * config.n * STEP_S


# each inspection stage's cost grows with these settings (InspectConfig's defaults = 1)
def _stage_scales(config) -> dict[str, float]:
    search = config.search_images or 10_000
    return {
        "filters": 1.0,
        "top_patches": search / 10_000,
        "occlusion": config.images / 6 / config.stride**2,
        "saliency": config.images / 6 * (1 + config.ig_steps) / 33,
        "class_models": config.class_steps / 200,
        "deep_dream": config.dream_steps / 10 * config.octaves / 3 * (config.dream_size / 112) ** 2,
        "morph": config.morph_steps / 100 * len(config.morph) / 2,
        "projections": search / 10_000,
        "growth": config.units / 4 * config.unit_images / 1000,
        "units": config.units / 4 * config.unit_steps / 256 * config.unit_copies / 3,
    }


def inspect_seconds(config) -> float:
    """Returns the expected seconds of `netscope inspect` with `config` (an InspectConfig)."""
    scales = _stage_scales(config)
    stages = config.stages or list(scales)
    steps = sum(COSTS.get(f"inspect_{s}", 0.0) * scales.get(s, 1.0) for s in stages)
    return steps * STEP_S


def fool_seconds(config) -> float:
    """Returns the expected seconds of `netscope fool` with `config` (a FoolConfig)."""
    methods = ("gradient", "evolution") if config.method == "both" else (config.method,)
    steps = 0.0
    for method in methods:
        taken = min(config.steps, FOOL_TYPICAL_STEPS[method])
        scale = config.population / 32 if method == "evolution" else 1.0
        steps += COSTS[f"fool_{method}_step"] * taken * scale
    return steps * STEP_S


def compare_seconds(config) -> float:
    """Returns the expected seconds of `netscope compare` with `config` (a CompareConfig)."""
    return COSTS["compare_image"] * (config.n_images or 1000) * STEP_S


def lesson_seconds(name: str, full: bool = False) -> float | None:
    """Returns the expected seconds of `netscope lesson NAME [--full]` (None: not measured)."""
    if name not in LESSON_COSTS:
        return None
    return LESSON_COSTS[name] * (FULL_FACTOR.get(name, 1) if full else 1) * STEP_S


def demo_seconds(train: bool, analyses: bool) -> float:
    """Returns the expected seconds of `netscope demo`: training the lecture recipe (when the
    run is not there yet), evaluating, the analyses at the demo's settings, and the report."""
    from netscope.attack import ATTACKS, AttackConfig, FoolConfig
    from netscope.compare import CompareConfig
    from netscope.config import TrainConfig
    from netscope.inspect import InspectConfig

    seconds = train_seconds(TrainConfig()) if train else 0.0
    seconds += (COSTS["score_image"] * 10_000 + COSTS["report"]) * STEP_S
    if analyses:
        demos = [AttackConfig(method=s.name, **s.demo) for s in ATTACKS.values() if s.demo]
        seconds += sum(attack_seconds(config) or 0.0 for config in demos)
        seconds += inspect_seconds(InspectConfig()) + fool_seconds(FoolConfig())
        seconds += compare_seconds(CompareConfig(n_images=300))
    return seconds
