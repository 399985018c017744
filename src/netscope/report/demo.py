"""`netscope demo`: from the bundled MNIST to a full HTML report, in one command, on a CPU.

Trains the lecture recipe (or resumes / reuses the run in `--out`), evaluates it, runs the
inspections and attacks with CPU-friendly settings, each into its own sub-folder of the run, and
writes RUN/report.html. Analyses whose output is newer than the weights are reused.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from netscope.errors import NetscopeError


class Analysis(NamedTuple):
    """One analysis the demo runs: where its output goes and how to call it."""

    folder: str  # inside the run directory
    record: str  # the JSON it writes there
    module: str
    function: str
    config: str  # its config dataclass, in the same module
    settings: dict  # CPU-friendly overrides of the config's defaults
    what: str  # one line for the progress output
    runs: Callable = lambda run: (run,)  # the run(s) the function takes before `out`


def with_untrained(run) -> tuple:
    """Returns the run and the same run with its initial (epoch 0, untrained) weights."""
    from netscope.run import load_run

    first = "checkpoints/epoch_00.safetensors"
    if first not in run.checkpoints():
        raise NetscopeError(f"{run.path} has no {first} (trained with --no-checkpoints)")
    return run, load_run(run.path, first)


# CPU-friendly: on the 2-core build machine all of them took about 2.5 minutes of CPU time.
ANALYSES = [
    Analysis("inspect", "inspect.json", "netscope.inspect", "run_inspect", "InspectConfig", {},
             "filters, top patches, occlusion, saliency, class models, dream, morph"),
    Analysis("attack/deepfool", "attack.json", "netscope.attack", "run_attack", "AttackConfig",
             {"method": "deepfool", "n": 500}, "DeepFool on 500 test images"),
    Analysis("attack/fgsm", "attack.json", "netscope.attack", "run_attack", "AttackConfig",
             {"method": "fgsm", "n": 1000}, "FGSM on 1000 test images"),
    Analysis("attack/pgd", "attack.json", "netscope.attack", "run_attack", "AttackConfig",
             {"method": "pgd", "n": 100}, "PGD on 100 test images"),
    Analysis("fool", "fool.json", "netscope.attack", "run_fool", "FoolConfig", {},
             "fooling images grown from noise"),
    Analysis("compare", "compare.json", "netscope.compare", "run_compare", "CompareConfig",
             {"n_images": 300}, "CKA and predictivity: trained vs untrained layers",
             with_untrained),
]  # fmt: skip


@dataclass
class DemoConfig:
    """Where the demo goes; each field is a `netscope demo --flag` of the same name."""

    out: str = "runs/demo"  # run directory (reused when it already holds a finished run)
    analyses: bool = True  # run inspect, attacks, fooling images, compare before the report


def say(step: int, total: int, text: str) -> float:
    """Prints one progress line to stderr; returns the time, to report how long a step took."""
    print(f"netscope demo [{step}/{total}] {text}", file=sys.stderr, flush=True)
    return time.perf_counter()


def done(start: float) -> None:
    print(f"    … done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def trained_run(out: Path, dataset):
    """Returns the finished lecture run in `out`: trained, resumed, or reused as found."""
    from netscope.run import load_run, read_json
    from netscope.train import recipe_config, resume, train

    if not (out / "run.json").exists():
        return train(recipe_config("lecture", out=str(out)), dataset=dataset)
    info = read_json(out / "run.json")
    if info["epochs_done"] < info["config"]["epochs"]:
        return resume(out)
    print(f"    {out} already holds a finished run; reusing it", file=sys.stderr)
    return load_run(out)


def write_evaluation(run, dataset) -> str:
    """Writes evaluation.json and confusion.png into the run; returns a one-line summary."""
    from netscope.evaluate import evaluate, save_confusion_png
    from netscope.run import write_json

    evaluation = evaluate(
        run.model, dataset.normalize(dataset.test_images), dataset.test_labels, run.classes
    )
    write_json(run.path / "evaluation.json", evaluation.as_dict())
    save_confusion_png(evaluation, run.path / "confusion.png")
    return (
        f"test error {evaluation.test_error_pct:.2f} % on {len(dataset.test_labels):,} test images"
    )


def analysis(module: str, function: str, config_class: str) -> tuple[Callable, type] | None:
    """Returns the analysis function and its config class, or None when this netscope lacks it."""
    try:
        found = importlib.import_module(module)
        return getattr(found, function), getattr(found, config_class)
    except (ImportError, AttributeError):
        return None


def is_fresh(record: Path, run) -> bool:
    """Returns True when `record` was written after the run's final weights."""
    weights = run.path / "model.safetensors"
    return record.exists() and record.stat().st_mtime > weights.stat().st_mtime


def run_analyses(run, step: int, total: int) -> int:
    """Runs each available analysis into its folder of the run; returns the next step number."""
    for item in ANALYSES:
        start = say(step, total, f"{item.folder}: {item.what}")
        step += 1
        out = run.path / item.folder
        found = analysis(item.module, item.function, item.config)
        if found is None:
            print(
                f"    skipped: {item.module}.{item.function} is not part of this netscope",
                file=sys.stderr,
            )
        elif is_fresh(out / item.record, run):
            print(f"    reusing {out / item.record} (newer than the weights)", file=sys.stderr)
        else:
            run_function, config = found
            try:
                run_function(*item.runs(run), out, config(**item.settings))
            except NetscopeError as err:  # one analysis failing should not cost the report
                print(f"    skipped: {err}", file=sys.stderr)
                continue
            done(start)
    return step


def run_demo(config: DemoConfig | None = None, dataset=None) -> Path:
    """Returns the path of the report after training, evaluating and analysing the demo run
    (`dataset`: the bundled MNIST when it is loaded already)."""
    from netscope.data import load_dataset
    from netscope.report import write_report

    config = config or DemoConfig()
    out = Path(config.out)
    total = 3 + (len(ANALYSES) if config.analyses else 0)
    start = say(1, total, f"training the lecture CNN on the bundled MNIST into {out}")
    dataset = dataset or load_dataset("mnist")
    run = trained_run(out, dataset)
    done(start)
    start = say(2, total, "evaluating on the 10,000 test images")
    print(f"    {write_evaluation(run, dataset)}", file=sys.stderr)
    step = run_analyses(run, 3, total) if config.analyses else 3
    start = say(step, total, "writing the HTML report")
    path = write_report(run.path, dataset=dataset)
    done(start)
    return path
