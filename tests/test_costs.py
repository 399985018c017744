"""Expected times: every long command has a measured cost, scaled by its arguments."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from netscope import costs
from netscope.attack import ATTACKS, AttackConfig
from netscope.cli import expect
from netscope.config import TrainConfig, recipe_config
from netscope.inspect import InspectConfig
from netscope.inspect.pipeline import STAGES
from netscope.lessons import LESSONS


def test_every_attack_stage_and_lesson_has_a_measured_cost():
    for name in ATTACKS:
        assert costs.attack_seconds(AttackConfig(method=name)) > 0, name
    for name in STAGES:
        assert costs.inspect_seconds(InspectConfig(stages=[name])) > 0, name
    assert set(costs.LESSON_COSTS) == set(LESSONS)


def test_estimates_grow_with_the_work_asked_for():
    lecture = costs.train_seconds(TrainConfig())
    assert costs.train_seconds(TrainConfig(epochs=2)) == pytest.approx(lecture / 5)
    assert costs.train_seconds(TrainConfig(adversarial="pgd", adversarial_check=0)) > 5 * lecture
    pgd = AttackConfig(method="pgd", n=100, curve=False)
    assert costs.attack_seconds(dataclasses.replace(pgd, n=1000)) == pytest.approx(
        10 * costs.attack_seconds(pgd)
    )
    assert costs.attack_seconds(dataclasses.replace(pgd, curve=True)) > costs.attack_seconds(pgd)
    every = costs.inspect_seconds(InspectConfig())
    assert costs.inspect_seconds(InspectConfig(search_images=1000)) < every
    assert costs.lesson_seconds("gan", full=True) == pytest.approx(5 * costs.lesson_seconds("gan"))


def test_training_on_small_data_counts_the_epochs_min_steps_adds():
    # without --recipe, data other than MNIST trains "fast" for at least 600 steps
    config = recipe_config(None, data="fashion-mnist", train_limit=2400)
    assert (config.epochs, config.min_steps) == (1, 600)
    one_epoch = costs.train_seconds(config, epochs=1)
    assert costs.train_seconds(config) == pytest.approx(25 * one_epoch)  # 24 steps an epoch
    assert costs.train_seconds(TrainConfig(data="my/folder")) is None  # size unknown here


def test_resume_counts_the_epochs_left_and_an_imported_model_has_none(lecture_run, tmp_path):
    assert costs.resume_seconds(lecture_run.path) == 0
    two_more = costs.resume_seconds(lecture_run.path, epochs=12)
    assert two_more == pytest.approx(costs.train_seconds(TrainConfig(), epochs=2))
    imported = shutil.copytree(lecture_run.path, tmp_path / "run")
    info = json.loads((imported / "run.json").read_text())
    info["imported"] = {"weights": "w.safetensors", "sha256": "0" * 64}
    (imported / "run.json").write_text(json.dumps(info))
    assert costs.resume_seconds(imported) is None


def test_a_long_command_says_so_first_with_its_quick_version(capsys):
    expect(costs.attack_seconds(AttackConfig(method="lbfgs", n=200)), "--n 100")
    seconds = costs.describe(costs.attack_seconds(AttackConfig(method="lbfgs", n=200)))
    assert capsys.readouterr().err == f"netscope: expected time {seconds}; quick: --n 100\n"
    expect(9.0, "--n 1")  # under 10 s: not worth a line
    assert capsys.readouterr().err == ""
    assert [costs.describe(s) for s in (4.2, 44, 150, 7200)] == [
        "about 4 s",
        "about 40 s",
        "about 2 min",
        "about 2.0 h",
    ]
