"""Which weights an analysis reads: the epoch they come from, and whether their run finished.

A run killed in its second of three epochs still has weights (those of epoch 1, or the untrained
ones before the first epoch ends); an analysis of it must say so rather than quietly describe a
half-trained network. Every analysis record carries `weights_of(run)`, and the command line
prints `unfinished_note(run)` on stderr.
"""

from __future__ import annotations

import re
from pathlib import Path

from safetensors import safe_open

from netscope.run import Run


def weights_epoch(run: Run) -> int:
    """Returns the epoch after which the run's loaded weights were saved (0 = untrained)."""
    named = re.fullmatch(r"epoch_(\d+)", Path(run.checkpoint).stem)
    if named:
        return int(named[1])
    with safe_open(str(run.path / run.checkpoint), "pt") as f:
        saved = (f.metadata() or {}).get("epoch", "")
    return int(saved) if saved.isdigit() else int(run.info.get("epochs_done", 0))


def is_finished(run: Run) -> bool:
    """Returns True for a run whose training ended (or a model trained elsewhere, imported)."""
    return "imported" in run.info or run.info.get("epochs_done", 0) >= run.config.epochs


def weights_of(run: Run) -> dict:
    """Returns what an analysis record says of the weights it used: checkpoint, epoch (None
    for an imported model), the run's finished and planned epochs, and a note when the run is
    unfinished."""
    imported = "imported" in run.info
    record = {
        "checkpoint": run.checkpoint,
        "epoch": None if imported else weights_epoch(run),
        "epochs_done": run.info.get("epochs_done", 0),
        "epochs_planned": run.config.epochs,
        "finished": is_finished(run),
    }
    note = unfinished_note(run)
    return record | ({"note": note} if note else {})


def unfinished_note(run: Run) -> str | None:
    """Returns one sentence saying the run is unfinished and which weights are used (None for
    a finished run)."""
    if is_finished(run):
        return None
    done, planned = run.info.get("epochs_done", 0), run.config.epochs
    epoch = weights_epoch(run)
    which = "the untrained weights (epoch 0)" if epoch == 0 else f"the weights after epoch {epoch}"
    return (
        f"{run.path} is unfinished ({done} of {planned} epochs trained): using {which} from "
        f"{run.checkpoint}; `netscope train --resume {run.path}` finishes it"
    )
