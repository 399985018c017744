"""One self-contained HTML report from a run directory: `netscope report RUN`.

    from netscope.report import write_report
    write_report("runs/demo")            # -> runs/demo/report.html

The report shows the run (data, model, config, time, device), its training curves, its errors
on the test set, then one section per analysis JSON found in the run directory (inspect.json,
attack.json, fool.json, compare.json, lesson.json). Figures are embedded as data URIs, so the
file opens from disk with no network access.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netscope.data import Dataset


@dataclass
class ReportConfig:
    """What goes into the report; each field is a `netscope report --flag` of the same name."""

    out: str | None = None  # folder for report.html and its figures (default: the run directory)
    checkpoint: str = "model.safetensors"  # weights file inside the run to evaluate


def write_report(
    run_dir: str | Path, config: ReportConfig | None = None, dataset: Dataset | None = None
) -> Path:
    """Returns the path of the report.html written for the run in `run_dir` (pass the run's
    `dataset` when it is loaded already)."""
    # imported here so that building the CLI parser does not load matplotlib
    from netscope.report.analyses import analysis_sections
    from netscope.report.core import curves_section, errors_section, run_section
    from netscope.report.html import page
    from netscope.run import load_run, write_atomic

    config = config or ReportConfig()
    run = load_run(run_dir, config.checkpoint)
    out = Path(config.out) if config.out else run.path
    out.mkdir(parents=True, exist_ok=True)
    core = [
        ("run", "Run", run_section(run)),
        ("curves", "Training", curves_section(run, out)),
        ("errors", "Errors", errors_section(run, dataset)),
    ]
    sections = [s for s in core + analysis_sections(run.path) if s[2]]
    info = run.info
    subtitle = (
        f"{info['model']['name']} on {info['data']['name']} · {run.checkpoint} · "
        f"report written {time.strftime('%Y-%m-%d %H:%M')}"
    )
    html = page(
        f"netscope report: {run.path.resolve().name}",
        subtitle,
        [(anchor, title) for anchor, title, _ in sections],
        [body for _, _, body in sections],
    )
    path = out / "report.html"
    write_atomic(path, html.encode("utf-8"))
    path.chmod(0o644)  # the atomic write's temporary file is private; a report is for sharing
    return path


__all__ = ["ReportConfig", "write_report"]
