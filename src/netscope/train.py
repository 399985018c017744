"""Train a registered model on a data set and write a run directory after every epoch.

The default `TrainConfig` is the lecture's recipe: SGD with lr 0.1, batch 100, 10 epochs, inputs
normalised by the train mean/std, the whole data set as one tensor on the device, and mini-batches
taken in order. `--recipe fast` swaps in a measured faster schedule (see bench/RESULTS.md).

Speed: the same math runs on a faster path by default (channels_last; on CUDA one fused SGD kernel
and the whole step replayed as one CUDA graph); each optimisation has a flag to turn it off.
Under `torchrun --nproc-per-node N -m netscope train …` each process takes its shard of every
global batch and DistributedDataParallel averages the gradients; rank 0 alone writes the run
directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from tqdm import tqdm

from netscope.data import Dataset, load_dataset, shift_images
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
    recorded_dataset,
    save_tensors,
    write_json,
    write_metrics,
)


@dataclass
class TrainConfig:
    """How to train; each field is a `netscope train --flag` of the same name."""

    data: str = "mnist"  # mnist | fashion-mnist | cifar10 | PATH to an image folder
    data_dir: str | None = None  # folder holding the data set files
    model: str = "lecture_cnn"  # a name in netscope.models.REGISTRY: lenet5, resnet20_cifar, …
    epochs: int = 10  # passes over the training set
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
    recipe: str = "lecture"  # lecture | fast: a named set of the defaults above
    adversarial: str | None = None  # train on attacked batches: fgsm | pgd (see netscope.attack)
    adversarial_eps: float = 0.3  # L-inf budget in pixel units [0, 1] for --adversarial
    out: str | None = None  # run directory (None: runs/<timestamp>)

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
            ("shift", self.shift >= 0, "an integer >= 0 (pixels; 0 = off)"),
            ("train-limit", self.train_limit >= 0, "an integer >= 0 (0 = all)"),
            ("test-limit", self.test_limit >= 0, "an integer >= 0 (0 = all)"),
            ("nesterov", not self.nesterov or self.momentum > 0, "used with --momentum > 0"),
            ("autocast", self.autocast in ("off", "bf16", "auto"), "off, bf16 or auto"),
            ("threads", self.threads >= 0, "an integer >= 0 (0 = torch's default)"),
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


# ---------------------------------------------------------------- processes (torchrun)


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the training processes (one, unless under torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def writer(self) -> bool:
        """Returns True for the one process that writes files and prints (rank 0)."""
        return self.rank == 0


def processes_from_env() -> Processes:
    """Returns the process layout torchrun describes in the environment (one process without it)."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1"))
    return Processes(
        int(env.get("RANK", "0")),
        world,
        int(env.get("LOCAL_RANK", "0")),
        int(env.get("LOCAL_WORLD_SIZE", str(world))),
    )


@contextlib.contextmanager
def joined(device_name: str) -> Iterator[Processes]:
    """Yields the process layout, joining torchrun's process group (NCCL on CUDA, gloo on CPU)
    for the duration when there is more than one process and nobody joined it yet."""
    procs = processes_from_env()
    start = procs.world > 1 and not dist.is_initialized()
    if start:
        cuda = device_name != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(procs.local_rank)  # NCCL talks through the current device
        dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield procs
    finally:
        if start:
            dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    """Returns the torch device for `auto` (CUDA when present), `cpu` or `cuda[:N]`; `auto` and
    `cuda` mean the current GPU, which `joined` sets to this process's local GPU under torchrun."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NetscopeError(f"--device {name}: no CUDA device is available (use cpu or auto)")
    if name in ("auto", "cuda"):
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", torch.cuda.current_device())
    try:
        return torch.device(name)
    except RuntimeError:
        raise NetscopeError(f"--device {name!r}: expected auto, cpu or cuda") from None


def process_mean(value: torch.Tensor, procs: Processes) -> torch.Tensor:
    """Returns the mean of `value` over all processes (itself when there is one)."""
    if procs.world == 1:
        return value
    total = value.clone()
    dist.all_reduce(total)
    return total / procs.world


def shard(batch: torch.Tensor, procs: Processes) -> torch.Tensor:
    """Returns this process's contiguous part of a global batch."""
    return batch if procs.world == 1 else batch.tensor_split(procs.world)[procs.rank]


# ---------------------------------------------------------------- schedule, data


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
    black: torch.Tensor  # a black pixel, normalised: one value per channel


def memory_format(config: TrainConfig) -> torch.memory_format:
    """Returns the memory format images and convolution weights are kept in."""
    return torch.channels_last if config.channels_last else torch.contiguous_format


