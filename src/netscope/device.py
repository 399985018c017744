"""Where training runs: the device, torchrun's process layout, sharding and backend switches.

Under `torchrun --nproc-per-node N -m netscope train …` each process takes its shard of every
global batch; on one process every function here is the identity or a no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from netscope.config import TrainConfig
from netscope.errors import NetscopeError


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


ONE_PROCESS = Processes()


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


def native_bf16(device: torch.device) -> bool:
    """Returns whether `device` is a CPU with AVX512-BF16 or AMX instructions, where
    bench/RESULTS.md measured a bf16 step about 1.3× faster (a CPU without them emulates bf16)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, private
    return device.type == "cpu" and any(getattr(torch.cpu, c, lambda: False)() for c in checks)


def uses_bf16(config: TrainConfig, device: torch.device) -> bool:
    """Returns whether the forward pass runs under bf16 autocast: always for "bf16"; for "auto"
    where the CPU has native bf16 (no GPU run has measured it yet)."""
    if config.autocast == "auto":
        return native_bf16(device)
    return config.autocast == "bf16"


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


def agreed_value(value: object, procs: Processes) -> object:
    """Returns rank 0's `value` on every process (e.g. a run directory named by rank 0's clock)."""
    chosen = [value]
    if procs.world > 1:
        dist.broadcast_object_list(chosen, src=0)
    return chosen[0]
