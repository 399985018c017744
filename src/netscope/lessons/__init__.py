"""The lecture's classic experiments as runnable lessons: `netscope lesson NAME [--out DIR]`.

Each lesson is a module here with a function `run(out: Path, full: bool = False, seed: int = 0,
progress: bool = True) -> LessonResult` that prints nothing itself but its progress bar (none
with `progress=False`), creates `out` and writes its PNG figures there, and returns what it
found. `LESSONS` maps a lesson's name to its module and a one-line description; modules are
imported only when their lesson runs.
"""

from __future__ import annotations

import html
import importlib
from dataclasses import dataclass, field
from pathlib import Path

from netscope.display import Shows, figure_of, image_tag, join_pngs, table_of
from netscope.errors import NetscopeError
from netscope.record import Figure, as_figure, write_record

LESSONS: dict[str, tuple[str, str]] = {
    # name: (module under netscope.lessons, one-line description)
    "perceptron": ("perceptron", "Rosenblatt's rule separates separable data and never XOR"),
    "xor": ("xor", "the lecture's 2-2-1 net solves XOR; which g works; trained from random init"),
    "approximation": ("approximation", "one hidden layer of width 1…256 fits a 1-D function"),
    "convolution": ("convolution", "the slides' 6×6 * 3×3 example, max pool, 1×1 conv: by hand"),
    "loss": ("loss", "least squares vs cross-entropy for classifying MNIST, same budget"),
    "autoencoder": ("autoencoder", "MNIST autoencoder; pretrained vs scratch on 100/1000 labels"),
    "architectures": ("architectures", "LeNet-5, AlexNet/VGG/ResNet for 32×32: size, FLOPs"),
    "biology": ("biology", "accurate nets predict a trained net's deep layer; early→early layers"),
    "gan": ("gan", "a DCGAN learns to draw MNIST digits; a trained CNN judges the samples"),
    "rnn": ("rnn", "an LSTM reads MNIST row by row; what it believes after each row"),
    "scale": ("scale", "neurons vs synapses, transistors per chip: the lectures' facts, log scale"),
}


@dataclass
class LessonResult(Shows):
    """What a lesson found: a few lines for the terminal, its numbers and its figures."""

    name: str
    summary: list[str]
    numbers: dict = field(default_factory=dict)
    figures: list[Path | Figure] = field(default_factory=list)

    def __repr__(self) -> str:
        first = self.summary[0] if self.summary else ""
        first = first if len(first) <= 90 else first[:89] + "…"
        more = f" (+{len(self.summary) - 1} lines)" if len(self.summary) > 1 else ""
        figures = f"{len(self.figures)} figure{'s' if len(self.figures) != 1 else ''}"
        return f"LessonResult({self.name}: {first}{more}; {figures})"

    def figure_files(self) -> list[Figure]:
        """Returns the lesson's figures whose files exist (paths as the lesson wrote them)."""
        return [f for f in map(as_figure, self.figures) if Path(f.file).is_file()]

    def save(self, out: Path) -> Path:
        """Writes lesson.json (summary, numbers, figures with captions) into `out`; returns its path."""
        path = Path(out) / "lesson.json"
        record = {
            "name": self.name,
            "summary": self.summary,
            "numbers": self.numbers,
            "figures": [as_figure(f) for f in self.figures],
        }
        write_record(path, record)
        return path


@figure_of(LessonResult)
def lesson_figure(result: LessonResult, path: Path) -> Path:
    """Returns `path` after writing the lesson's figures there, one under the other."""
    files = [Path(f.file) for f in result.figure_files()]
    if not files:
        raise NetscopeError(f"lesson {result.name}: no figure to show")
    return join_pngs(files, path, across=False)


@table_of(LessonResult)
def lesson_html(result: LessonResult) -> str:
    """Returns the lesson's findings and its figures (title, picture, caption) as HTML."""
    parts = [f"<b>lesson {html.escape(result.name)}</b>"]
    parts.append("<pre>" + html.escape("\n".join(result.summary)) + "</pre>")
    for figure in result.figure_files():
        parts.append(f"<p><b>{html.escape(figure.title)}</b></p>")
        parts.append(image_tag(Path(figure.file).read_bytes(), figure.title))
        parts.append(f"<p><i>{html.escape(figure.caption)}</i></p>")
    return "\n".join(parts)


def make_folder(out: str | Path) -> Path:
    """Returns `out` as a Path, after creating it (and its parents) if it does not exist."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_lesson(
    name: str, out: str | Path, full: bool = False, seed: int = 0, progress: bool = True
) -> LessonResult:
    """Returns the result of lesson `name` after running it with its figures and lesson.json
    written to `out`."""
    if name not in LESSONS:
        raise NetscopeError(f"unknown lesson {name!r} (expected one of {sorted(LESSONS)})")
    module = importlib.import_module(f"netscope.lessons.{LESSONS[name][0]}")
    result = module.run(make_folder(out), full=full, seed=seed, progress=progress)
    result.save(out)
    return result
