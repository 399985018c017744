"""Writing a matplotlib figure to a PNG file: the last step of most plot_* and save_* functions."""

from __future__ import annotations

import os
from pathlib import Path

# text large enough to read on a slide, titles larger still, whatever another module set; used as
# `with plt.rc_context(SLIDE_TEXT):` so that the caller's own matplotlib settings stay as they were
SLIDE_TEXT = {"font.size": 13, "axes.titlesize": "large", "figure.titlesize": "large"}


def pyplot():
    """Returns matplotlib's pyplot drawing off-screen (Agg), since netscope writes its figures to
    files, also on servers and machines without a display. A Jupyter kernel keeps its inline
    backend, so that a notebook still shows the user's own plots (netscope closes each figure it
    writes, so none of its figures shows twice)."""
    import matplotlib

    if "inline" not in os.environ.get("MPLBACKEND", ""):  # ipykernel sets it for the notebook
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain_text(fig):
    """Returns `fig` with every text that holds a `$` set to be drawn exactly as written.

    matplotlib reads the text between two `$` as a formula (mathtext), so a class, layer, run or
    file name such as `$x^$` would stop the figure from being drawn, and `cost $5 or $6` would
    come out garbled. netscope's own labels write symbols in Unicode, never in mathtext (the lessons that
    do use a formula save their figures themselves), so every `$` met here is a user's."""
    from matplotlib.text import Text

    # tick labels set from a list (class or layer names) already hold their text here; the
    # automatic numeric ones get theirs only when the figure is drawn and stay mathtext
    for text in fig.findobj(Text):
        if "$" in text.get_text():
            text.set_parse_math(False)
    return fig


def save_png(fig, path: str | Path, tight: bool = True, **savefig_options) -> Path:
    """Returns `path` after writing `fig` there (user strings drawn as plain text, laid out with
    tight_layout first, unless `tight` is False) and closing it, so that figures made in a loop
    do not pile up in memory."""
    import matplotlib.pyplot as plt  # here, not at import: its callers import it lazily too

    plain_text(fig)
    if tight:
        fig.tight_layout()
    fig.savefig(path, **savefig_options)
    plt.close(fig)
    return Path(path)
