"""The command line: flags map onto TrainConfig, user errors are one line with exit status 2."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from netscope.cli import build_parser, field_comments, main
from netscope.train import TrainConfig


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
