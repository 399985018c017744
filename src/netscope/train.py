"""Train a registered model on a data set and write a run directory after every epoch.

The default `TrainConfig` is the lecture's recipe: SGD with lr 0.1, batch 100, 10 epochs, inputs
normalised by the train mean/std, the whole data set as one tensor on the device, and mini-batches
taken in order. `--recipe fast` swaps in a measured faster schedule (see bench/RESULTS.md), and
`--adversarial fgsm|pgd` trains on attacked batches (netscope.attack.training).

Speed: the same math runs on a faster path by default (channels_last; on CUDA one fused SGD kernel
and the whole step replayed as one CUDA graph); each optimisation has a flag to turn it off.
Under torchrun each process takes its shard of every global batch (netscope.device) and
DistributedDataParallel averages the gradients; rank 0 alone writes the run directory (netscope.run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from netscope.batches import (
    Tensors,
    chance_warning,
    epoch_order,
    epoch_shifts,
    memory_format,
    steps_per_epoch,
    to_device,
    with_min_steps,
)
from netscope.config import RECIPES, TrainConfig, lr_at, recipe_config
from netscope.data import Dataset, load_dataset, shift_images
from netscope.device import (
    ONE_PROCESS,
    Processes,
    agreed_value,
    joined,
    process_mean,
    resolve_device,
    shard,
    tune_backends,
    uses_bf16,
)
from netscope.errors import NetscopeError
from netscope.evaluate import error_pct, predict
from netscope.models import build_model
from netscope.progress import progress_bar
from netscope.run import (
    Run,
    claimed,
    config_from_info,
    default_run_dir,
    load_run,
    model_with_weights,
    read_run_info,
    read_train_state,
    recorded_dataset,
    run_info,
    save_epoch,
)
from netscope.tensorboard_log import EpochLog, check_tensorboard

__all__ = ["RECIPES", "TrainConfig", "TrainingDiverged", "recipe_config", "resume", "train"]


class TrainingDiverged(NetscopeError):
    """The loss became NaN or infinite."""


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


def eager_update(
    forward: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, procs: Processes
) -> Update:
    """Returns update(inputs, labels, global_n) -> loss: one SGD step at the optimiser's current
    learning rate, in eager PyTorch."""
    device = next(forward.parameters()).device
    mixed = torch.autocast(device.type, torch.bfloat16, cache_enabled=False)
    precision = mixed if uses_bf16(config, device) else contextlib.nullcontext()

    def loss_of(logits: torch.Tensor, labels: torch.Tensor, global_n: int) -> torch.Tensor:
        # A last, partial batch weighs as its share of a full one: a step on a single image at
        # the full learning rate can wreck a small data set's run (401 training images, --recipe
        # fast, 50 epochs: 89.9 % test error; weighted: 13.1 %; 400 images: 9.1 %).
        if procs.world == 1:
            loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
            return loss if global_n >= config.batch_size else loss * (global_n / config.batch_size)
        # DDP averages gradients over processes, so scale this shard's summed loss by world/n
        # to make that average the gradient of the global batch's mean loss, even uneven shards.
        total = F.cross_entropy(
            logits, labels, label_smoothing=config.label_smoothing, reduction="sum"
        )
        return total * (procs.world / max(global_n, config.batch_size))

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


# ---------------------------------------------------------------- one epoch


def train_epoch(
    step: Step,
    model: nn.Module,
    tensors: Tensors,
    config: TrainConfig,
    epoch: int,
    procs: Processes = ONE_PROCESS,
    batch_transform: BatchTransform | None = None,
) -> float:
    """Runs one epoch of steps over this process's shards and returns the mean training loss."""
    n = len(tensors.train_inputs)
    steps = math.ceil(n / config.batch_size)
    order = epoch_order(config, epoch, n, tensors.train_inputs.device)
    shifts = epoch_shifts(config, epoch, n) if config.shift else None
    loss_sum = torch.zeros((), device=tensors.train_inputs.device)
    model.train()
    bar = progress_bar(
        range(steps),
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not (config.progress and procs.writer),
        log=False,  # in a log, the epoch's own line below says enough
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


# ---------------------------------------------------------------- optimiser


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


# ---------------------------------------------------------------- train, resume


def batch_transform_for(config: TrainConfig, dataset: Dataset) -> BatchTransform | None:
    """Returns the batch transform `config.adversarial` asks for (None: clean batches)."""
    if not config.adversarial:
        return None
    from netscope.attack.training import adversarial_batch_transform  # only adversarial runs

    return adversarial_batch_transform(
        config.adversarial, config.adversarial_eps, dataset.mean, dataset.std
    )


def train(config: TrainConfig, dataset: Dataset | None = None) -> Run:
    """Returns the finished Run after training `config` from scratch into a new run directory
    (`dataset`: the one `config.data` names, when it is loaded already)."""
    check_tensorboard(config)
    dataset = dataset or load_dataset(config.data, config.data_dir)
    asked, config = config.epochs, with_min_steps(config, dataset)
    with joined(config.device) as procs:
        run_dir = Path(agreed_value(config.out or str(default_run_dir()), procs))
        config = dataclasses.replace(config, out=str(run_dir))
        if config.epochs != asked and procs.writer:
            print(
                f"netscope: training {config.epochs} epochs of {steps_per_epoch(config, dataset)} "
                f"steps on {dataset.name}, for at least --min-steps {config.min_steps}",
                file=sys.stderr,
            )
        device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        channels, height, _ = dataset.image_shape
        model = build_model(config.model, channels, len(dataset.classes), height)
        optimizer = make_optimizer(model, config, device)
        info = run_info(config, dataset, device, model, procs)
        with _writer_claim(run_dir, procs, new=True):
            if procs.writer:
                save_epoch(run_dir, model, optimizer, info, [])
            return _fit(run_dir, model, optimizer, info, [], dataset, device, procs)


# the fields a resumed run may change: how long it trains, and whether it shows a bar
RESUMABLE = ("epochs", "progress")


def resume(run_dir: str | Path, epochs: int | None = None, progress: bool | None = None) -> Run:
    """Returns the finished Run after continuing `run_dir` from its last finished epoch, with
    the recorded config (up to `epochs` in all, when given)."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    if "imported" in info:
        raise NetscopeError(
            f"{run_dir}: holds an imported model (netscope import): no training to resume"
        )
    changes = {"epochs": epochs, "progress": progress}
    config = dataclasses.replace(
        config_from_info(info), **{k: v for k, v in changes.items() if v is not None}
    )
    info["config"] = dataclasses.asdict(config)
    state = read_train_state(run_dir)
    dataset = recorded_dataset(run_dir, info)
    with joined(config.device) as procs:
        device = resolve_device(config.device)
        model = model_with_weights(info, state.weights, state.path)
        optimizer = make_optimizer(model, config, device)
        state.load_optimizer_state(optimizer)
        info["epochs_done"] = state.epoch
        with _writer_claim(run_dir, procs, new=False):
            if procs.writer:
                print(
                    f"netscope: resuming {run_dir} after epoch {state.epoch} of {config.epochs}",
                    file=sys.stderr,
                )
            return _fit(run_dir, model, optimizer, info, state.metrics, dataset, device, procs)


@contextlib.contextmanager
def _writer_claim(run_dir: Path, procs: Processes, new: bool):
    """Holds the run directory's lock on the writing process; the others wait until it has it."""
    claim = claimed(run_dir, new) if procs.writer else contextlib.nullcontext()
    with claim:
        if procs.world > 1:
            dist.barrier()  # rank 0 has claimed the directory (or failed) before anyone trains
        yield


def _fit(run_dir, model, optimizer, info, metrics, dataset, device, procs) -> Run:
    config = TrainConfig(**info["config"])
    tune_backends(config, device, procs)
    tensors = to_device(dataset, config, device)
    model.to(device=device, memory_format=memory_format(config))
    _move_optimizer_state(optimizer, device)
    transform = batch_transform_for(config, dataset)
    step = make_step(model, optimizer, config, procs, transform)
    log = EpochLog(run_dir, config.tensorboard and procs.writer)
    for epoch in range(info["epochs_done"], config.epochs):
        start = time.perf_counter()
        try:
            train_loss = train_epoch(step, model, tensors, config, epoch, procs, transform)
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
            log(model, row)
            print(
                f"epoch {epoch + 1:>3}/{config.epochs}  train_loss {train_loss:.4f}  "
                f"test_error {row['test_error_pct']:.2f} %  {epoch_s:.1f} s",
                file=sys.stderr,
            )
    log.close()
    if procs.writer:
        if metrics and (warning := chance_warning(metrics[-1]["test_error_pct"], config, dataset)):
            print(f"netscope: warning: {warning}", file=sys.stderr)
        run = load_run(run_dir)
        if config.adversarial and config.adversarial_check and procs.world == 1:
            from netscope.attack.robustness import check_adversarial_training

            check_adversarial_training(run, dataset, train, resume)
        return run
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
