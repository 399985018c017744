"""Training: the lecture recipe's accuracy, determinism, resume after SIGKILL, NaN stop, config."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from netscope.batches import with_min_steps
from netscope.cli import main
from netscope.config import DEFAULT_MIN_STEPS, TrainConfig, recipe_config
from netscope.device import ONE_PROCESS
from netscope.errors import NetscopeError
from netscope.models import LectureCNN
from netscope.run import load_run, load_weights, read_metrics
from netscope.train import TrainingDiverged, eager_update, resume, train

SMALL = dict(train_limit=6000, test_limit=1000, progress=False)


@pytest.mark.slow
def test_lecture_recipe_reaches_lecture_accuracy(lecture_run):
    """The slide's recipe, 10 epochs on the full real MNIST: the lecture quotes about 1 %."""
    config = lecture_run.config
    assert (config.epochs, config.lr, config.batch_size, config.shuffle) == (10, 0.1, 100, False)
    assert lecture_run.info["data"]["train_size"] == 60000
    metrics = lecture_run.metrics
    assert [m["epoch"] for m in metrics] == list(range(1, 11))
    assert metrics[-1]["test_error_pct"] <= 1.2
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"] / 5
    assert lecture_run.info["metrics"]["test_error_pct"] == metrics[-1]["test_error_pct"]
    files = {p.name for p in lecture_run.path.iterdir()}
    assert {"model.safetensors", "run.json", "metrics.jsonl", "train_state.safetensors"} <= files
    assert len(list((lecture_run.path / "checkpoints").glob("epoch_*.safetensors"))) == 11


def test_same_seed_gives_identical_metrics(mnist, tmp_path):
    first = train(recipe_config(epochs=2, out=str(tmp_path / "a"), **SMALL), dataset=mnist)
    second = train(recipe_config(epochs=2, out=str(tmp_path / "b"), **SMALL), dataset=mnist)
    other = train(recipe_config(epochs=2, seed=1, out=str(tmp_path / "c"), **SMALL), dataset=mnist)
    strip = [{k: v for k, v in m.items() if k != "epoch_s"} for m in first.metrics]
    assert strip == [{k: v for k, v in m.items() if k != "epoch_s"} for m in second.metrics]
    assert first.metrics[-1]["train_loss"] != other.metrics[-1]["train_loss"]


def _train_command(out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "netscope", "train", "--out", str(out), "--epochs", str(epochs),
            "--train-limit", "20000", "--test-limit", "1000", "--momentum", "0.9", "--shuffle",
            "--no-progress"]  # fmt: skip


def test_resume_after_sigkill_matches_uninterrupted_run(mnist, tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(_train_command(killed, 3), stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(read_metrics(killed)) < 1 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(read_metrics(killed))
    assert 1 <= done < 3, "the process should die mid-training"
    resumed = resume(killed)
    config = recipe_config(
        epochs=3, out=str(tmp_path / "straight"), train_limit=20000, test_limit=1000,
        momentum=0.9, shuffle=True, progress=False,
    )  # fmt: skip
    straight = train(config, dataset=mnist)
    assert [m["epoch"] for m in resumed.metrics] == [1, 2, 3]
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert resumed.metrics[-1]["test_error_pct"] == straight.metrics[-1]["test_error_pct"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(mnist, tmp_path):
    run_dir = tmp_path / "nan"
    first = train(recipe_config(epochs=1, out=str(run_dir), **SMALL), dataset=mnist)
    good = load_weights(run_dir / "model.safetensors")
    info = json.loads((run_dir / "run.json").read_text())
    info["config"]["lr"] = 1e6  # diverges at once
    (run_dir / "run.json").write_text(json.dumps(info))
    with pytest.raises(TrainingDiverged, match=r"loss became .*last good checkpoint \(epoch 1\)"):
        resume(run_dir, epochs=2)
    after = load_weights(run_dir / "model.safetensors")
    assert all(torch.equal(good[k], after[k]) for k in good)
    assert len(read_metrics(run_dir)) == 1 == len(first.metrics)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "--epochs 0: expected an integer >= 1"),
        ("lr", -0.1, "--lr -0.1: expected a number > 0"),
        ("batch_size", 0, "--batch-size 0"),
        ("schedule", "cosine", "--schedule cosine: expected constant or onecycle"),
        ("momentum", 1.5, "--momentum 1.5"),
    ],
)
def test_bad_config_values_are_named(field, value, message):
    with pytest.raises(NetscopeError, match=message):
        TrainConfig(**{field: value})


