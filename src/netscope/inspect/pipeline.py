"""`netscope inspect RUN`: every inspection method on a trained run, as PNGs + inspect.json.

`STAGES` lists the methods in the order they run; each lives in its own file with the `stage`
that computes and draws it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from netscope.device import resolve_device
from netscope.errors import NetscopeError
from netscope.inspect.classmodel import STAGE as CLASS_MODELS
from netscope.inspect.config import InspectConfig
from netscope.inspect.context import prepare
from netscope.inspect.dream import STAGE as DEEP_DREAM
from netscope.inspect.filters import STAGE as FILTERS
from netscope.inspect.growth import STAGE as GROWTH
from netscope.inspect.morph import STAGE as MORPH
from netscope.inspect.occlusion import STAGE as OCCLUSION
from netscope.inspect.projection import STAGE as PROJECTIONS
from netscope.inspect.receptive import STAGE as TOP_PATCHES
from netscope.inspect.saliency import STAGE as SALIENCY
from netscope.inspect.stage import Stage
from netscope.inspect.units import STAGE as UNITS
from netscope.progress import progress_bar
from netscope.provenance import weights_of
from netscope.record import write_record
from netscope.run import Run
from netscope.threads import small_steps_on_one_thread

STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        FILTERS,
        TOP_PATCHES,
        PROJECTIONS,
        GROWTH,
        OCCLUSION,
        SALIENCY,
        UNITS,
        CLASS_MODELS,
        DEEP_DREAM,
        MORPH,
    )  # fmt: skip
}


def run_inspect(run: Run, out: Path, config: InspectConfig | None = None) -> dict:
    """Runs the configured stages on `run`, writes their PNGs and inspect.json into `out`;
    returns the inspect.json record. The image optimisations run small CPU work on one thread
    (`small_steps_on_one_thread`); torch's thread count is restored exactly afterwards."""
    config = config or InspectConfig()
    out = Path(out)
    torch.manual_seed(config.seed)
    model = run.pixel_model().to(resolve_device(config.device))
    ctx = prepare(run, model, out, config)
    unknown = [name for name in config.stages or [] if name not in STAGES]
    if unknown:
        raise NetscopeError(
            f"--stages: unknown stage {unknown[0]!r} (expected some of {', '.join(STAGES)})"
        )
    stages = [STAGES[name] for name in config.stages or STAGES]
    for stage in stages:  # every name is checked before minutes of work
        if stage.check:
            stage.check(ctx)
    out.mkdir(parents=True, exist_ok=True)
    record: dict = {
        "run": str(run.path),
        "checkpoint": run.checkpoint,
        "weights": weights_of(run),
        "device": str(ctx.test.device),
        "config": dataclasses.asdict(config),
        "examples": {
            "test_index": ctx.examples.tolist(),
            "label": ctx.targets.tolist(),
            "title": ctx.titles,
        },
    }
    figures, seconds = [], {}
    bar = progress_bar(stages, desc="netscope inspect", disable=not config.progress)
    with small_steps_on_one_thread():
        for stage in bar:
            bar.set_postfix_str(stage.name)
            start = time.perf_counter()
            record[stage.name], new = stage.run(ctx)
            figures += new
            seconds[stage.name] = round(time.perf_counter() - start, 2)
    record["seconds"] = seconds
    record["figures"] = figures
    return write_record(out / "inspect.json", record)
