"""One CPU thread for many tiny steps, where handing work between threads costs more than it saves
(measured on the 2-core machine: 6-27x less CPU time for the small lessons and optimisations).

torch's thread count is global to the process, so changing it would slow whatever else the caller
runs meanwhile. The lessons (netscope's own models) use `one_cpu_thread` directly; the analyses,
which run a user's model, change it only inside `small_steps_on_one_thread()`, which
`run_inspect` enters. A researcher calling `class_models` or `deep_dream` from Python keeps their
thread count; they may enter the same block themselves for small CPU models.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_SMALL_STEPS_ON_ONE_THREAD = ContextVar("small_steps_on_one_thread", default=False)


@contextmanager
def one_cpu_thread(active: bool = True) -> Iterator[None]:
    """Yields with torch limited to one CPU thread while `active`; restores the count after."""
    if not active:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def small_steps_on_one_thread() -> Iterator[None]:
    """Yields with the image optimisations (class models, Deep Dream, morphing, unit images)
    allowed to run small CPU work on one thread; each restores torch's thread count exactly
    when it ends."""
    token = _SMALL_STEPS_ON_ONE_THREAD.set(True)
    try:
        yield
    finally:
        _SMALL_STEPS_ON_ONE_THREAD.reset(token)


def few_threads_for_small(images: torch.Tensor, limit: int = 2_000_000):
    """Returns a context that runs on one CPU thread when `images` are small CPU tensors and the
    caller allowed it (`small_steps_on_one_thread`); otherwise it changes nothing."""
    small = images.device.type == "cpu" and images.numel() <= limit
    return one_cpu_thread(small and _SMALL_STEPS_ON_ONE_THREAD.get())
