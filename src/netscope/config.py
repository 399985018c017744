"""How to train: `TrainConfig`, whose defaults are the lecture's recipe, the named recipes, and
the learning-rate schedule they describe.

A leaf of the package (it imports nothing of netscope but the error type), so every stage can
read a config without pulling in the trainer. Each field is a `netscope train --flag` of the same
name; the comment on a field's line is that flag's help text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from netscope.errors import NetscopeError


@dataclass
class TrainConfig:
    """How to train; each field is a `netscope train --flag` of the same name."""

    data: str = "mnist"  # mnist | fashion-mnist | cifar10 | PATH to an image folder
    data_dir: str | None = None  # folder holding the data set files
    model: str = "lecture_cnn"  # a name in netscope.models.REGISTRY: lenet5, resnet20_cifar, …
    epochs: int = 10  # passes over the training set
    min_steps: int = 0  # train at least N optimiser steps: more epochs on small data (0 = off)
    lr: float = 0.1  # SGD learning rate (the peak of a onecycle schedule)
    batch_size: int = 100  # the global batch: split across processes under torchrun
    momentum: float = 0.0  # SGD momentum (the lecture uses none)
    nesterov: bool = False  # Nesterov momentum (needs --momentum > 0)
    weight_decay: float = 0.0  # L2 penalty on the weights, as SGD applies it
    schedule: str = "constant"  # constant | onecycle (linear warm-up, then linear decay to 0)
    warmup: float = 0.2  # fraction of all steps spent warming up (onecycle only)
    label_smoothing: float = 0.0  # target mass spread over the other classes
    shuffle: bool = False  # new batch order every epoch (the lecture keeps the file order)
    shift: int = 0  # augmentation: move each training image by up to N pixels each way (0 = off)
    seed: int = 0  # initial weights, batch order and shifts
    train_limit: int = 0  # use only the first N training images (0 = all)
    test_limit: int = 0  # evaluate on the first N test images (0 = all)
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = True  # measured faster on CPU (bench/recipe.py)
    fused: bool = True  # CUDA: one fused SGD kernel per step (CPU: measured no faster, unused)
    compile: bool = False  # torch.compile the model: measured slower on CPU (bench/RESULTS.md)
    cuda_graphs: bool = True  # CUDA: replay the whole step as one CUDA graph (one process)
    tf32: bool = True  # CUDA: TF32 tensor cores for matmul and convolution (not the same math)
    autocast: str = "off"  # off | bf16 | auto (= bf16 on CPUs with native bf16); not same math
    threads: int = 0  # CPU threads per process (0 = torch's default, split among local ranks)
    checkpoints: bool = True  # keep the weights of every epoch in checkpoints/
    progress: bool = True  # a progress bar per epoch
    tensorboard: bool = False  # also log each epoch and the conv1 filters to RUN/tensorboard/
    recipe: str = "lecture"  # lecture | fast (default: lecture on MNIST; other data: fast, at least 600 steps unless --epochs)
    adversarial: str | None = None  # train on attacked batches: fgsm | pgd (see netscope.attack)
    adversarial_eps: float = 0.3  # L-inf budget in pixel units [0, 1] for --adversarial
    adversarial_check: int = 1000  # after --adversarial: attack N test images, vs a clean twin
    out: str | None = None  # run directory (None: runs/<timestamp>)

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, "an integer >= 1"),
            ("min-steps", self.min_steps >= 0, "an integer >= 0 (0 = off)"),
            ("lr", self.lr > 0, "a number > 0"),
            ("batch-size", self.batch_size >= 1, "an integer >= 1"),
            ("momentum", 0 <= self.momentum < 1, "a number in [0, 1)"),
            ("weight-decay", self.weight_decay >= 0, "a number >= 0"),
            ("schedule", self.schedule in ("constant", "onecycle"), "constant or onecycle"),
            ("warmup", 0 <= self.warmup <= 1, "a fraction in [0, 1]"),
            ("label-smoothing", 0 <= self.label_smoothing < 1, "a number in [0, 1)"),
            ("shift", self.shift >= 0, "an integer >= 0 (pixels; 0 = off)"),
            ("train-limit", self.train_limit >= 0, "an integer >= 0 (0 = all)"),
            ("test-limit", self.test_limit >= 0, "an integer >= 0 (0 = all)"),
            ("nesterov", not self.nesterov or self.momentum > 0, "used with --momentum > 0"),
            ("autocast", self.autocast in ("off", "bf16", "auto"), "off, bf16 or auto"),
            ("threads", self.threads >= 0, "an integer >= 0 (0 = torch's default)"),
            ("adversarial-check", self.adversarial_check >= 0, "an integer >= 0 (0 = off)"),
            ("seed", 0 <= self.seed < 2**32, "an integer in [0, 2**32)"),
            ("recipe", self.recipe in RECIPES, " or ".join(RECIPES)),
        ]
        for flag, ok, expected in checks:
            if not ok:
                value = getattr(self, flag.replace("-", "_"))
                raise NetscopeError(f"--{flag} {value}: expected {expected}")


# "fast": the lecture model and batch, Nesterov momentum, a one-cycle schedule, label smoothing,
# shuffling and, on a CPU with bf16 instructions, a bf16 forward pass (a step about 1.3x faster at
# the same accuracy); one epoch reached 0.78-0.95 % test error for seeds 0-4 (lr 0.2 diverged for
# seed 1, lr 0.05 ended at 1.01 %); `--epochs 4 --shift 1` reached 0.49-0.58 %. bench/RESULTS.md.
RECIPES: dict[str, dict] = {
    "lecture": {},
    "fast": dict(
        epochs=1,
        lr=0.1,
        batch_size=100,
        momentum=0.9,
        nesterov=True,
        schedule="onecycle",
        warmup=0.2,
        label_smoothing=0.1,
        shuffle=True,
        autocast="auto",
    ),
}


# Without --recipe, a data set other than MNIST (often a folder of a few thousand of the user's
# own images) trains with "fast" for at least as many steps as one epoch of MNIST, where "fast"
# reaches < 1 %. On 3000 MNIST digits saved as 36x36 PNG files (2400 to train on, 600 to test):
# "fast" as named (1 epoch, 24 steps) 16.0 % test error, the lecture recipe (240 steps) 3.50 %,
# "fast" for 10 epochs 1.67 %, for 600 steps (25 epochs) 1.83 % (tests/test_train.py).
DEFAULT_MIN_STEPS = 600


def default_recipe(overrides: dict) -> tuple[str, dict]:
    """Returns (recipe, overrides) for a training that named no recipe: the lecture's exactly on
    MNIST; on other data "fast", for at least DEFAULT_MIN_STEPS steps unless `epochs` or
    `min_steps` says how long."""
    if overrides.get("data") in (None, "mnist"):
        return "lecture", overrides
    if overrides.get("epochs") is None and overrides.get("min_steps") is None:
        overrides = {**overrides, "min_steps": DEFAULT_MIN_STEPS}
    return "fast", overrides


def recipe_config(recipe: str | None = "lecture", **overrides) -> TrainConfig:
    """Returns the TrainConfig of a named recipe (None: `default_recipe`'s choice) with
    `overrides` (None values ignored) applied."""
    if recipe is None:
        recipe, overrides = default_recipe(overrides)
    if recipe not in RECIPES:
        raise NetscopeError(f"unknown recipe {recipe!r} (expected one of {sorted(RECIPES)})")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise NetscopeError(f"unknown training option(s) {sorted(unknown)}")
    values = {**RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(recipe=recipe, **values)


def lr_at(config: TrainConfig, step: int, total_steps: int) -> float:
    """Returns the learning rate for optimiser step `step` (0-based) of `total_steps`."""
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "onecycle":
        warm = max(1, round(config.warmup * total_steps))
        if step < warm:
            return config.lr * (step + 1) / warm
        return config.lr * max(0.0, (total_steps - step) / max(1, total_steps - warm))
    raise NetscopeError(f"--schedule {config.schedule!r}: expected constant or onecycle")
