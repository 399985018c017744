"""Finds the code blocks of README.md and docs/*.md and runs them, so the docs cannot drift.

A block's fate is decided by an HTML comment on the line before its opening fence (invisible
where the Markdown is rendered):

    <!-- docs-test: run -->                          run this shell block (bash, in a sandbox)
    <!-- docs-test: run, expect: 1.64 % | 704 -->    ... and its output must show each text
    <!-- docs-test: skip, REASON -->                 do not run it, for the stated REASON
    <!-- docs-test: file, NAME -->                   a file the blocks after it use: written
                                                     into the sandbox as NAME, not run

A `python` block runs unless marked skip; any other block (bash, sh, console, or no language)
must carry a marker. A block that is not run still gets checked: python is compiled, and every
`netscope …` line is parsed by the command line's own parser, so a renamed flag fails too.

The sandbox is a temporary folder holding copies of a trained lecture run under the names the
docs use (RUN, RUN_A, runs/lecture, runs/demo), the docs' files and a `netscope` command on PATH (also as
.venv/bin/netscope), with this checkout's package first on PYTHONPATH and an empty data cache.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import netscope

ROOT = Path(__file__).resolve().parents[1]
SHELLS = {"", "bash", "sh", "shell", "console"}
MARKER = re.compile(r"<!--\s*docs-test:\s*(run|skip|file)\s*(?:,\s*(.*?))?\s*-->")
RUN_NAMES = ("RUN", "RUN_A", "runs/lecture", "runs/demo")


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    file: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    marker: str  # "run", "skip", "file" or "" (none)
    note: str  # the skip reason, "expect: …" for run, the file's name for file

    @property
    def name(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.language in ("python", "py")

    @property
    def runs(self) -> bool:
        return self.marker == "run" or (self.is_python and self.marker not in ("skip", "file"))

    @property
    def expected(self) -> list[str]:
        """Returns the texts the block's output must contain."""
        found = re.match(r"expect:\s*(.*)", self.note)
        return [t.strip() for t in found[1].split("|")] if found else []


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def find_blocks(path: Path) -> list[Block]:
    """Returns the fenced blocks of a Markdown file, with the marker before each."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(```+)\s*([\w+-]*)", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence[1]))
        marker = MARKER.search(lines[i - 1]) if i else None
        blocks.append(
            Block(
                path,
                i + 1,
                fence[2].lower(),
                "\n".join(lines[i + 1 : end]) + "\n",
                marker[1] if marker else "",
                (marker[2] or "") if marker else "",
            )
        )
        i = end + 1
    return blocks


def make_sandbox(folder: Path, run_dir: Path) -> dict[str, str]:
    """Fills `folder` with the run copies, the docs' files and the netscope command; returns
    the environment."""
    for block in (b for path in doc_files() for b in find_blocks(path) if b.marker == "file"):
        (folder / block.note).write_text(block.code)
    copy = folder / "RUN"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock", "report.html"))
    for name in RUN_NAMES[1:]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(copy.resolve(), target_is_directory=True)
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, module in (("netscope", "-m netscope "), ("python", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {module}"$@"\n')
        shim.chmod(0o755)
    source = str(Path(netscope.__file__).resolve().parents[1])
    python_path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=python_path, NETSCOPE_CACHE=str(folder / "cache"))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env.pop("NETSCOPE_DATA", None)
    return env


def run_block(block: Block, folder: Path, env: dict[str, str], timeout: float = 600):
    """Returns the finished process of one block run in the sandbox."""
    if block.is_python:
        command = [sys.executable, "-c", block.code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    return subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
    )


def netscope_commands(code: str) -> list[list[str]]:
    """Returns the argument lists of the `netscope …` lines of a shell block (comments
    dropped, backslash continuations joined, `NAME=VALUE` settings before the command left out)."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"^\s*(\w+=\S*\s+)+", "", line)
        if not re.match(r"\s*(\S*/)?netscope\s", line) and "-m netscope" not in line:
            continue  # not a netscope command (nor, perhaps, shell at all)
        words = shlex.split(line, comments=True)
        if words and Path(words[0]).name == "netscope":
            commands.append(words[1:])
        elif "-m" in words and words[words.index("-m") + 1 :][:1] == ["netscope"]:
            commands.append(words[words.index("-m") + 2 :])  # python/torchrun … -m netscope
    return commands