def to_device(dataset: Dataset, config: TrainConfig, device: torch.device) -> Tensors:
    """Returns the (limited) data set normalised, on `device`, in the configured memory format."""
    train_n = config.train_limit or len(dataset.train_images)
    test_n = config.test_limit or len(dataset.test_images)

    def prepare(images: torch.Tensor) -> torch.Tensor:
        inputs = dataset.normalize(images.to(device))
        return inputs.contiguous(memory_format=memory_format(config))

    return Tensors(
        prepare(dataset.train_images[:train_n]),
        dataset.train_labels[:train_n].to(device),
        prepare(dataset.test_images[:test_n]),
        dataset.test_labels[:test_n].to(device),
        dataset.normalize(torch.zeros(1, len(dataset.mean), 1, 1, device=device)).flatten(),
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


def epoch_shifts(config: TrainConfig, epoch: int, n: int) -> torch.Tensor:
    """Returns the (dy, dx) shift of the image at each of the epoch's n positions, n×2 in
    [-shift, shift] on the CPU; seeded by (seed, epoch) apart from the order, so resuming repeats
    them."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 50_000)
    span = 2 * config.shift + 1
    return torch.randint(span, (n, 2), generator=generator) - config.shift


# ---------------------------------------------------------------- one training step

BatchTransform = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
Update = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
Step = Callable[[torch.Tensor, torch.Tensor, float, int], torch.Tensor]


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Sets the learning rate in place (into the tensor a CUDA graph reads, when it is one)."""
    for group in optimizer.param_groups:
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def uses_bf16(config: TrainConfig, device: torch.device) -> bool:
    """Returns whether the forward pass runs under bf16 autocast: always for "bf16"; for "auto"
    on a CPU with AVX512-BF16 or AMX instructions, where bench/RESULTS.md measured a step about
    1.3× faster (a CPU without them emulates bf16, and no GPU run has measured it yet)."""
    if config.autocast == "auto":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, private
        native = any(getattr(torch.cpu, check, lambda: False)() for check in checks)
        return device.type == "cpu" and native
    return config.autocast == "bf16"


def eager_update(
    forward: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, procs: Processes
) -> Update:
    """Returns update(inputs, labels, global_n) -> loss: one SGD step at the optimiser's current
    learning rate, in eager PyTorch."""
    device = next(forward.parameters()).device
    mixed = torch.autocast(device.type, torch.bfloat16, cache_enabled=False)
    precision = mixed if uses_bf16(config, device) else contextlib.nullcontext()

    def loss_of(logits: torch.Tensor, labels: torch.Tensor, global_n: int) -> torch.Tensor:
        if procs.world == 1:
            return F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        # DDP averages gradients over processes, so scale this shard's summed loss by world/n
        # to make that average the gradient of the global batch's mean loss, even uneven shards.
        total = F.cross_entropy(
            logits, labels, label_smoothing=config.label_smoothing, reduction="sum"
        )
        return total * (procs.world / global_n)

    def update(inputs: torch.Tensor, labels: torch.Tensor, global_n: int) -> torch.Tensor:
        with precision:
            loss = loss_of(forward(inputs).float(), labels, global_n)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return update


class GraphUpdate:
    """The whole update (forward, backward, SGD) captured once as a CUDA graph and replayed for
    every batch of the captured shape; others (a last, partial batch) run eagerly. The first
    `warmup` updates run eagerly on a side stream, as capture requires; they are real steps, so the
    weights follow the eager path. The learning rate moves into a device tensor the graph reads."""

    def __init__(self, eager: Update, optimizer: torch.optim.Optimizer, warmup: int = 3):
        self.eager, self.optimizer, self.warmup = eager, optimizer, warmup
        device = optimizer.param_groups[0]["params"][0].device
        for group in optimizer.param_groups:
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.shape: tuple | None = None
        self.eager_steps = 0

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor, global_n: int) -> torch.Tensor:
        shape = (inputs.shape, labels.shape)
        self.shape = self.shape or shape
        if shape != self.shape:
            return self.eager(inputs, labels, global_n)
        if self.graph is None and self.eager_steps < self.warmup:
            self.eager_steps += 1
            return self._side_stream_update(inputs, labels, global_n)
        if self.graph is None:
            self._capture(inputs, labels, global_n)
        self.inputs.copy_(inputs)
        self.labels.copy_(labels)
        self.graph.replay()
        return self.loss.clone()

    def _side_stream_update(self, inputs, labels, global_n) -> torch.Tensor:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            loss = self.eager(inputs, labels, global_n)
        torch.cuda.current_stream().wait_stream(stream)
        return loss

    def _capture(self, inputs, labels, global_n) -> None:
        self.inputs, self.labels = inputs.clone(), labels.clone()
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates grads in the graph's pool
        with torch.cuda.graph(self.graph):
            self.loss = self.eager(self.inputs, self.labels, global_n)


