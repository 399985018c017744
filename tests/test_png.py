"""Saving figures: user strings with `$` are drawn as written, netscope's own mathtext stays;
figures draw off-screen, except that a Jupyter notebook keeps its inline plots."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from netscope.png import plain_text, save_png  # noqa: E402

# not formulas mathtext can read: each of these alone stops a figure from being drawn
BROKEN_AS_MATH = ["$\\alpha_$", "$x^$", "cost_$5$^"]


def figure_with(names: list[str]):
    fig, ax = plt.subplots()
    ax.set_yscale("log")  # automatic tick labels that are mathtext: $\mathdefault{10^{0}}$
    ax.plot([1, 2, 3], [1, 10, 100], label=names[0])
    ax.set_xticks([1, 2, 3], names)
    ax.set(title=names[1], xlabel=names[2])
    ax.legend()
    fig.suptitle(" / ".join(names))
    return fig, ax


def test_user_strings_with_dollars_break_a_figure_without_plain_text():
    fig, _ = figure_with(BROKEN_AS_MATH)
    with pytest.raises(ValueError):
        fig.canvas.draw()
    plt.close(fig)


def test_plain_text_draws_user_strings_as_written_and_keeps_numeric_mathtext():
    fig, ax = figure_with(BROKEN_AS_MATH)
    plain_text(fig)
    fig.canvas.draw()
    assert ax.title.get_text() == BROKEN_AS_MATH[1]
    assert [t.get_text() for t in ax.get_xticklabels()] == BROKEN_AS_MATH
    user = [ax.title, ax.xaxis.label, ax.get_legend().get_texts()[0], *fig.texts]
    user += ax.get_xticklabels()
    assert len(user) == 7 and not any(t.get_parse_math() for t in user)
    log_ticks = [t for t in ax.get_yticklabels() if "$" in t.get_text()]
    assert log_ticks and all(t.get_parse_math() for t in log_ticks)
    plt.close(fig)


def test_save_png_writes_a_figure_with_user_strings(tmp_path):
    fig, _ = figure_with(BROKEN_AS_MATH)
    path = save_png(fig, tmp_path / "names.png")
    with Image.open(path) as image:
        assert image.size == (640, 480)
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize(
    "backend, expected",
    [("module://matplotlib_inline.backend_inline", "module://matplotlib_inline.backend_inline"),
     (None, "agg")],
)  # fmt: skip
def test_figures_draw_off_screen_but_a_notebook_keeps_its_inline_plots(backend, expected):
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if backend:
        env["MPLBACKEND"] = backend  # what ipykernel sets in a Jupyter kernel
    code = (
        "import matplotlib, netscope.inspect, netscope.attack, netscope.evaluate\n"
        "from netscope.png import pyplot\n"
        "pyplot()\n"
        "print(matplotlib.get_backend().lower())"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == expected.lower()
