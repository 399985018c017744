"""What every analysis writes into its output folder: PNG figures, each with a title and a
caption, and one JSON record of its numbers that lists them (the report renders both)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netscope.run import write_json


@dataclass
class Figure:
    """A figure an analysis wrote: its file, a title and one sentence saying what to look at."""

    file: Path | str
    title: str
    caption: str = ""

    def as_dict(self) -> dict:
        """Returns the figure as the record lists it (the file name relative to the record)."""
        return {"file": Path(self.file).name, "title": self.title, "caption": self.caption}


def as_figure(entry: Figure | Path | str | dict) -> Figure:
    """Returns a Figure for a record's figure entry (a bare path gets its file name as title)."""
    if isinstance(entry, Figure):
        return entry
    if isinstance(entry, dict):
        return Figure(entry.get("file", ""), entry.get("title", ""), entry.get("caption", ""))
    return Figure(Path(entry), Path(entry).stem.replace("_", " "))


def jsonable(value: Any) -> Any:
    """Returns `value` with figures as dicts, tuples as lists and NaN/±inf as None (valid JSON)."""
    if isinstance(value, Figure):
        return value.as_dict()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_record(path: Path, record: dict) -> dict:
    """Writes an analysis's record as JSON at `path`, atomically; returns it as written."""
    written = jsonable(record)
    write_json(Path(path), written)
    return written


def is_fresh(record: Path, source: Path) -> bool:
    """Returns True when `record` exists and was written after `source` (e.g. the weights it
    describes) last changed."""
    return record.exists() and record.stat().st_mtime > source.stat().st_mtime
