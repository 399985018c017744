"""Results that show themselves: a figure (or a compact table) in Jupyter, a one-line summary as
their repr, and `netscope.show(x)` for a PNG anywhere else.

A result class inherits `Shows`; the module that plots it registers how, next to its `plot_*`:

    @figure_of(AttackResult)
    def attack_figure(result, path, classes=None): return plot_attack_examples(...)

so that no figure is drawn twice in two places and the results' modules need not import their
plotting code. Bare tensors (occlusion or saliency maps, dreamed images) have no class of their
own: `show(maps, images=x)` draws each image above its map. This module imports nothing of
netscope but the error type and the PNG writer, so every module can use it.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import sys
import tempfile
import webbrowser
from collections.abc import Callable
from pathlib import Path

from netscope.errors import NetscopeError
from netscope.png import pyplot, save_png

Drawing = Callable[..., Path]  # draw(result, path, **options) -> path of the PNG written
_FIGURES: dict[type, Drawing] = {}
_TABLES: dict[type, Callable[[object], str]] = {}


def figure_of(cls: type) -> Callable[[Drawing], Drawing]:
    """Returns a decorator that makes `draw(result, path, **options)` the figure of `cls`."""

    def register(draw: Drawing) -> Drawing:
        _FIGURES[cls] = draw
        return draw

    return register


def table_of(cls: type) -> Callable[[Callable], Callable]:
    """Returns a decorator that makes `html(result) -> str` what Jupyter shows for `cls`."""

    def register(table: Callable[[object], str]) -> Callable[[object], str]:
        _TABLES[cls] = table
        return table

    return register


def _registered(registry: dict, value: object):
    return next((registry[c] for c in type(value).__mro__ if c in registry), None)


class Shows:
    """Mixin: Jupyter displays the result as its registered table, else as its figure."""

    def _repr_png_(self) -> bytes | None:
        draw = _registered(_FIGURES, self)
        try:
            return png_bytes(lambda path: draw(self, path)) if draw else None
        except NetscopeError:  # nothing to draw yet (a run before its first epoch): text only
            return None

    def _repr_html_(self) -> str | None:
        table = _registered(_TABLES, self)
        return table(self) if table else None


def png_bytes(draw: Callable[[Path], Path]) -> bytes:
    """Returns the bytes of the PNG that `draw(path)` writes (into a folder removed after)."""
    with tempfile.TemporaryDirectory(prefix="netscope-show-") as folder:
        return Path(draw(Path(folder) / "figure.png")).read_bytes()


def join_pngs(paths: list[Path], path: Path, across: bool = True, margin: int = 12) -> Path:
    """Returns `path` after writing the PNGs side by side (`across`) or one under the other, each
    trimmed to its content plus `margin` pixels of white, top- or left-aligned."""
    from PIL import Image, ImageChops

    pictures = []
    for file in paths:
        picture = Image.open(file).convert("RGBA")  # transparent parts become white below
        white = Image.new("RGBA", picture.size, "white")
        picture = Image.alpha_composite(white, picture).convert("RGB")
        box = ImageChops.difference(picture, white.convert("RGB")).getbbox()
        if box:
            left, top, right, bottom = box
            width, height = picture.size
            picture = picture.crop(
                (max(0, left - margin), max(0, top - margin),
                 min(width, right + margin), min(height, bottom + margin))
            )  # fmt: skip
        pictures.append(picture)
    sizes = [p.size for p in pictures]
    width = sum(w for w, _ in sizes) if across else max(w for w, _ in sizes)
    height = max(h for _, h in sizes) if across else sum(h for _, h in sizes)
    canvas = Image.new("RGB", (width, height), "white")
    offset = 0
    for picture in pictures:
        canvas.paste(picture, (offset, 0) if across else (0, offset))
        offset += picture.size[0] if across else picture.size[1]
    canvas.save(path)
    return Path(path)


def class_names(classes: list[str] | None, *indices) -> list[str]:
    """Returns `classes`, or "0", "1", … up to the largest class index in the given tensors."""
    if classes is not None:
        return list(classes)
    largest = max((int(i.max()) for i in indices if i is not None and i.numel()), default=0)
    return [str(k) for k in range(largest + 1)]


# ---------------------------------------------------------------- HTML for Jupyter


def image_tag(png: bytes, alt: str = "", width: str = "100%") -> str:
    """Returns an <img> that holds the PNG itself (a notebook keeps it without the file)."""
    data = base64.b64encode(png).decode("ascii")
    style = f"max-width: {width}"
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="{style}">'


def html_table(title: str, rows: list[tuple[str, object]]) -> str:
    """Returns a compact two-column HTML table under a bold title (every text escaped)."""
    cells = "".join(
        f"<tr><th style='text-align: left'>{html.escape(str(k))}</th>"
        f"<td style='text-align: left'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<b>{html.escape(title)}</b><table>{cells}</table>"


# ---------------------------------------------------------------- netscope.show


def in_notebook() -> bool:
    """Returns True inside a Jupyter kernel (where a figure can be shown inline)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def show(x, path: str | Path | None = None, *, open: bool = False, **options) -> Path | None:
    """Returns where the figure of `x` was written as a PNG (`path`, else a new temporary file
    whose path is printed), or None when it was shown inline in Jupyter instead.

    `x`: any netscope result (attack, fooling images, top patches, class models, morph,
    comparison, lesson, run, evaluation), a PNG file, a matplotlib figure, images (N×C×H×W or
    C×H×W in [0, 1]), or per-pixel maps (N×H×W or N×C×H×W) with `images=` to draw them under.
    `options` go to the drawing: `classes=` (and `sources=` for a morph, `names=` for a
    comparison) for results; `titles=`, `label=`, `limits=`, `columns=` for tensors.
    `open=True` also opens the file in the system's viewer.
    """
    png = png_bytes(lambda target: draw(x, target, **options))
    if path is None and not open and in_notebook():
        from IPython.display import Image
        from IPython.display import display as ipython_display

        ipython_display(Image(data=png, format="png"))
        return None
    if path is None:
        handle, path = tempfile.mkstemp(prefix=f"netscope-{type(x).__name__}-", suffix=".png")
        os.close(handle)
        print(f"netscope: figure written to {path}", file=sys.stderr)
    target = Path(path)
    target.write_bytes(png)
    if open:
        webbrowser.open(target.resolve().as_uri())
    return target


