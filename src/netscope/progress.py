"""Progress of long loops, shown the way the output can show it.

    for stage in progress_bar(stages, desc="netscope inspect"):
        ...

On a terminal: one tqdm bar. A loop inside a loop that already shows one (an inspection stage's
images, a lesson's epochs) adds its count to that bar's trailing text instead of drawing a
second bar. Anywhere else (a log file, a pipe, CI) tqdm's carriage returns and cursor codes would
be garbage: there a bar prints one plain line when it starts and one per named stage
(`set_postfix_str`), and nested loops print nothing. `disable=True` silences a bar and every
loop inside it; `set_enabled(False)` (what `netscope … --no-progress` calls) silences them all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm
from tqdm.auto import tqdm as notebook_tqdm

_enabled = True
_open: list[Progress] = []  # the bars shown now, outermost first
REFRESH_S = 0.25  # a nested loop redraws the outer bar at most this often


def set_enabled(enabled: bool) -> bool:
    """Turns every progress display of this process on or off; returns the previous setting."""
    global _enabled
    before, _enabled = _enabled, enabled
    return before


def _mode(disable: bool) -> str:
    if disable or not _enabled or (_open and _open[-1].mode == "off"):
        return "off"
    if _open:
        return "nested"
    if in_notebook() or sys.stderr.isatty():
        return "bar"
    return "lines"


def in_notebook() -> bool:
    """Returns whether this code runs in a Jupyter kernel (not merely beside an imported
    ipykernel, as in a test process that executes notebooks)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """A loop's progress: iterate over it, or call `update(n)` on a `total` by hand."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        desc: str = "",
        total: int | None = None,
        disable: bool = False,
        log: bool = True,
        **tqdm_options,
    ) -> None:
        self.iterable, self.desc, self.n = iterable, desc, 0
        self.total = total if total is not None else _length(iterable)
        self.mode = _mode(disable)
        self.outer = _open[-1] if self.mode == "nested" else None
        self.postfix, self.inner, self.shown = "", "", 0.0
        self.bar = None
        if self.mode == "bar":
            tqdm_options.pop("file", None)
            make = notebook_tqdm if in_notebook() else tqdm
            self.bar = make(iterable, desc=desc, total=total, file=sys.stderr, **tqdm_options)
        elif self.mode == "lines" and log:
            size = f" ({self.total} {tqdm_options.get('unit', 'steps')})" if self.total else ""
            _line(f"{desc}{size}")
        _open.append(self)

    def __iter__(self) -> Iterator:
        try:
            if self.bar is not None:
                yield from self.bar
            else:
                for item in self.iterable:
                    yield item
                    self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Counts `n` more steps done."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.mode == "nested":
            self._tell_outer()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Shows `text` (the stage now running) after the bar; in a log, one line per stage."""
        self.postfix = text
        if self.bar is not None:
            self._redraw()
        elif self.mode == "lines" and text:
            _line(f"{self.desc} [{self.n + 1}/{self.total}] {text}" if self.total else text)
        elif self.mode == "nested":
            self._tell_outer()

    def set_postfix(self, **values) -> None:
        """Shows name=value pairs after the bar (nothing in a log: they change too often)."""
        if self.mode in ("bar", "nested"):
            self.set_postfix_str(", ".join(f"{k}={v}" for k, v in values.items()))

    def close(self) -> None:
        """Ends the display (a nested one clears its text from the outer bar)."""
        if self not in _open:
            return
        _open.remove(self)
        if self.bar is not None:
            self.bar.close()
        elif self.outer is not None:
            self.outer.show_inner("")

    def show_inner(self, text: str) -> None:
        """Shows a nested loop's count after this bar's own text."""
        self.inner = text
        if self.bar is not None:
            self._redraw()
        elif self.outer is not None:
            self._tell_outer()

    def _tell_outer(self) -> None:
        now = time.monotonic()
        if now - self.shown < REFRESH_S and self.n != self.total:
            return
        self.shown = now
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        text = " ".join(t for t in (self.desc, count, self.postfix, self.inner) if t)
        self.outer.show_inner(text)

    def _redraw(self) -> None:
        self.bar.set_postfix_str(" · ".join(t for t in (self.postfix, self.inner) if t))


def progress_bar(iterable: Iterable | None = None, **options) -> Progress:
    """Returns a Progress over `iterable` (options: desc, total, disable, log=False to skip the
    start line in a log, and tqdm's own, such as leave or unit)."""
    return Progress(iterable, **options)


def _length(iterable: Iterable | None) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _line(text: str) -> None:
    said = text if text.startswith("netscope") else f"netscope: {text}"
    print(said, file=sys.stderr, flush=True)
