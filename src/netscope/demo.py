"""`netscope demo`: from the bundled MNIST to a full HTML report, in one command, on a CPU.

Trains the lecture recipe (or resumes / reuses the run in `--out`), evaluates it, runs the
inspections and attacks with CPU-friendly settings, each into its own sub-folder of the run, and
writes RUN/report.html. Analyses whose output is newer than the weights are reused.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from netscope.attack import ATTACKS, AttackConfig, FoolConfig, run_attack, run_fool
from netscope.attack.pipeline import attack_folder
from netscope.compare import CompareConfig, run_compare
from netscope.config import recipe_config
from netscope.data import load_dataset
from netscope.errors import NetscopeError
from netscope.evaluate import evaluation_folder, write_evaluation
from netscope.folders import output_folder, run_name, variant
from netscope.inspect import InspectConfig, run_inspect
from netscope.record import is_fresh
from netscope.report import write_report
from netscope.run import Run, load_run, read_json
from netscope.train import resume, train


class Analysis(NamedTuple):
    """One analysis the demo runs into a folder of the run."""

    folder: str  # inside the run directory
    record: str  # the JSON it writes there
    run: Callable[[Path], object]  # writes its record and figures into the folder it is given
    what: str  # one line for the progress output


def with_untrained(run: Run) -> Run:
    """Returns the same run with its initial (epoch 0, untrained) weights."""
    first = "checkpoints/epoch_00.safetensors"
    if first not in run.checkpoints():
        raise NetscopeError(f"{run.path} has no {first} (trained with --no-checkpoints)")
    return load_run(run.path, first)


def analyses(run: Run | None, progress: bool = True) -> list[Analysis]:
    """Returns what the demo runs on `run`, with CPU-friendly settings: every inspection, every
    registered attack that names demo settings, fooling images, and CKA/predictivity between the
    trained and the untrained network (on the 2-core build machine, about 2.5 minutes); each
    into the folder `netscope` would choose (netscope.folders). `run` None: only count them."""
    found = [
        Analysis(
            "inspect",
            "inspect.json",
            lambda out: run_inspect(run, out, InspectConfig(progress=progress)),
            "every inspection stage, from the filters to the morphs",
        )
    ]
    for spec in ATTACKS.values():
        if spec.demo is not None:
            config = AttackConfig(method=spec.name, progress=progress, **spec.demo)
            found.append(
                Analysis(
                    attack_folder(config),
                    "attack.json",
                    lambda out, config=config: run_attack(run, out, config),
                    f"{spec.title} on {config.n} test images",
                )
            )
    fool = FoolConfig(progress=progress)
    found.append(
        Analysis("fool", "fool.json", lambda out: run_fool(run, out, fool), "fooling images")
    )
    untrained = f"{run_name(run)}@epoch_00" if run is not None else ""
    compare = CompareConfig(n_images=300, progress=progress)
    found.append(
        Analysis(
            variant("compare", untrained),
            "compare.json",
            lambda out: run_compare(run, with_untrained(run), out, compare),
            "CKA and predictivity: trained vs untrained layers",
        )
    )
    return found


@dataclass
class DemoConfig:
    """Where the demo goes; each field is a `netscope demo --flag` of the same name."""

    out: str = "runs/demo"  # run directory (reused when it already holds a finished run)
    analyses: bool = True  # run inspect, attacks, fooling images, compare before the report
    progress: bool = True  # progress bars (one line per stage when stderr is not a terminal)


def say(step: int, total: int, text: str) -> float:
    """Prints one progress line to stderr; returns the time, to report how long a step took."""
    print(f"netscope demo [{step}/{total}] {text}", file=sys.stderr, flush=True)
    return time.perf_counter()


def done(start: float) -> None:
    print(f"    … done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def trained_run(out: Path, dataset, progress: bool = True) -> Run:
    """Returns the finished lecture run in `out`: trained, resumed, or reused as found."""
    if not (out / "run.json").exists():
        return train(recipe_config("lecture", out=str(out), progress=progress), dataset=dataset)
    info = read_json(out / "run.json")
    if info["epochs_done"] < info["config"]["epochs"]:
        return resume(out, progress=progress)
    print(f"    {out} already holds a finished run; reusing it", file=sys.stderr)
    return load_run(out)


def run_analyses(run: Run, step: int, total: int, progress: bool = True) -> int:
    """Runs each analysis into its folder of the run; returns the next step number."""
    for item in analyses(run, progress):
        start = say(step, total, f"{item.folder}: {item.what}")
        step += 1
        out = output_folder(run, item.folder)
        if is_fresh(out / item.record, run.path / "model.safetensors"):
            print(f"    reusing {out / item.record} (newer than the weights)", file=sys.stderr)
            continue
        try:
            item.run(out)
        except NetscopeError as err:  # one analysis failing should not cost the report
            print(f"    skipped: {err}", file=sys.stderr)
            continue
        done(start)
    return step


def run_demo(config: DemoConfig | None = None, dataset=None) -> Path:
    """Returns the path of the report after training, evaluating and analysing the demo run
    (`dataset`: the bundled MNIST when it is loaded already)."""
    config = config or DemoConfig()
    out = Path(config.out)
    total = 3 + (len(analyses(None)) if config.analyses else 0)
    start = say(1, total, f"training the lecture CNN on the bundled MNIST into {out}")
    dataset = dataset or load_dataset("mnist")
    run = trained_run(out, dataset, config.progress)
    done(start)
    start = say(2, total, "evaluating on the 10,000 test images")
    record = write_evaluation(run, evaluation_folder(run), dataset)
    print(
        f"    test error {record['test_error_pct']:.2f} % on {record['test_size']:,} test images",
        file=sys.stderr,
    )
    step = run_analyses(run, 3, total, config.progress) if config.analyses else 3
    start = say(step, total, "writing the HTML report")
    path = write_report(run.path, dataset=dataset)
    done(start)
    return path
