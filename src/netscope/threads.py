"""One CPU thread for many tiny steps, where handing work between threads costs more than it saves
(measured on the 2-core machine: 6-27x less CPU time for the small lessons and optimisations)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


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
