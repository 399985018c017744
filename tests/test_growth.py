"""Features growing through training, from the lecture run's per-epoch checkpoints: the epochs
shown, units followed by index, the filter strip and GIF, the report embedding the GIF, and a
clear skip for a run that kept no checkpoints."""

from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image

from netscope.inspect.config import InspectConfig
from netscope.inspect.context import prepare
from netscope.inspect.growth import STAGE, checkpoint_epochs, shown_epochs, unit_growth
from netscope.inspect.projection import top_projections
from netscope.run import load_run


def test_epochs_shown_follow_zeiler_and_fergus():
    assert shown_epochs(range(11)) == [0, 1, 2, 5, 10]
    assert shown_epochs(range(65)) == [0, 1, 2, 5, 10, 20, 30, 40, 50, 60, 64]
    assert shown_epochs([0, 1, 2, 3]) == [0, 1, 2, 3]


def test_units_are_followed_by_index_across_checkpoints(lecture_run, mnist):
    kept = checkpoint_epochs(lecture_run)
    assert sorted(kept) == list(range(11))
    images = mnist.test_images[:500].float() / 255
    models = [(e, load_run(lecture_run.path, kept[e]).pixel_model()) for e in (0, 2, 10)]
    grown = unit_growth(models, images, {"conv2": [5, 30], "conv1": [1]})
    growth = grown["conv2"]
    assert growth.epochs == [0, 2, 10] and growth.units == [5, 30]
    assert growth.projections.shape == (3, 2, 1, 19, 19) == growth.patches.shape
    final = top_projections(models[-1][1], images, "conv2", k=1, units=[5, 30])
    torch.testing.assert_close(growth.values[-1], final.top.values[[5, 30], 0])
    torch.testing.assert_close(growth.projections[-1], final.projections[:, 0])
    assert growth.values[-1].min() > 2 * growth.values[0].max()  # the units grew stronger


@pytest.fixture(scope="module")
def growth_out(lecture_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("growth")
    config = InspectConfig(search_images=300, unit_images=300, units=2, progress=False)
    ctx = prepare(lecture_run, lecture_run.pixel_model(), out, config)
    entry, figures = STAGE.run(ctx)
    return out, entry, figures


def test_growth_stage_writes_strips_and_an_animated_gif(growth_out):
    out, entry, figures = growth_out
    assert [f.file for f in figures] == [
        "growth_conv1.png",
        "growth_conv2.png",
        "growth_filters.png",
        "growth_filters.gif",
    ]
    assert entry["epochs"] == [0, 1, 2, 5, 10]
    assert len(entry["conv2"]["units"]) == 2 and len(entry["conv2"]["strongest_value"]) == 5
    distance = entry["filters"]["distance_to_final"]
    assert len(distance) == 11 and distance[-1] == 0 and distance[0] > distance[5] > 0
    with Image.open(out / "growth_filters.gif") as gif:
        assert gif.n_frames == 11 and gif.info["loop"] == 0
    assert all((out / f.file).stat().st_size > 10_000 for f in figures)


def test_the_report_embeds_the_gif(growth_out):
    from netscope.record import write_record
    from netscope.report.analyses import figures_html

    out, entry, figures = growth_out
    record = write_record(out / "inspect.json", {"growth": entry, "figures": figures})
    html = figures_html(record, out)
    assert html.count("data:image/png;base64,") == 3
    assert html.count("data:image/gif;base64,") == 1


def test_a_run_without_checkpoints_is_skipped_with_a_message(lecture_run, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("run.json", "model.safetensors", "metrics.jsonl"):
        shutil.copy(lecture_run.path / name, bare / name)
    run = load_run(bare)
    config = InspectConfig(search_images=100, progress=False)
    entry, figures = STAGE.run(prepare(run, run.pixel_model(), tmp_path, config))
    assert figures == [] and "kept no per-epoch weights" in entry["skipped"]
    assert "netscope inspect: growth skipped: the run kept no" in capsys.readouterr().err
