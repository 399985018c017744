"""The lecture's classic experiments as runnable lessons: `netscope lesson NAME [--out DIR]`.

Each lesson is a module here with a function `run(out: Path, full: bool = False, seed: int = 0)
-> LessonResult` that prints nothing itself, writes its PNG figures into `out` and returns what
it found. `LESSONS` maps a lesson's name to its module and a one-line description; modules are
imported only when their lesson runs.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from netscope.errors import NetscopeError

LESSONS: dict[str, tuple[str, str]] = {
    # name: (module under netscope.lessons, one-line description)
}


@dataclass
class LessonResult:
    """What a lesson found: a few lines for the terminal, its numbers and its figures."""

    name: str
    summary: list[str]
    numbers: dict = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    def save(self, out: Path) -> Path:
        """Writes lesson.json (summary, numbers, figure names) into `out`; returns its path."""
        path = Path(out) / "lesson.json"
        record = {
            "name": self.name,
            "summary": self.summary,
            "numbers": self.numbers,
            "figures": [Path(f).name for f in self.figures],
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
        return path


def run_lesson(name: str, out: str | Path, full: bool = False, seed: int = 0) -> LessonResult:
    """Returns the result of lesson `name` after running it with its figures written to `out`."""
    if name not in LESSONS:
        raise NetscopeError(f"unknown lesson {name!r} (expected one of {sorted(LESSONS)})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"netscope.lessons.{LESSONS[name][0]}")
    result = module.run(out, full=full, seed=seed)
    result.save(out)
    return result
