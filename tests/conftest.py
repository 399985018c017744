"""Shared fixtures: the real MNIST data and one lecture-recipe run trained once per session.

Set NETSCOPE_TEST_RUN=DIR to reuse (or create once) a trained run directory between sessions
while developing; CI leaves it unset and trains the run from scratch.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from netscope.config import recipe_config
from netscope.data import Dataset, load_dataset
from netscope.run import Run, load_run, read_json
from netscope.train import train

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    """The real, full MNIST shipped with the package."""
    return load_dataset("mnist")


def _finished(run_dir: Path) -> bool:
    if not (run_dir / "run.json").exists():
        return False
    info = read_json(run_dir / "run.json")
    return info["epochs_done"] == info["config"]["epochs"] == 10


@pytest.fixture(scope="session")
def lecture_run(mnist: Dataset, tmp_path_factory) -> Run:
    """The lecture recipe exactly (10 epochs, full MNIST, seed 0), trained once per session."""
    cached = os.environ.get("NETSCOPE_TEST_RUN")
    run_dir = Path(cached) if cached else tmp_path_factory.mktemp("lecture") / "run"
    if not _finished(run_dir):
        if run_dir.exists() and cached:
            import shutil

            shutil.rmtree(run_dir)
        train(recipe_config("lecture", out=str(run_dir), progress=False), dataset=mnist)
    return load_run(run_dir)
