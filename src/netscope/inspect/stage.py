"""One stage of `netscope inspect`: what the pipeline, the CLI and the report know of a method.

Each method file ends with its `STAGE`; inspect/pipeline.py lists them in `STAGES`. Adding an
inspection: write its file (the method, a `stage(ctx)` that computes and draws it, its STAGE),
then add one line there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netscope.inspect.context import Context
    from netscope.record import Figure


@dataclass(frozen=True)
class Stage:
    """A method as `netscope inspect` runs it."""

    name: str  # its key in inspect.json and its name for --stages
    what: str  # a few words for the progress bar and the report
    run: Callable[[Context], tuple[Any, list[Figure]]]  # -> (its inspect.json entry, figures)
    check: Callable[[Context], None] | None = None  # raises on a bad config, before any work
