"""The labs in examples/: each runs end to end in a real Jupyter kernel, offline, on the data the
package ships, and is committed without outputs."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
LABS = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def offline_environment(folder: Path) -> dict[str, str]:
    """Returns the kernel's environment: every web request goes to a closed local port, and no
    data or cache folder outside the package is found."""
    env = {k: v for k, v in os.environ.items() if k != "NETSCOPE_DATA"}
    closed = "http://127.0.0.1:9"
    env.update(http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed)
    env.update(NETSCOPE_CACHE=str(folder / "cache"), no_proxy="", NO_PROXY="")
    return env


def execute(path: Path, folder: Path) -> nbformat.NotebookNode:
    """Returns the notebook at `path` after running all its cells in a fresh kernel whose working
    folder is `folder` (raises on the first cell that fails)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=offline_environment(folder))
    return notebook


def outputs(notebook: nbformat.NotebookNode, kind: str) -> list:
    """Returns every output of the code cells whose type (or MIME type) is `kind`."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == kind:
                found.append(output)
            elif kind in output.get("data", {}):
                found.append(output["data"][kind])
    return found


def test_there_is_one_lab_per_lecture_theme():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "1_lecture_recipe",
        "2_what_is_really_happening",
        "3_adversarial",
        "4_your_own_model",
        "5_compare",
        "6_classics",
    ]


@LABS
def test_a_lab_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@LABS
def test_a_lab_starts_with_its_question_and_ends_with_what_it_showed(path):
    cells = nbformat.read(path, as_version=4).cells
    opening = " ".join(cells[0].source.split())
    assert cells[0].cell_type == "markdown" and "**The question:**" in opening
    assert "**To scale up:**" in opening  # the small settings and how to grow them
    assert cells[-1].cell_type == "markdown" and "## What it showed" in cells[-1].source


@LABS
def test_a_lab_runs_offline_in_a_jupyter_kernel(path, tmp_path):
    notebook = execute(path, tmp_path)
    figures = outputs(notebook, "image/png")
    assert len(figures) >= 3
    for figure in figures:  # every figure is a real picture, not a placeholder
        picture = Image.open(io.BytesIO(base64.b64decode(figure)))
        assert picture.width >= 200 and picture.height >= 100
    for stream in outputs(notebook, "stream"):
        assert "Warning" not in stream.text and "Traceback" not in stream.text, stream.text
    assert not list(tmp_path.glob("cache/*"))  # nothing was downloaded
