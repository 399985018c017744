"""The command line: flags map onto TrainConfig, user errors are one line with exit status 2."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from netscope.cli import build_parser, field_comments, main
from netscope.config import TrainConfig


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netscope", *args], capture_output=True, text=True, timeout=600
    )


def test_every_train_config_field_has_a_flag_documented_by_its_comment():
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    flat = " ".join(help_text.split())
    comments = field_comments(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in help_text, field.name
        assert " ".join(comments[field.name].split()) in flat, field.name
    assert "--shift SHIFT augmentation: move each training image by up to N pixels" in flat
    assert "(default: 0)" in flat


def test_train_and_evaluate_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--out", str(out), "--epochs", "1", "--train-limit", "3000",
                   "--test-limit", "500", "--lr", "0.05", "--no-progress"])  # fmt: skip
    assert status == 0
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["lr"] == 0.05 and info["config"]["batch_size"] == 100
    assert main(["evaluate", str(out), "--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "test error" in printed and "class 9" in printed
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert sum(map(sum, evaluation["confusion"])) == 10000
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 10_000


def test_user_errors_print_one_line_and_exit_2(tmp_path):
    for args, expected in [
        (["train", "--epochs", "-3"], "netscope: error: --epochs -3: expected an integer >= 1"),
        (["evaluate", str(tmp_path)], "netscope: error: "),
        (["data", "info", "nosuchset"], "netscope: error: unknown data set 'nosuchset'"),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
        assert "Traceback" not in result.stderr


def test_data_info_reports_real_mnist_facts():
    result = run_cli("data", "info", "mnist")
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert info["train"] == 60000 and info["test"] == 10000
    assert info["train_class_counts"][0] == 5923


def test_data_info_of_a_set_not_here_says_where_it_would_be_without_downloading(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "netscope", "data", "info", "fashion-mnist"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, NETSCOPE_CACHE=str(tmp_path / "cache"), NETSCOPE_DATA=""),
    )
    assert result.returncode == 0 and "downloading" not in result.stderr
    info = json.loads(result.stdout)
    assert info["present"] is False and info["files"][0]["url"].startswith("http")
    assert str(tmp_path / "cache" / "fashion-mnist") in info["fetch"]
    assert not (tmp_path / "cache").exists()


def test_resume_refuses_flags_that_would_change_the_recorded_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "1", "--train-limit", "300",
                 "--test-limit", "100", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--lr", "0.5", "--train-limit", "100"]) == 2
    err = capsys.readouterr().err
    assert "--lr 0.5: " in err and "was trained with --lr 0.1" in err
    assert "only --epochs and --progress may change" in err
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 0
    assert json.loads((out / "run.json").read_text())["epochs_done"] == 2


def test_a_misspelt_flag_gets_one_line_and_the_closest_flag():
    result = run_cli("train", "--ephocs", "3")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "netscope: error: unrecognized arguments: --ephocs 3 (did you mean --epochs?)"
    ]
    bad_value = run_cli("train", "--lr", "abc")
    assert bad_value.stderr.strip().splitlines() == [
        "netscope: error: argument --lr: invalid float value: 'abc'"
    ]


def test_attack_flags_of_another_method_are_refused(tmp_path):
    result = run_cli("attack", str(tmp_path), "--method", "pgd", "--overshoot", "0.1")
    assert result.returncode == 2
    assert "--overshoot: not an option of pgd (its options: --random-start, --schedule," in (
        result.stderr
    )
