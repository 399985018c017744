"""Every code block of README.md and docs/*.md: run in a sandbox, or (marked skip, with a
reason) still compiled and its netscope command lines parsed. See tests/docs_runner.py."""

from __future__ import annotations

import pytest
from docs_runner import ROOT, doc_files, find_blocks, make_sandbox, netscope_commands, run_block

from netscope.cli import build_parser

BLOCKS = [block for path in doc_files() for block in find_blocks(path)]


@pytest.fixture(scope="module")
def sandbox(lecture_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    return folder, make_sandbox(folder, lecture_run.path)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.runs], ids=lambda b: b.name)
def test_runnable_block_runs_and_shows_what_the_docs_quote(block, sandbox):
    result = run_block(block, *sandbox)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.name} failed:\n{block.code}\n{output[-4000:]}"
    for text in block.expected:
        assert text in output, f"{block.name}: the docs quote {text!r}; the output:\n{output}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.runs], ids=lambda b: b.name)
def test_block_not_run_says_why_and_still_parses(block):
    assert block.marker in ("skip", "file") and block.note, (
        f"{block.name}: a {block.language or 'plain'} block needs <!-- docs-test: run -->, "
        "<!-- docs-test: skip, REASON --> or <!-- docs-test: file, NAME --> on the line before it"
    )
    if block.is_python:
        compile(block.code, block.name, "exec")
        return
    for argv in netscope_commands(block.code):
        try:
            build_parser(argv[0]).parse_args(argv)
        except SystemExit as exit:
            pytest.fail(f"{block.name}: `netscope {' '.join(argv)}` does not parse ({exit})")


def test_the_runner_finds_the_blocks_and_their_markers():
    readme = [b for b in BLOCKS if b.file == ROOT / "README.md"]
    assert readme[0].code.startswith("make demo") and readme[0].marker == "skip"
    assert any(b.is_python and b.runs for b in readme)
    expecting = [b for b in BLOCKS if b.expected]
    assert expecting and all(b.marker == "run" for b in expecting)
    code = "netscope a --b 1  # c\ntorchrun -x -m netscope t \\\n  --e 2\nA=1 B= netscope c\n"
    assert netscope_commands(code) == [["a", "--b", "1"], ["t", "--e", "2"], ["c"]]
    files = [b for b in BLOCKS if b.marker == "file"]
    assert files and not any(b.runs for b in files)
