"""Peak memory of one benchmark variant, when several run in one process.

CUDA: the allocator's peak since the last reset. CPU: the process's resident-set high-water mark
(VmHWM), which Linux resets when "5" is written to /proc/self/clear_refs (after malloc_trim has
returned freed heap pages, so earlier variants' garbage does not hide a later one's growth); elsewhere the lifetime
peak (ru_maxrss), which only grows, so a later variant reports at least an earlier one's peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def reset_peak_memory(device: torch.device) -> None:
    """Starts a new peak-memory measurement for `device` in this process."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        # hand freed heap pages back first, so the mark starts from what is really held
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mb(device: torch.device) -> float:
    """Returns the peak memory in MiB since reset_peak_memory: GPU max allocated, else CPU RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def current_memory_mb(device: torch.device) -> float:
    """Returns the memory held now in MiB: GPU allocated, else CPU resident set (VmRSS)."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed(call: Callable, device: torch.device, *args, **kwargs) -> tuple[Any, float, float]:
    """Returns (value, seconds, peak MiB) of call(*args, **kwargs), synchronising CUDA around it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    reset_peak_memory(device)
    start = time.perf_counter()
    value = call(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return value, time.perf_counter() - start, peak_memory_mb(device)
