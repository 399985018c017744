"""Lesson rnn: an LSTM (Hochreiter & Schmidhuber 1997) reads an MNIST image row by row — 28 time
steps of 28 pixels — and classifies it from its last hidden state.

The same read-out applied to the hidden state after each row shows what the network believes
after reading only the top rows; for a convolutional network the comparable question is answered
by blanking the rows not yet read (`probabilities_by_rows`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from netscope.errors import NetscopeError
from netscope.evaluate import error_pct, predict
from netscope.lessons import Figure, LessonResult, make_folder
from netscope.png import pyplot, save_png
from netscope.progress import progress_bar
from netscope.threads import one_cpu_thread


@dataclass
class RnnConfig:
    """How to train the row-by-row LSTM; `run(..., full=True)` trains 4× longer.

    Measured on full MNIST, seed 0 (test error; CPU time per step, 1 thread): 64 units, batch
    64, lr 3e-3: 1 epoch 2.68 %, 1.5 epochs 2.10 % (6.7 ms); 128 units, batch 128, lr 4e-3,
    1.5 epochs: 1.69 % (about 15 s in all) — the default, for its margin below 3 %."""

    hidden: int = 128
    epochs: float = 1.5  # may be fractional: the schedule ends after epochs × (N / batch) steps
    batch_size: int = 128
    lr: float = 4e-3  # Adam, peak of a 10 % linear warm-up followed by a cosine decay to 0
    clip: float = 1.0  # gradient norm clipping (recurrent nets occasionally blow up)
    train_limit: int = 0  # use only the first N training images (0 = all)
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("hidden", self.hidden >= 1, "an integer >= 1"),
            ("epochs", self.epochs > 0, "a number > 0"),
            ("batch-size", self.batch_size >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "a number > 0"),
            ("clip", self.clip > 0, "a number > 0"),
            ("train-limit", self.train_limit >= 0, "an integer >= 0 (0 = all)"),
        ]
        for flag, ok, expected in checks:
            if not ok:
                raise NetscopeError(
                    f"--{flag} {getattr(self, flag.replace('-', '_'))}: expected {expected}"
                )


class RowLSTM(nn.Module):
    """Classifies images (pixels in [0, 1], N×C×H×W) by reading them as H steps of C·W pixels
    with an LSTM and applying a linear read-out to the last hidden state."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        hidden: int = 128,
        num_classes: int = 10,
        mean: float = 0.1307,
        std: float = 0.3081,
    ):
        super().__init__()
        channels, _, width = image_shape
        self.mean, self.std = mean, std
        self.lstm = nn.LSTM(channels * width, hidden, batch_first=True)
        self.read_out = nn.Linear(hidden, num_classes)
        with torch.no_grad():  # forget-gate bias 1: remember by default (Jozefowicz et al. 2015)
            self.lstm.bias_hh_l0[hidden : 2 * hidden].fill_(1.0)

    def rows(self, pixels: torch.Tensor) -> torch.Tensor:
        """Returns the input sequence N×H×(C·W), normalised: row h is time step h."""
        n, c, h, w = pixels.shape
        return ((pixels - self.mean) / self.std).permute(0, 2, 1, 3).reshape(n, h, c * w)

    def logits_per_row(self, pixels: torch.Tensor) -> torch.Tensor:
        """Returns N×H×classes logits: the read-out after each row read."""
        hidden, _ = self.lstm(self.rows(pixels))
        return self.read_out(hidden)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.rows(pixels))
        return self.read_out(hidden[:, -1])


