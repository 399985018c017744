"""Train a registered model on a data set and write a run directory after every epoch.

The default `TrainConfig` is the lecture's recipe: SGD with lr 0.1, batch 100, 10 epochs, inputs
normalised by the train mean/std, the whole data set as one tensor on the device, and mini-batches
taken in order. `--recipe fast` swaps in a measured faster schedule (see bench/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from tqdm import tqdm

from netscope.data import Dataset, load_dataset
from netscope.errors import NetscopeError
from netscope.evaluate import error_pct, predict
from netscope.models import build_model
from netscope.run import (
    Run,
    load_run,
    load_weights,
    model_from_info,
    read_json,
    read_metrics,
    save_tensors,
    write_json,
    write_metrics,
)


@dataclass
class TrainConfig:
    """How to train; each field is a `netscope train --flag` of the same name."""

    data: str = "mnist"  # mnist | fashion-mnist | cifar10 | PATH to an image folder
    data_dir: str | None = None  # folder holding the data set files
    model: str = "lecture_cnn"
    epochs: int = 10
    lr: float = 0.1
    batch_size: int = 100
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | onecycle (linear warm-up, then linear decay to 0)
    warmup: float = 0.2  # fraction of all steps spent warming up (onecycle only)
    label_smoothing: float = 0.0
    shuffle: bool = False  # the lecture takes mini-batches in order
    seed: int = 0
    train_limit: int = 0  # use only the first N training images (0 = all)
    test_limit: int = 0  # evaluate on the first N test images (0 = all)
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = True  # measured faster on CPU and GPU (bench/recipe.py)
    checkpoints: bool = True  # keep the weights of every epoch in checkpoints/
    progress: bool = True
    recipe: str = "lecture"
    adversarial: str | None = None  # train on attacked batches: fgsm | pgd (see netscope.attack)
    adversarial_eps: float = 0.3  # L-inf budget in pixel units [0, 1] for --adversarial
    out: str | None = None  # run directory (default runs/<timestamp>)

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "a number > 0"),
            ("batch-size", self.batch_size >= 1, "an integer >= 1"),
            ("momentum", 0 <= self.momentum < 1, "a number in [0, 1)"),
            ("weight-decay", self.weight_decay >= 0, "a number >= 0"),
            ("schedule", self.schedule in ("constant", "onecycle"), "constant or onecycle"),
            ("warmup", 0 <= self.warmup <= 1, "a fraction in [0, 1]"),
            ("label-smoothing", 0 <= self.label_smoothing < 1, "a number in [0, 1)"),
            ("train-limit", self.train_limit >= 0, "an integer >= 0 (0 = all)"),
            ("test-limit", self.test_limit >= 0, "an integer >= 0 (0 = all)"),
            ("nesterov", not self.nesterov or self.momentum > 0, "used with --momentum > 0"),
        ]
        for flag, ok, expected in checks:
            if not ok:
                value = getattr(self, flag.replace("-", "_"))
                raise NetscopeError(f"--{flag} {value}: expected {expected}")


RECIPES: dict[str, dict] = {
    "lecture": {},
    "fast": dict(
        epochs=2,
        lr=0.2,
        batch_size=100,
        momentum=0.9,
        nesterov=True,
        schedule="onecycle",
        warmup=0.2,
        label_smoothing=0.1,
        shuffle=True,
    ),
}


def recipe_config(recipe: str = "lecture", **overrides) -> TrainConfig:
    """Returns the TrainConfig of a named recipe with `overrides` (None values ignored) applied."""
    if recipe not in RECIPES:
        raise NetscopeError(f"unknown recipe {recipe!r} (expected one of {sorted(RECIPES)})")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise NetscopeError(f"unknown training option(s) {sorted(unknown)}")
    values = {**RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(recipe=recipe, **values)


def resolve_device(name: str) -> torch.device:
    """Returns the torch device for `auto` (CUDA when present), `cpu` or `cuda[:N]`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NetscopeError(f"--device {name}: no CUDA device is available (use cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise NetscopeError(f"--device {name!r}: expected auto, cpu or cuda") from None


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


class TrainingDiverged(NetscopeError):
    """The loss became NaN or infinite."""


@dataclass
class Tensors:
    """The data set as normalised float tensors on the training device."""

    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor


def to_device(dataset: Dataset, config: TrainConfig, device: torch.device) -> Tensors:
    """Returns the (limited) data set normalised, on `device`, in the configured memory format."""
    train_n = config.train_limit or len(dataset.train_images)
    test_n = config.test_limit or len(dataset.test_images)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format

    def prepare(images: torch.Tensor) -> torch.Tensor:
        inputs = dataset.normalize(images.to(device))
        return inputs.contiguous(memory_format=memory_format)

    return Tensors(
        prepare(dataset.train_images[:train_n]),
        dataset.train_labels[:train_n].to(device),
        prepare(dataset.test_images[:test_n]),
        dataset.test_labels[:test_n].to(device),
    )


def epoch_order(
    config: TrainConfig, epoch: int, n: int, device: torch.device
) -> torch.Tensor | None:
    """Returns the sample order for `epoch` (None: in order); seeded by (seed, epoch) so a resumed
    run sees the same batches as an uninterrupted one."""
    if not config.shuffle:
        return None
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


BatchTransform = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    tensors: Tensors,
    config: TrainConfig,
    epoch: int,
    batch_transform: BatchTransform | None = None,
) -> float:
    """Runs one epoch of SGD steps and returns the mean training loss."""
    n = len(tensors.train_inputs)
    steps = math.ceil(n / config.batch_size)
    total_steps = steps * config.epochs
    order = epoch_order(config, epoch, n, tensors.train_inputs.device)
    loss_sum = torch.zeros((), device=tensors.train_inputs.device)
    model.train()
    bar = tqdm(
        range(steps),
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not config.progress,
        leave=False,
        file=sys.stderr,
        mininterval=0.5,
    )
    for step in bar:
        index = slice(step * config.batch_size, (step + 1) * config.batch_size)
        if order is not None:
            index = order[index]
        inputs, labels = tensors.train_inputs[index], tensors.train_labels[index]
        if batch_transform is not None:
            inputs = batch_transform(model, inputs, labels)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(config, epoch * steps + step, total_steps)
        loss = F.cross_entropy(model(inputs), labels, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        if step % 100 == 99 or step == steps - 1:
            running = loss_sum.item() / (step + 1)
            if not math.isfinite(running):
                raise TrainingDiverged(
                    f"loss became {running} at epoch {epoch + 1}, step {step + 1}"
                )
            bar.set_postfix(loss=f"{running:.4f}")
    return loss_sum.item() / steps


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Returns the SGD optimiser the config describes."""
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Returns the optimiser's per-parameter state tensors under flat names (for safetensors)."""
    state = optimizer.state_dict()["state"]
    return {
        f"optimizer.{index}.{key}": value
        for index, entries in state.items()
        for key, value in entries.items()
        if torch.is_tensor(value)
    }


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]
) -> None:
    """Restores per-parameter state written by `optimizer_tensors`."""
    state_dict = optimizer.state_dict()
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state_dict["state"].setdefault(int(index), {})[key] = value
    optimizer.load_state_dict(state_dict)