def draw(x, path: Path, **options) -> Path:
    """Returns `path` after writing the figure of `x` there (see `show`)."""
    drawing = _registered(_FIGURES, x)
    if drawing is not None:
        return drawing(x, path, **options)
    if isinstance(x, (str, Path)) and Path(x).suffix.lower() == ".png":  # a figure on disk
        return Path(shutil.copyfile(x, path))
    if type(x).__name__ == "Figure" and hasattr(x, "savefig"):
        return save_png(x, path, tight=False, dpi=100, bbox_inches="tight", facecolor="white")
    import torch

    if isinstance(x, torch.Tensor):
        return draw_tensor(x, path, **options)
    raise NetscopeError(
        f"show: cannot draw a {type(x).__name__} (expected a netscope result, a matplotlib "
        "figure, images N×C×H×W, or maps with images=…)"
    )


def draw_tensor(
    x,
    path: Path,
    *,
    images=None,
    titles: list[str] | None = None,
    label: str = "map value",
    limits: tuple[float, float] | None = None,
    columns: int = 8,
) -> Path:
    """Returns `path` after drawing images in [0, 1] in a grid, or (with `images`) each image
    above its map on one colour scale (`limits`, default: the maps' range, diverging around 0
    when they have both signs; e.g. (0, 1) for occlusion's probabilities)."""
    x = x.detach().float().cpu()
    if images is None:
        pictures = _as_images(x, "show(images)")
        return _save(_image_grid(pictures, titles, columns), path)
    pictures = _as_images(images.detach().float().cpu(), "show(maps, images=…)")
    maps = x.sum(1) if x.ndim == 4 else x  # several channels (integrated gradients): their sum
    if maps.ndim != 3 or len(maps) != len(pictures) or maps.shape[1:] != pictures.shape[2:]:
        raise NetscopeError(
            f"show: maps of shape {tuple(x.shape)} do not fit images of shape "
            f"{tuple(pictures.shape)} (expected N×H×W or N×C×H×W maps, one per image)"
        )
    return _save(_maps_figure(pictures, maps, titles, label, limits), path)


def _as_images(x, what: str):
    if x.ndim == 3:
        x = x[None] if x.shape[0] in (1, 3) else x[:, None]  # one C×H×W image, or N×H×W
    if x.ndim != 4 or x.shape[1] not in (1, 3) or not len(x):
        raise NetscopeError(
            f"{what}: expected images N×C×H×W with C = 1 or 3, got {tuple(x.shape)}"
        )
    return x


def _picture(image):
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).clamp(0, 1).numpy()


def _axes(rows: int, cols: int, width: float, height: float):
    fig, axes = pyplot().subplots(rows, cols, figsize=(width, height), squeeze=False, dpi=100)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _image_grid(pictures, titles, columns: int):
    n = len(pictures)
    cols = min(columns, n)
    rows = -(-n // cols)
    side = 1.8 if pictures.shape[-1] <= 32 else 3.2  # inches: larger images get larger cells
    fig, axes = _axes(rows, cols, side * cols, (side + 0.1) * rows + 0.2)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(_picture(pictures[k]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if titles:
            ax.set_title(titles[k], fontsize=11)
    return fig


def _maps_figure(pictures, maps, titles, label: str, limits):
    n = len(pictures)
    fig, axes = _axes(2, n, 2.0 * n + 1.4, 4.6)
    low, high = limits or (float(maps.min()), float(maps.max()))
    limit = max(abs(low), abs(high)) or 1.0
    if low < 0 < high:  # both signs: white is zero
        scale = dict(cmap="RdBu_r", vmin=-limit, vmax=limit)
    else:
        scale = dict(cmap="magma", vmin=low, vmax=high)
    for k in range(n):
        axes[0, k].imshow(_picture(pictures[k]), cmap="gray", vmin=0, vmax=1)
        heat = axes[1, k].imshow(maps[k].numpy(), interpolation="nearest", **scale)
        if titles:
            axes[0, k].set_title(titles[k], fontsize=11)
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel(label)
    fig.colorbar(heat, ax=axes[1, :].tolist(), fraction=0.04, pad=0.02, label=label)
    return fig


def _save(fig, path: Path) -> Path:
    return save_png(fig, path, tight=False, bbox_inches="tight", facecolor="white")
