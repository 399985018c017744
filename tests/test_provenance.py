"""An analysis of an unfinished run says so, on stderr and in its record, with the epoch used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netscope.cli import main
from netscope.config import recipe_config
from netscope.provenance import unfinished_note, weights_of
from netscope.run import load_run, read_json, write_json
from netscope.train import TrainingDiverged, train

SMALL = dict(train_limit=500, test_limit=200, progress=False)


@pytest.fixture(scope="module")
def one_of_three(mnist, tmp_path_factory) -> Path:
    """A run with 1 of its 3 epochs trained, as a run killed in its second epoch leaves it."""
    out = tmp_path_factory.mktemp("unfinished") / "run"
    train(recipe_config("lecture", out=str(out), epochs=1, **SMALL), dataset=mnist)
    info = read_json(out / "run.json")
    info["config"]["epochs"] = 3
    write_json(out / "run.json", info)
    return out


def test_a_diverged_run_is_analysed_as_untrained_and_says_so(mnist, tmp_path, capsys):
    out = tmp_path / "run"
    config = recipe_config("lecture", out=str(out), epochs=2, lr=1e30, **SMALL)
    with pytest.raises(TrainingDiverged):  # the loss becomes NaN in epoch 1: 0 of 2 are done
        train(config, dataset=mnist)
    assert main(["evaluate", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"netscope: note: {out} is unfinished (0 of 2 epochs trained): using the untrained "
        f"weights (epoch 0) from model.safetensors; `netscope train --resume {out}` finishes it"
    ]
    weights = json.loads((out / "evaluate" / "evaluation.json").read_text())["weights"]
    assert weights["epoch"] == 0 and weights["epochs_planned"] == 2 and not weights["finished"]
    assert weights["note"] in err[0]


def test_every_analysis_of_an_unfinished_run_names_the_epoch_it_used(one_of_three, capsys):
    run = str(one_of_three)
    commands = [
        ["evaluate", run],
        ["inspect", run, "--stages", "filters"],
        ["attack", run, "--method", "fgsm", "--n", "20", "--no-curve"],
        [
            "attack",
            run,
            "--method",
            "fgsm",
            "--n",
            "20",
            "--no-curve",
            "--checkpoint",
            "checkpoints/epoch_00.safetensors",
        ],  # fmt: skip
    ]
    notes = []
    for command in commands:
        assert main([*command, "--no-progress"]) == 0
        notes += [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == len(commands)
    assert all("is unfinished (1 of 3 epochs trained)" in note for note in notes)
    assert "using the weights after epoch 1 from model.safetensors" in notes[0]
    assert "using the untrained weights (epoch 0) from checkpoints/epoch_00" in notes[-1]
    records = {
        "evaluate/evaluation.json": 1,
        "inspect/filters/inspect.json": 1,
        "attack/fgsm/attack.json": 1,
        "attack@epoch_00/fgsm/attack.json": 0,
    }
    for path, epoch in records.items():
        weights = json.loads((one_of_three / path).read_text())["weights"]
        assert (weights["epoch"], weights["epochs_done"], weights["epochs_planned"]) == (
            epoch,
            1,
            3,
        ), path
        assert "is unfinished (1 of 3 epochs trained)" in weights["note"]


def test_a_finished_run_gets_no_note(lecture_run):
    assert unfinished_note(lecture_run) is None
    assert weights_of(lecture_run) == {
        "checkpoint": "model.safetensors",
        "epoch": 10,
        "epochs_done": 10,
        "epochs_planned": 10,
        "finished": True,
    }
    early = load_run(lecture_run.path, "checkpoints/epoch_03.safetensors")
    assert weights_of(early)["epoch"] == 3 and unfinished_note(early) is None


def test_an_imported_model_is_finished_training_elsewhere(
    lecture_run, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "imported"
    weights = str(lecture_run.path / "model.safetensors")
    assert main(["import", "netscope.models:LectureCNN", "--weights", weights, "--mean", "0.1307",
                 "--std", "0.3081", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    run = load_run(out, trust_code=True)  # 0 epochs trained by netscope, of a default 10
    assert run.info["epochs_done"] == 0 and unfinished_note(run) is None
    assert weights_of(run) | {"epochs_planned": None} == {
        "checkpoint": "model.safetensors",
        "epoch": None,
        "epochs_done": 0,
        "epochs_planned": None,
        "finished": True,
    }
    capsys.readouterr()
    monkeypatch.setenv("NETSCOPE_TRUST_CODE", "1")
    assert main(["evaluate", str(out), "--no-progress"]) == 0
    assert "note" not in capsys.readouterr().err