def make_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    procs: Processes,
    batch_transform: BatchTransform | None,
) -> Step:
    """Returns step(inputs, labels, lr, global_n) -> loss, the training step the config and device
    call for: eager, compiled, DDP-wrapped and/or replayed as a CUDA graph."""
    device = next(model.parameters()).device
    forward = model
    if procs.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        forward = nn.parallel.DistributedDataParallel(forward, device_ids=ids)
    if config.compile:  # after DDP, so that its bucketed all-reduce is compiled around
        forward = torch.compile(forward)
    update = eager_update(forward, optimizer, config, procs)
    # the graph reads the lr from a tensor, which only the fused kernel takes without a sync
    graphs = config.cuda_graphs and config.fused and device.type == "cuda" and procs.world == 1
    if graphs and batch_transform is None:  # attacks call the model between steps: stay eager
        update = GraphUpdate(update, optimizer)

    def step(inputs: torch.Tensor, labels: torch.Tensor, lr: float, global_n: int) -> torch.Tensor:
        set_lr(optimizer, lr)  # outside the graph, so that every replay reads the new value
        return update(inputs, labels, global_n)

    return step


def tune_backends(config: TrainConfig, device: torch.device, procs: Processes) -> None:
    """Sets the process-wide backend switches the config asks for on this device."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = config.tf32
        torch.backends.cudnn.allow_tf32 = config.tf32
        torch.backends.cudnn.benchmark = True  # shapes are static: pick the fastest kernels once
        return
    threads = config.threads
    if not threads and procs.local_world > 1:  # processes on one machine share its cores
        threads = max(1, torch.get_num_threads() // procs.local_world)
    if threads:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- one epoch


def train_epoch(
    step: Step,
    model: nn.Module,
    tensors: Tensors,
    config: TrainConfig,
    epoch: int,
    procs: Processes = Processes(),
    batch_transform: BatchTransform | None = None,
) -> float:
    """Runs one epoch of steps over this process's shards and returns the mean training loss."""
    n = len(tensors.train_inputs)
    steps = math.ceil(n / config.batch_size)
    order = epoch_order(config, epoch, n, tensors.train_inputs.device)
    shifts = epoch_shifts(config, epoch, n) if config.shift else None
    loss_sum = torch.zeros((), device=tensors.train_inputs.device)
    model.train()
    bar = tqdm(
        range(steps),
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not (config.progress and procs.writer),
        leave=False,
        file=sys.stderr,
        mininterval=0.5,
    )
    for index in bar:
        positions = slice(index * config.batch_size, (index + 1) * config.batch_size)
        batch = positions if order is None else order[positions]
        inputs, labels = tensors.train_inputs[batch], tensors.train_labels[batch]
        if shifts is not None:
            inputs = shift_images(inputs, shifts[positions], tensors.black)
        global_n = len(labels)
        inputs, labels = shard(inputs, procs), shard(labels, procs)
        if batch_transform is not None:
            inputs = batch_transform(model, inputs, labels)
        lr = lr_at(config, epoch * steps + index, steps * config.epochs)
        loss_sum += step(inputs, labels, lr, global_n)
        if index % 100 == 99 or index == steps - 1:
            # every process checks the same (averaged) number, so all of them stop together
            running = process_mean(loss_sum, procs).item() / (index + 1)
            if not math.isfinite(running):
                raise TrainingDiverged(
                    f"loss became {running} at epoch {epoch + 1}, step {index + 1}"
                )
            bar.set_postfix(loss=f"{running:.4f}")
    return running


# ---------------------------------------------------------------- optimiser and run directory


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device | None = None
) -> torch.optim.Optimizer:
    """Returns the SGD optimiser the config describes, fused into one kernel on CUDA, where CUDA
    graphs need it; on the CPU the fused kernel measured no faster (bench/RESULTS.md)."""
    fused = config.fused and device is not None and device.type == "cuda"
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
        fused=fused or None,
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


def run_info(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    model: nn.Module,
    procs: Processes = Processes(),
) -> dict:
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
        "bf16_autocast": uses_bf16(config, device),
        "processes": procs.world,
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


