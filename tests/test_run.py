"""Run directories: loading, checkpoints, and refusing bad or unsafe files."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from netscope import load_run
from netscope.config import recipe_config
from netscope.errors import NetscopeError
from netscope.evaluate import error_pct, predict
from netscope.models import LectureCNN, Normalized
from netscope.run import claimed, write_atomic
from netscope.train import resume, train


def test_load_run_restores_the_trained_model(lecture_run, mnist):
    run = load_run(lecture_run.path)
    assert isinstance(run.model, LectureCNN) and not run.model.training
    logits = predict(run.model, mnist.normalize(mnist.test_images))
    assert error_pct(logits, mnist.test_labels) == pytest.approx(
        run.info["metrics"]["test_error_pct"]
    )
    assert run.classes == mnist.classes and run.image_shape == (1, 28, 28)
    assert run.config.lr == 0.1 and run.config.epochs == 10


def test_pixel_model_equals_model_on_normalised_input(lecture_run, mnist):
    pixels = mnist.test_images[:64].float() / 255
    wrapped = lecture_run.pixel_model()
    assert isinstance(wrapped, Normalized)
    expected = lecture_run.model(mnist.normalize(mnist.test_images[:64]))
    assert torch.allclose(wrapped(pixels), expected, atol=1e-5)


def test_checkpoints_are_listed_and_loadable(lecture_run):
    names = lecture_run.checkpoints()
    assert names[0] == "checkpoints/epoch_00.safetensors" and names[-1] == "model.safetensors"
    initial = load_run(lecture_run.path, names[0])
    final = load_run(lecture_run.path, "checkpoints/epoch_10.safetensors")
    assert not torch.equal(initial.model.conv1.weight, final.model.conv1.weight)
    assert torch.equal(final.model.conv1.weight, lecture_run.model.conv1.weight)


def test_run_dataset_is_checked_against_recorded_checksum(lecture_run, tmp_path):
    assert lecture_run.load_dataset().checksum == lecture_run.info["data"]["checksum"]
    copy = tmp_path / "copy"
    shutil.copytree(lecture_run.path, copy)
    info = json.loads((copy / "run.json").read_text())
    info["data"]["checksum"] = "sha256:0000"
    (copy / "run.json").write_text(json.dumps(info))
    with pytest.raises(NetscopeError, match="differs from the one the run was trained on"):
        load_run(copy).load_dataset()


def test_bad_run_directories_get_clear_errors(lecture_run, tmp_path):
    with pytest.raises(NetscopeError, match="not a directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(NetscopeError, match="run.json: missing"):
        load_run(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(lecture_run.path, copy)
    with pytest.raises(NetscopeError, match="must lie inside"):
        load_run(copy, "../../etc/passwd")
    (copy / "model.safetensors").write_bytes(b"garbage that is not safetensors")
    with pytest.raises(NetscopeError, match="model.safetensors: not a valid safetensors file"):
        load_run(copy)


def test_pickled_weights_are_never_unpickled(lecture_run, tmp_path):
    """A pickle that would run code on load must be rejected without running it."""
    copy = tmp_path / "copy"
    shutil.copytree(lecture_run.path, copy)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (copy / "model.safetensors").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(NetscopeError):
        load_run(copy)
    assert not marker.exists()


def test_write_atomic_replaces_whole_file(tmp_path):
    path = tmp_path / "f.json"
    write_atomic(path, b"old")
    write_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


LEGACY = Path(__file__).parent / "data" / "run_v0_1"


def test_a_run_written_before_the_redesign_loads_evaluates_and_resumes(tmp_path, mnist):
    """tests/data/run_v0_1 was written by netscope 0.1.0 before the trainer and the run
    directory were untied (`netscope train --model lenet5 --epochs 1 --train-limit 600
    --test-limit 200 --no-checkpoints`): today's code reads it, evaluates it and continues it."""
    copy = tmp_path / "old"
    shutil.copytree(LEGACY, copy)
    run = load_run(copy)
    assert run.config.model == "lenet5" and run.info["epochs_done"] == 1
    logits = predict(run.model, mnist.normalize(mnist.test_images[:200]))
    assert error_pct(logits, mnist.test_labels[:200]) == run.info["metrics"]["test_error_pct"]
    resumed = resume(copy, epochs=2, progress=False)
    assert [m["epoch"] for m in resumed.metrics] == [1, 2]
    assert resumed.metrics[0] == run.metrics[0]


def test_two_trainings_never_share_a_run_directory(mnist, tmp_path):
    """The first training holds RUN/.lock; a second one into the same folder is refused at
    once, and the folder is free again once the first has ended."""
    out = tmp_path / "shared"
    with claimed(out, new=True):
        config = recipe_config(epochs=1, train_limit=300, test_limit=100, progress=False)
        with pytest.raises(NetscopeError, match="another netscope process is training into it"):
            train(dataclasses.replace(config, out=str(out)), dataset=mnist)
        assert not (out / "run.json").exists()
    train(dataclasses.replace(config, out=str(out)), dataset=mnist)
    with pytest.raises(NetscopeError, match="already holds a run"):
        train(dataclasses.replace(config, out=str(out)), dataset=mnist)
