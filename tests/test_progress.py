"""Progress: one bar on a terminal (nested loops in its text), one line per stage in a log, and
nothing when turned off."""

from __future__ import annotations

import io
import sys

import pytest

from netscope import progress
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
