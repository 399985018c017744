"""Progress: one bar on a terminal (nested loops in its text), one line per stage in a log, and
nothing when turned off; every subcommand's output into a file is plain lines."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netscope import progress
from netscope.cli import COMMANDS
from netscope.folders import FINAL
from netscope.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_stages(stages: list[str], inner: int = 3, **options) -> None:
    bar = progress_bar(stages, desc="outer", **options)
    for stage in bar:
        bar.set_postfix_str(stage)
        for _ in progress_bar(range(inner), desc=f"inner {stage}"):  # no flag of its own
            pass


@pytest.fixture
def stderr(monkeypatch):
    def use(stream: io.StringIO) -> io.StringIO:
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    yield use
    progress.set_enabled(True)


def test_a_log_gets_one_plain_line_per_stage(stderr):
    log = stderr(io.StringIO())
    run_stages(["filters", "occlusion"])
    assert log.getvalue().splitlines() == [
        "netscope: outer (2 steps)",
        "netscope: outer [1/2] filters",
        "netscope: outer [2/2] occlusion",
    ]
    assert progress._open == []


def test_an_imported_ipykernel_does_not_make_a_log_a_notebook(stderr):
    """The test process itself imports ipykernel to run the labs: only a running kernel shows
    notebook bars (tests/test_examples.py runs them there)."""
    import ipykernel  # noqa: F401

    log = stderr(io.StringIO())
    run_stages(["filters"])
    assert log.getvalue().splitlines() == [
        "netscope: outer (1 steps)",
        "netscope: outer [1/1] filters",
    ]


def test_a_terminal_gets_one_bar_showing_the_nested_loop(stderr):
    screen = stderr(Terminal())
    run_stages(["filters", "occlusion"])
    text = screen.getvalue()
    assert "\r" in text and "inner occlusion 3/3" in text  # in the outer bar's text
    assert "inner filters:" not in text  # a nested loop draws no bar of its own
    assert progress._open == []


def test_turned_off_prints_nothing_inside_either(stderr):
    for stream in (io.StringIO(), Terminal()):
        log = stderr(stream)
        run_stages(["a", "b"], disable=True)
        assert log.getvalue() == ""
    progress.set_enabled(False)
    run_stages(["a", "b"])
    assert log.getvalue() == ""


def test_a_loop_left_by_an_exception_closes_its_bar(stderr):
    stderr(io.StringIO())
    with pytest.raises(KeyError):
        for step in progress_bar(range(3), desc="fails"):
            {}[step]
    assert progress._open == []


# ---------------------------------------------------------------- every subcommand, into a file

# Runs each `netscope` command line of a JSON list in turn, in one interpreter (one start-up of
# torch instead of eleven), each after a marker line; stdout and stderr are the caller's file.
DRIVER = """
import json, sys
from netscope.cli import main
for name, argv in json.loads(sys.argv[1]):
    print(f"=== {name}", flush=True)
    if main(argv) != 0:
        sys.exit(f"=== {name} failed")
"""


def logs_of(commands: dict[str, list[str]], log: Path) -> dict[str, str]:
    """Returns what each `netscope ARGS` printed (stdout and stderr) into the file `log`."""
    with open(log, "w") as out:
        argv = [sys.executable, "-u", "-c", DRIVER, json.dumps(list(commands.items()))]
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text[-4000:]
    parts = re.split(r"^=== (\S+)\n", text, flags=re.M)[1:]
    return dict(zip(parts[::2], parts[1::2]))


def served_log(run: Path, log: Path) -> str:
    """Returns what `netscope serve RUN --no-progress` printed into `log` until it served."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    argv = [sys.executable, "-m", "netscope", "serve", str(run), "--port", port, "--no-progress"]
    with open(log, "w") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while "serving" not in log.read_text() and time.monotonic() < deadline:
                assert server.poll() is None, log.read_text()
                time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(timeout=60)
    return log.read_text()


def tiny_commands(run: Path, tmp: Path) -> dict[str, list[str]]:
    """Returns every subcommand but serve, with settings that take a second or two each."""
    lines = {
        "data": "data info mnist",
        "train": f"train --out {tmp}/new --epochs 1 --train-limit 300 --test-limit 100",
        "evaluate": f"evaluate {run}",
        "import": f"import netscope.models:LectureCNN --weights {run / FINAL} --mean 0.1307 "
        f"--std 0.3081 --out {tmp}/imported",
        "demo": f"demo --out {run} --no-analyses",
        "inspect": f"inspect {run} --stages filters occlusion --images 1",
        "attack": f"attack {run} --method pgd --n 20 --steps 5",
        "fool": f"fool {run} --method gradient --steps 5",
        "lesson": f"lesson perceptron --out {tmp}/lesson",
        "compare": f"compare {run} {run} --checkpoint-b checkpoints/epoch_00.safetensors "
        "--n-images 20",
        "report": f"report {run}",
    }
    return {name: line.split() for name, line in lines.items()}


def test_every_subcommand_into_a_file_writes_plain_lines(lecture_run, tmp_path):
    run = Path(shutil.copytree(lecture_run.path, tmp_path / "run"))
    commands = tiny_commands(run, tmp_path)
    # serve runs until stopped: it gets its own process, stopped once it says it serves
    assert set(commands) | {"serve"} == set(COMMANDS)
    quiet = {name: [*argv, "--no-progress"] for name, argv in commands.items()}
    # the same two commands with their progress on: in a file, one line per stage
    shown = {f"{name}-shown": commands[name] for name in ("inspect", "attack")}
    logs = logs_of(quiet | shown, tmp_path / "log")
    logs["serve"] = served_log(run, tmp_path / "serve.log")
    assert set(logs) == set(quiet | shown) | {"serve"}
    for name, text in logs.items():
        assert "\r" not in text and "\x1b" not in text, f"{name}: {text!r}"
    assert "test error" in logs["evaluate"] and "serving" in logs["serve"]
    assert "netscope inspect" not in logs["inspect"] and "ε curve" not in logs["attack"]
    assert logs["inspect-shown"].startswith(
        "netscope inspect (2 steps)\nnetscope inspect [1/2] filters\n"
        "netscope inspect [2/2] occlusion\n"
    )
    assert "netscope: pgd ε curve (6 budgets)\n" in logs["attack-shown"]