def run_info(config: TrainConfig, dataset: Dataset, device: torch.device, model: nn.Module) -> dict:
    """Returns the run.json record for a new run (metrics are filled in after each epoch)."""
    channels, height, _ = dataset.image_shape
    return {
        "netscope": "0.1.0",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(config),
        "model": {
            "name": config.model,
            "in_channels": channels,
            "num_classes": len(dataset.classes),
            "image_size": height,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "data": {
            "name": dataset.name,
            "source": dataset.source,
            "checksum": dataset.checksum,
            "classes": dataset.classes,
            "mean": list(dataset.mean),
            "std": list(dataset.std),
            "image_shape": list(dataset.image_shape),
            "train_size": config.train_limit or len(dataset.train_images),
            "test_size": config.test_limit or len(dataset.test_images),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "seed": config.seed,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "epochs_done": 0,
        "train_seconds": 0.0,
        "metrics": {},
    }


def save_epoch(run_dir: Path, model: nn.Module, optimizer, info: dict, metrics: list[dict]) -> None:
    """Writes everything a finished epoch changes; train_state goes last, since resume trusts it."""
    epoch = info["epochs_done"]
    weights = model.state_dict()
    meta = {"epoch": str(epoch)}
    if info["config"]["checkpoints"]:
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        save_tensors(run_dir / "checkpoints" / f"epoch_{epoch:02d}.safetensors", weights, meta)
    save_tensors(run_dir / "model.safetensors", weights, meta)
    write_metrics(run_dir, metrics)
    write_json(run_dir / "run.json", info)
    state = {f"model.{k}": v for k, v in weights.items()} | optimizer_tensors(optimizer)
    save_tensors(run_dir / "train_state.safetensors", state, meta)


def default_run_dir() -> Path:
    """Returns runs/<UTC timestamp> under the current directory."""
    return Path("runs") / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    batch_transform: BatchTransform | None = None,
) -> Run:
    """Returns the finished Run after training `config` from scratch into a new run directory."""
    dataset = dataset or load_dataset(config.data, config.data_dir)
    run_dir = Path(config.out) if config.out else default_run_dir()
    if (run_dir / "run.json").exists():
        raise NetscopeError(
            f"{run_dir}: already holds a run (use --resume {run_dir} or another --out)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(config, out=str(run_dir))
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    channels, height, _ = dataset.image_shape
    model = build_model(config.model, channels, len(dataset.classes), height)
    optimizer = make_optimizer(model, config)
    info = run_info(config, dataset, device, model)
    save_epoch(run_dir, model, optimizer, info, [])
    return _fit(run_dir, model, optimizer, info, [], dataset, device, batch_transform)


def resume(run_dir: str | Path, epochs: int | None = None, batch_transform=None) -> Run:
    """Returns the finished Run after continuing `run_dir` from its last finished epoch."""
    run_dir = Path(run_dir)
    info = read_json(run_dir / "run.json")
    if epochs is not None:
        info["config"]["epochs"] = epochs
    config = TrainConfig(**info["config"])
    state_path = run_dir / "train_state.safetensors"
    state = load_weights(state_path)
    with safe_open(str(state_path), "pt") as f:
        done = int(f.metadata()["epoch"])
    dataset = load_dataset(config.data, config.data_dir)
    if dataset.checksum != info["data"]["checksum"]:
        raise NetscopeError(f"{run_dir}: the data set changed since this run started")
    device = resolve_device(config.device)
    model = model_from_info(info)
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    optimizer = make_optimizer(model, config)
    load_optimizer_tensors(
        optimizer, {k: v for k, v in state.items() if k.startswith("optimizer.")}
    )
    info["epochs_done"] = done
    metrics = read_metrics(run_dir)[:done]
    print(f"netscope: resuming {run_dir} after epoch {done} of {config.epochs}", file=sys.stderr)
    return _fit(run_dir, model, optimizer, info, metrics, dataset, device, batch_transform)


def _fit(run_dir, model, optimizer, info, metrics, dataset, device, batch_transform) -> Run:
    config = TrainConfig(**info["config"])
    tensors = to_device(dataset, config, device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    _move_optimizer_state(optimizer, device)
    for epoch in range(info["epochs_done"], config.epochs):
        start = time.perf_counter()
        try:
            train_loss = train_epoch(model, optimizer, tensors, config, epoch, batch_transform)
        except TrainingDiverged as err:
            raise TrainingDiverged(
                f"{err}; training stopped, the last good checkpoint (epoch {info['epochs_done']}) "
                f"stays in {run_dir}"
            ) from None
        epoch_s = time.perf_counter() - start
        test_error = error_pct(predict(model, tensors.test_inputs), tensors.test_labels)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "test_error_pct": test_error,
            "epoch_s": epoch_s,
        }
        metrics.append(row)
        info["epochs_done"] = epoch + 1
        info["train_seconds"] = sum(m["epoch_s"] for m in metrics)
        info["metrics"] = row
        save_epoch(run_dir, model, optimizer, info, metrics)
        print(
            f"epoch {epoch + 1:>3}/{config.epochs}  train_loss {train_loss:.4f}  "
            f"test_error {test_error:.2f} %  {epoch_s:.1f} s",
            file=sys.stderr,
        )
    return load_run(run_dir)


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value):
                state[key] = value.to(device)
