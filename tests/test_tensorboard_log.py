"""`netscope train --tensorboard`: the event files hold each epoch's numbers and the conv1
filters; without the tensorboard package, one clear error before anything is written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from netscope.config import recipe_config
from netscope.errors import NetscopeError
from netscope.run import read_metrics
from netscope.tensorboard_log import filter_grid
from netscope.train import train


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_tensorboard_events_hold_the_metrics_and_the_filters(mnist, tmp_path):
    pytest.importorskip("tensorboard")  # the `test` extra installs it
    out = tmp_path / "run"
    options = dict(epochs=2, train_limit=1000, test_limit=500, progress=False, tensorboard=True)
    run = train(recipe_config("lecture", out=str(out), **options), dataset=mnist)
    events = read_events(out / "tensorboard")
    metrics = read_metrics(out)
    for name in ("train_loss", "test_error_pct", "epoch_s"):
        logged = events.Scalars(name)
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx([m[name] for m in metrics], rel=1e-6)
    images = events.Images("conv1_filters")
    assert [e.step for e in images] == [1, 2]
    # 32 filters of 5×5 in 4 rows of 8, 1-pixel gaps, each pixel drawn 8×8
    assert (images[0].height, images[0].width) == (8 * (4 * 6 + 1), 8 * (8 * 6 + 1))
    assert run.config.tensorboard


def test_filter_grid_puts_zero_at_mid_grey_and_each_kernel_in_its_cell():
    weight = torch.zeros(3, 1, 2, 2)
    weight[1, 0, 0, 1] = -2.0
    weight[2, 0, 1, 0] = 4.0
    grid = filter_grid(weight, columns=2, zoom=1)
    assert grid.shape == (1, 2 * 3 + 1, 2 * 3 + 1)
    assert grid[0, 1:3, 1:3].eq(0.5).all()  # kernel 0: all zero
    assert grid[0, 1, 5] == 0.25  # kernel 1 (row 0, column 1): -2 of a largest |w| of 4
    assert grid[0, 5, 1] == 1.0  # kernel 2 (row 1, column 0): the largest weight is white


def test_without_tensorboard_train_stops_before_writing(monkeypatch, mnist, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    config = recipe_config("lecture", out=str(tmp_path / "run"), epochs=1, tensorboard=True)
    with pytest.raises(NetscopeError, match=r"pip install tensorboard"):
        train(config, dataset=mnist)
    assert not (tmp_path / "run").exists()


def test_without_tensorboard_the_cli_prints_one_line(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['torch.utils.tensorboard'] = None\n"
        "from netscope.cli import main\n"
        f"sys.exit(main(['train', '--tensorboard', '--out', {str(tmp_path / 'run')!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "netscope: error: --tensorboard needs the tensorboard package, which is not installed "
        "(pip install tensorboard)"
    ]
    assert not (tmp_path / "run").exists()
