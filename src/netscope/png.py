"""Writing a matplotlib figure to a PNG file: the last step of most plot_* and save_* functions."""

from __future__ import annotations

from pathlib import Path


def save_png(fig, path: str | Path, tight: bool = True, **savefig_options) -> Path:
    """Returns `path` after writing `fig` there (laid out with tight_layout first, unless `tight`
    is False) and closing it, so that figures made in a loop do not pile up in memory."""
    import matplotlib.pyplot as plt  # here, not at import: its callers import it lazily too

    if tight:
        fig.tight_layout()
    fig.savefig(path, **savefig_options)
    plt.close(fig)
    return Path(path)