def agreed_run_dir(config: TrainConfig, procs: Processes) -> Path:
    """Returns the run directory, the same on every process (rank 0's clock names a default)."""
    chosen = [config.out or str(default_run_dir())]
    if procs.world > 1:
        dist.broadcast_object_list(chosen, src=0)
    return Path(chosen[0])


# ---------------------------------------------------------------- train, resume


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    batch_transform: BatchTransform | None = None,
) -> Run:
    """Returns the finished Run after training `config` from scratch into a new run directory."""
    dataset = dataset or load_dataset(config.data, config.data_dir)
    with joined(config.device) as procs:
        run_dir = agreed_run_dir(config, procs)
        if (run_dir / "run.json").exists():
            raise NetscopeError(
                f"{run_dir}: already holds a run (use --resume {run_dir} or another --out)"
            )
        if procs.world > 1:
            dist.barrier()  # every process has checked before rank 0 writes run.json
        config = dataclasses.replace(config, out=str(run_dir))
        torch.manual_seed(config.seed)
        device = resolve_device(config.device)
        channels, height, _ = dataset.image_shape
        model = build_model(config.model, channels, len(dataset.classes), height)
        optimizer = make_optimizer(model, config, device)
        info = run_info(config, dataset, device, model, procs)
        if procs.writer:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_epoch(run_dir, model, optimizer, info, [])
        return _fit(run_dir, model, optimizer, info, [], dataset, device, procs, batch_transform)


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
    dataset = recorded_dataset(run_dir, info)
    with joined(config.device) as procs:
        device = resolve_device(config.device)
        model = model_from_info(info)
        model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        optimizer = make_optimizer(model, config, device)
        load_optimizer_tensors(
            optimizer, {k: v for k, v in state.items() if k.startswith("optimizer.")}
        )
        info["epochs_done"] = done
        metrics = read_metrics(run_dir)[:done]
        if procs.writer:
            print(
                f"netscope: resuming {run_dir} after epoch {done} of {config.epochs}",
                file=sys.stderr,
            )
        return _fit(
            run_dir, model, optimizer, info, metrics, dataset, device, procs, batch_transform
        )


def _fit(run_dir, model, optimizer, info, metrics, dataset, device, procs, batch_transform) -> Run:
    config = TrainConfig(**info["config"])
    tune_backends(config, device, procs)
    tensors = to_device(dataset, config, device)
    model.to(device=device, memory_format=memory_format(config))
    _move_optimizer_state(optimizer, device)
    step = make_step(model, optimizer, config, procs, batch_transform)
    for epoch in range(info["epochs_done"], config.epochs):
        start = time.perf_counter()
        try:
            train_loss = train_epoch(step, model, tensors, config, epoch, procs, batch_transform)
        except TrainingDiverged as err:
            raise TrainingDiverged(
                f"{err}; training stopped, the last good checkpoint (epoch {info['epochs_done']}) "
                f"stays in {run_dir}"
            ) from None
        epoch_s = time.perf_counter() - start
        row = _epoch_row(model, tensors, epoch + 1, train_loss, epoch_s, procs)
        metrics.append(row)
        info.update(epochs_done=epoch + 1, metrics=row)
        info["train_seconds"] = sum(m["epoch_s"] for m in metrics)
        if procs.writer:
            save_epoch(run_dir, model, optimizer, info, metrics)
            print(
                f"epoch {epoch + 1:>3}/{config.epochs}  train_loss {train_loss:.4f}  "
                f"test_error {row['test_error_pct']:.2f} %  {epoch_s:.1f} s",
                file=sys.stderr,
            )
    if procs.writer:
        return load_run(run_dir)
    # other processes may not see rank 0's files (another node): they return what they hold
    return Run(run_dir, model.to("cpu").eval(), config, info, metrics=metrics)


def _epoch_row(model, tensors, epoch, train_loss, epoch_s, procs) -> dict:
    """Returns the metrics.jsonl row of an epoch; rank 0 evaluates and tells the others."""
    row = [None]
    if procs.writer:
        test_error = error_pct(predict(model, tensors.test_inputs), tensors.test_labels)
        row = [dict(epoch=epoch, train_loss=train_loss, test_error_pct=test_error, epoch_s=epoch_s)]
    if procs.world > 1:
        dist.broadcast_object_list(row, src=0)
    return row[0]


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Moves loaded optimiser state next to its parameter, in the parameter's memory layout: the
    fused CPU SGD kernel (torch 2.13) reads a contiguous momentum buffer of a channels_last
    parameter in the wrong element order."""
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                state[key] = torch.empty_like(param).copy_(value)
            elif torch.is_tensor(value):
                state[key] = value.to(device)