def lr_at(config: RnnConfig, step: int, total: int) -> float:
    """Returns the learning rate of `step`: linear warm-up over 10 % of steps, then cosine to 0."""
    warm = max(1, total // 10)
    if step < warm:
        return config.lr * (step + 1) / warm
    return config.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train_classifier(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: RnnConfig
) -> list[float]:
    """Trains `model` (pixels in [0, 1] → logits) in place with Adam and the warm-up/cosine
    schedule on `images`/`labels` (same device); returns the loss of every step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    per_epoch = math.ceil(len(images) / config.batch_size)
    total = max(1, round(config.epochs * per_epoch))
    shuffle = torch.Generator().manual_seed(config.seed)
    losses: list[torch.Tensor] = []
    model.train()
    bar = progress_bar(
        range(total), desc="lstm", disable=not config.progress, file=sys.stderr, mininterval=0.5
    )
    for step in bar:
        if step % per_epoch == 0:
            order = torch.randperm(len(images), generator=shuffle).to(images.device)
        batch = order[(step % per_epoch) * config.batch_size :][: config.batch_size]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(config, step, total)
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        losses.append(loss.detach())
        if step % 100 == 99:
            running = torch.stack(losses[-100:]).mean().item()
            if not math.isfinite(running):
                raise NetscopeError(f"LSTM training diverged at step {step + 1} (loss {running})")
            bar.set_postfix(loss=f"{running:.3f}")
    return torch.stack(losses).tolist()


@torch.no_grad()
def probabilities_by_rows(
    model: nn.Module, images: torch.Tensor, batch_size: int = 1000
) -> torch.Tensor:
    """Returns N×H×classes probabilities after reading rows 1…H of each image (pixels in [0, 1]).

    Models with `logits_per_row` (RowLSTM) answer from their hidden state after each row; any
    other classifier sees the image with the rows not yet read set to 0 (background)."""
    model.eval()
    if len(images) > batch_size:
        chunks = images.split(batch_size)
        return torch.cat([probabilities_by_rows(model, chunk, batch_size) for chunk in chunks])
    if hasattr(model, "logits_per_row"):
        return F.softmax(model.logits_per_row(images), dim=-1)
    rows = torch.arange(images.shape[2], device=images.device)
    steps = []
    for h in range(len(rows)):
        visible = (rows <= h).to(images.dtype).view(1, 1, -1, 1)
        steps.append(F.softmax(model(images * visible), dim=-1))
    return torch.stack(steps, dim=1)


@dataclass
class Reading:
    """What a classifier answers for one image after reading every row."""

    true: str
    read_as: str
    probability: float

    @property
    def wrong(self) -> bool:
        return self.read_as != self.true

    @property
    def percent(self) -> str:
        return f"{100 * self.probability:.0f} %"

    def describe(self) -> str:
        """Returns e.g. "true 5 → read as 6 (67 %, wrong)"."""
        verdict = ", wrong" if self.wrong else ""
        return f"true {self.true} → read as {self.read_as} ({self.percent}{verdict})"


def final_readings(probs: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> list[Reading]:
    """Returns, per image, the class with the highest probability after the last row (N×H×K
    `probs`) beside the true class."""
    confidence, answer = probs[:, -1].max(dim=1)
    return [
        Reading(classes[t], classes[k], p)
        for t, k, p in zip(labels.tolist(), answer.tolist(), confidence.tolist())
    ]


# ---------------------------------------------------------------- figures


def save_rows_read(
    images: torch.Tensor,
    probs: torch.Tensor,
    labels: torch.Tensor,
    classes: list[str],
    path: Path,
    title: str,
) -> Path:
    """Writes `draw_rows_read`'s figure to `path`."""
    return save_png(draw_rows_read(images, probs, labels, classes, title), path)


def draw_rows_read(
    images: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor, classes: list[str], title: str
):
    """Returns, per digit, the image (titled with its true class and what the model reads after
    the last row, in red when wrong) beside its class probabilities as a function of rows read
    (two digits per row of panels)."""
    plt = pyplot()

    n, height = len(images), probs.shape[1]
    panel_rows = math.ceil(n / 2)
    fig, axes = plt.subplots(
        panel_rows, 4, figsize=(15, 3.4 * panel_rows + 0.8), dpi=100, squeeze=False,
        gridspec_kw={"width_ratios": [1, 2.6, 1, 2.6]},
    )  # fmt: skip
    colors = plt.get_cmap("tab10")
    rows = torch.arange(1, height + 1).numpy()
    for i, reading in enumerate(final_readings(probs, labels, classes)):
        picture, curves = axes[i // 2, 2 * (i % 2)], axes[i // 2, 2 * (i % 2) + 1]
        picture.imshow(images[i, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        picture.set_title(
            f"true class: {reading.true}\nread as {reading.read_as} ({reading.percent})"
            + (" ✗" if reading.wrong else ""), fontsize=13,
            color="#cc0000" if reading.wrong else "black",
        )  # fmt: skip
        picture.axis("off")
        shown = probs[i].max(dim=0).values >= 0.1  # classes that ever reach 10 %
        for k in torch.nonzero(shown).flatten().tolist():
            curves.plot(
                rows, probs[i, :, k].cpu().numpy(), color=colors(k % 10),
                lw=3.5 if k == labels[i] else 1.8, label=classes[k],
            )  # fmt: skip
        curves.set_ylim(-0.02, 1.02)
        curves.set_xlim(1, height)
        curves.set_xlabel("rows read (top to bottom)", fontsize=12)
        curves.set_ylabel("probability", fontsize=12)
        curves.legend(loc="upper left", fontsize=11, title="class", title_fontsize=11)
        curves.grid(alpha=0.3)
    for ax in axes.flatten()[2 * n :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=16)
    return fig


def save_rows_to_decide(
    probs: torch.Tensor, labels: torch.Tensor, classes: list[str], path: Path
) -> Path:
    """Writes the mean probability of the true class after each row, per class (test set)."""
    plt = pyplot()

    true_prob = probs.gather(2, labels.view(-1, 1, 1).expand(-1, probs.shape[1], 1)).squeeze(2)
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
    colors = plt.get_cmap("tab10")
    rows = torch.arange(1, probs.shape[1] + 1).numpy()
    for k, name in enumerate(classes):
        mean = true_prob[labels == k].mean(0).cpu().numpy()
        ax.plot(rows, mean, color=colors(k % 10), lw=2, label=name)
    ax.set(xlabel="rows read (top to bottom)", ylabel="mean probability of the true class")
    ax.set_title("When does the LSTM know the digit? (test set, per class)", fontsize=14)
    ax.set_ylim(0, 1.02)
    ax.legend(title="true class", ncol=2, fontsize=11)
    ax.grid(alpha=0.3)
    ax.xaxis.label.set_size(13)
    ax.yaxis.label.set_size(13)
    return save_png(fig, path)


# ---------------------------------------------------------------- the lesson


def _cnn_error(cnn_run, images: torch.Tensor, labels: torch.Tensor) -> tuple[float | None, str]:
    if cnn_run is None:
        return None, "no run given (the lecture recipe reaches about 1 %: `netscope train`)"
    from netscope.run import Run, load_run

    run = cnn_run if isinstance(cnn_run, Run) else load_run(cnn_run)
    model = run.pixel_model().to(images.device)
    return error_pct(predict(model, images), labels), f"{run.info['model']['name']} in {run.path}"


def run(
    out: Path,
    full: bool = False,
    seed: int = 0,
    epochs: float | None = None,
    cnn_run=None,
    config: RnnConfig | None = None,
    progress: bool = True,
) -> LessonResult:
    """Returns the lesson's result after training the row-by-row LSTM on MNIST.

    `cnn_run`: a run directory (or Run) of a CNN whose test error is reported beside the LSTM's."""
    import time

    from netscope.data import load_dataset
    from netscope.device import resolve_device

    config = config or RnnConfig(seed=seed)
    epochs = epochs or config.epochs * (4 if full else 1)
    config = replace(config, epochs=epochs, progress=config.progress and progress)
    out = make_folder(out)
    device = resolve_device(config.device)
    dataset = load_dataset("mnist")
    limit = config.train_limit or len(dataset.train_images)
    train_x = (dataset.train_images[:limit].float() / 255).to(device)
    test_x = (dataset.test_images.float() / 255).to(device)
    test_y = dataset.test_labels.to(device)
    torch.manual_seed(config.seed)
    model = RowLSTM(dataset.image_shape, config.hidden, len(dataset.classes)).to(device)
    start = time.perf_counter()
    # one thread: faster for these small steps, and the same numbers on any machine (a second
    # thread sums in another order: 1.64 % instead of 1.69 % after the same steps)
    with one_cpu_thread(device.type == "cpu"):
        losses = train_classifier(model, train_x, dataset.train_labels[:limit].to(device), config)
        seconds = time.perf_counter() - start
        lstm_error = error_pct(predict(model, test_x), test_y)
    cnn_error, cnn_name = _cnn_error(cnn_run, test_x, test_y)
    picks = torch.tensor([0, 7, 8, 18])  # the first 7, 9, 5 and 3 of the test set
    probs = probabilities_by_rows(model, test_x)
    readings = final_readings(probs[picks], test_y[picks], dataset.classes)
    misread = [r.describe() for r in readings if r.wrong]
    figures = [
        Figure(
            save_rows_read(
                test_x[picks],
                probs[picks],
                test_y[picks],
                dataset.classes,
                out / "rnn_rows_read.png",
                f"What the LSTM believes after each row (test error {lstm_error:.2f} %): "
                f"{len(readings) - len(misread)} of {len(readings)} read correctly",
            ),
            "Class probabilities as the LSTM reads the rows",
            "The true class (thick line) wins only once the rows that tell digits apart are "
            "read" + (f"; misread here: {'; '.join(misread)}." if misread else "."),
        ),
        Figure(
            save_rows_to_decide(probs, test_y, dataset.classes, out / "rnn_rows_to_decide.png"),
            "Rows needed to recognise each digit",
            "Some digits are recognised from their top half; others need nearly every row.",
        ),
    ]
    numbers = {
        "config": asdict(config),
        "lstm_test_error_pct": lstm_error,
        "cnn_test_error_pct": cnn_error,
        "cnn": cnn_name,
        "train_seconds": seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_train_loss": sum(losses[-100:]) / len(losses[-100:]),
        "examples": [{"test_index": i, **asdict(r)} for i, r in zip(picks.tolist(), readings)],
    }
    summary = [
        f"LSTM ({config.hidden} hidden units, {numbers['parameters']:,} parameters) reading 28 rows "
        f"of 28 pixels, trained {config.epochs:g} epoch(s) in {seconds:.0f} s",
        f"test error: LSTM {lstm_error:.2f} %   CNN "
        + (f"{cnn_error:.2f} % ({cnn_name})" if cnn_error is not None else cnn_name),
        f"after the last row (test images {', '.join(map(str, picks.tolist()))}): "
        + "; ".join(r.describe() for r in readings),
    ]
    return LessonResult("rnn", summary, numbers, figures)