def test_unknown_recipe_model_device_and_existing_run(mnist, tmp_path):
    with pytest.raises(NetscopeError, match="unknown recipe 'slow'"):
        recipe_config("slow")
    with pytest.raises(NetscopeError, match="unknown model 'resnet9000'"):
        train(recipe_config(model="resnet9000", out=str(tmp_path / "m"), **SMALL), dataset=mnist)
    if not torch.cuda.is_available():
        with pytest.raises(NetscopeError, match="no CUDA device"):
            train(recipe_config(device="cuda", out=str(tmp_path / "d"), **SMALL), dataset=mnist)
    train(recipe_config(epochs=1, out=str(tmp_path / "r"), **SMALL), dataset=mnist)
    with pytest.raises(NetscopeError, match="already holds a run"):
        train(recipe_config(epochs=1, out=str(tmp_path / "r"), **SMALL), dataset=mnist)


def test_fast_recipe_overrides_apply():
    config = recipe_config("fast", epochs=5)
    assert config.recipe == "fast" and config.epochs == 5
    assert config.momentum > 0 and config.schedule == "onecycle"


class SlideNet(nn.Module):
    """The lecture's network exactly as the slide writes it (seeds/001, "the MNIST recipe")."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.fc1 = nn.Linear(256, 200)
        self.fc2 = nn.Linear(200, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=3))
        x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2))
        x = x.view(-1, 256)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def test_plain_path_is_the_slides_own_loop_bit_for_bit(mnist, tmp_path):
    """--no-channels-last runs the slide's math: 300 steps of the trainer and of the slide's loop
    (same seed, same normalised images) end with bitwise-identical weights."""
    n = 30_000
    config = recipe_config(
        epochs=1, train_limit=n, test_limit=100, channels_last=False, progress=False,
        out=str(tmp_path / "run"),
    )  # fmt: skip
    run = train(config, dataset=mnist)
    torch.manual_seed(config.seed)
    model = SlideNet()
    initial = load_weights(run.path / "checkpoints" / "epoch_00.safetensors")
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items())
    train_input = mnist.normalize(mnist.train_images[:n])
    train_target = mnist.train_labels[:n]
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-1)
    criterion, bs = nn.CrossEntropyLoss(), 100
    for b in range(0, n, bs):
        output = model(train_input.narrow(0, b, bs))
        loss = criterion(output, train_target.narrow(0, b, bs))
        model.zero_grad()
        loss.backward()
        optimizer.step()
    ours = run.model.state_dict()
    for name, theirs in model.state_dict().items():
        assert torch.equal(ours[name], theirs), name


def test_adversarial_field_is_honoured_from_python(mnist, tmp_path):
    """TrainConfig(adversarial="pgd") trains on attacked batches without the CLI: the weights
    differ from clean training with the same seed, and run.json records what was done."""
    small = dict(epochs=1, train_limit=400, test_limit=100, progress=False)
    clean = train(recipe_config(out=str(tmp_path / "clean"), **small), dataset=mnist)
    attacked = train(
        recipe_config(out=str(tmp_path / "pgd"), adversarial="pgd", **small), dataset=mnist
    )
    assert attacked.info["config"]["adversarial"] == "pgd"
    weights = attacked.model.state_dict()
    assert any(not torch.equal(v, weights[k]) for k, v in clean.model.state_dict().items())


# ---------------------------------------------------------------- defaults on other data


def test_without_a_recipe_mnist_gets_the_lectures_and_other_data_fast_for_600_steps(mnist):
    assert recipe_config(None) == recipe_config("lecture")
    assert recipe_config(None, epochs=3) == recipe_config("lecture", epochs=3)
    folder = recipe_config(None, data="my_photos")
    assert folder == recipe_config("fast", data="my_photos", min_steps=DEFAULT_MIN_STEPS)
    assert recipe_config(None, data="my_photos", epochs=5) == recipe_config(
        "fast", data="my_photos", epochs=5
    )  # --epochs says how long: exactly that
    assert recipe_config("lecture", data="my_photos").min_steps == 0
    config = recipe_config("fast", train_limit=1000, min_steps=25)  # 10 steps an epoch
    assert with_min_steps(config, mnist).epochs == 3
    assert with_min_steps(dataclasses.replace(config, epochs=4), mnist).epochs == 4


def test_a_partial_last_batch_weighs_as_its_share_of_a_full_one(mnist):
    """One image at the end of an epoch moves the weights as a hundredth of a batch of 100
    (the mean loss times 1/100), not as a whole batch."""
    config = recipe_config(batch_size=100, channels_last=False)
    inputs, labels = mnist.normalize(mnist.train_images[:1]), mnist.train_labels[:1]
    models = [LectureCNN(), LectureCNN()]
    models[1].load_state_dict(models[0].state_dict())
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    loss = eager_update(models[0], optimizers[0], config, ONE_PROCESS)(inputs, labels, 1)
    expected = F.cross_entropy(models[1](inputs), labels) / 100
    optimizers[1].zero_grad()
    expected.backward()
    optimizers[1].step()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    for ours, theirs in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(ours, theirs, atol=1e-7)


def write_digit_folder(root: Path, mnist, n: int, side: int) -> Path:
    """Writes the first `n` MNIST training digits as side×side PNG files, one folder per class
    (root/3/00007.png): listed by a file system, one class after the other."""
    for index in range(n):
        folder = root / str(int(mnist.train_labels[index]))
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(mnist.train_images[index, 0].numpy()).resize((side, side))
        image.save(folder / f"{index:05d}.png")
    return root


def test_a_class_sorted_folder_trains_well_with_the_defaults(mnist, tmp_path, capsys):
    """Issue 16's must-hold: 3000 real digits as 36×36 PNG files in class folders, trained by
    `netscope train --data FOLDER` and nothing else, end near what the same images reach with
    `--recipe fast --epochs 10` (shuffled batches). Measured: 1.83 % and 1.67 % test error
    (600 test images); the lecture recipe on them: 3.50 %."""
    folder = write_digit_folder(tmp_path / "digits", mnist, n=3000, side=36)
    flags = ["--no-progress", "--no-checkpoints"]
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "default"), *flags]) == 0
    reference = ["--recipe", "fast", "--epochs", "10", "--out", str(tmp_path / "fast")]
    assert main(["train", "--data", str(folder), *reference, *flags]) == 0
    default, fast = load_run(tmp_path / "default"), load_run(tmp_path / "fast")
    assert default.config.recipe == "fast" and default.config.min_steps == DEFAULT_MIN_STEPS
    assert default.config.epochs == 25 and default.info["data"]["train_size"] == 2400
    ours, theirs = (r.info["metrics"]["test_error_pct"] for r in (default, fast))
    assert ours <= theirs + 1.0 and ours < 3.0, (ours, theirs)
    assert "did not learn" not in capsys.readouterr().err


def test_a_training_that_ends_near_chance_says_so(tmp_path, capsys):
    """Two classes holding the same image cannot be told apart: the test error is 50 %, chance,
    and the run says what to try."""
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    for name in ("a", "b"):
        (tmp_path / "same" / name).mkdir(parents=True)
        for index in range(5):
            Image.fromarray(noise).save(tmp_path / "same" / name / f"{index}.png")
    config = recipe_config(data=str(tmp_path / "same"), epochs=2, out=str(tmp_path / "run"))
    run = train(dataclasses.replace(config, progress=False))
    assert run.info["metrics"]["test_error_pct"] == 50.0
    assert (
        "netscope: warning: training did not learn: test error 50.00 % is near chance (50.00 % "
        "for 2 classes): try --recipe fast / --epochs 600" in capsys.readouterr().err
    )
