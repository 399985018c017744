"""LeNet-5 and the CIFAR-10-sized AlexNet, VGG and ResNet: size, cost, and a short training run.

The table counts trainable parameters and multiply-adds per image (`netscope.models.flops`) for
CIFAR-10's 3×32×32 input. No CIFAR-10 copy ships with netscope, so unless one is found offline
(`netscope data fetch cifar10`, `NETSCOPE_DATA`) the short training run uses MNIST padded to
32×32 (one channel), enough to show each network's loss going down on real images.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure as Canvas
from torch import nn

from netscope.data import Dataset, load_dataset
from netscope.device import resolve_device
from netscope.errors import NetscopeError
from netscope.evaluate import error_pct, predict
from netscope.lessons import Figure, LessonResult, make_folder
from netscope.models import build_model, flops
from netscope.progress import progress_bar
from netscope.threads import one_cpu_thread

FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}
ARCHITECTURES = {
    "lenet5": "LeNet-5 (LeCun et al. 1998)",
    "alexnet_cifar": "AlexNet-style (Krizhevsky et al. 2012)",
    "vgg11_cifar": "VGG-11-style (Simonyan & Zisserman 2015)",
    "resnet20_cifar": "ResNet-20 (He et al. 2016)",
}

# steps of the short run, fewer for the costlier networks (≈ 15 s each on 2 CPU cores)
SHORT_STEPS = {"lenet5": 300, "alexnet_cifar": 150, "vgg11_cifar": 60, "resnet20_cifar": 100}


@dataclass
class Row:
    """One line of the size table."""

    name: str
    description: str
    parameters: int
    multiply_adds: int


def size_table(input_shape: tuple[int, int, int] = (3, 32, 32)) -> list[Row]:
    """Returns parameters and multiply-adds per image of each architecture for `input_shape`."""
    rows = []
    for name, description in ARCHITECTURES.items():
        model = build_model(name, input_shape[0], 10, input_shape[1])
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append(Row(name, description, params, flops(model, input_shape)))
    return rows


def format_table(rows: list[Row]) -> list[str]:
    """Returns the table as fixed-width text lines."""
    lines = [f"{'model':<16}{'parameters':>13}{'multiply-adds':>16}  description"]
    for row in rows:
        lines.append(
            f"{row.name:<16}{row.parameters:>13,}{row.multiply_adds:>16,}  {row.description}"
        )
    return lines


def padded(dataset: Dataset, images: torch.Tensor, side: int = 32) -> torch.Tensor:
    """Returns uint8 `images` normalised and padded to `side`×`side` by repeating the border
    (the background, for MNIST)."""
    margin = side - images.shape[-1]
    if margin < 0:
        raise NetscopeError(f"{dataset.name}: images larger than {side}×{side}")
    padding = (margin // 2, margin - margin // 2) * 2
    return F.pad(dataset.normalize(images), padding, mode="replicate")


@dataclass
class Training:
    """The loss of every step and the final test error of one architecture."""

    name: str
    losses: list[float]
    test_error_pct: float
    seconds: float


def train_briefly(
    name: str,
    dataset: Dataset,
    steps: int,
    batch_size: int = 32,
    test_images: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> Training:
    """Returns the training record of `name` after `steps` Adam steps (lr 10⁻³, shuffled
    batches) on the data set padded to 32×32."""
    device = resolve_device("auto")
    torch.manual_seed(seed)
    model = build_model(name, dataset.image_shape[0], len(dataset.classes), 32).to(device)
    generator, n = torch.Generator().manual_seed(seed), len(dataset.train_images)
    epochs = -(-steps * batch_size // n)
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs)])
    # batch-32 steps of these small convolutions are latency-bound: measured on the 2-core CPU,
    # ResNet-20 took 3.6 s/step with two threads and 0.14 s with one
    with one_cpu_thread(device.type == "cpu"):
        start = time.perf_counter()
        losses = fit(model, dataset, order[: steps * batch_size], batch_size, progress, name)
        seconds = time.perf_counter() - start
        sample = dataset.train_images[order[:1000]].to(device)
        recalibrate_batch_norm(model, padded(dataset, sample))
        test_labels = dataset.test_labels[:test_images].to(device)
        test_x = padded(dataset, dataset.test_images[:test_images].to(device))
        error = error_pct(predict(model, test_x, 250), test_labels)
    return Training(name, losses, error, seconds)


def fit(
    model: nn.Module,
    dataset: Dataset,
    order: torch.Tensor,
    batch_size: int,
    progress: bool = True,
    desc: str = "",
) -> list[float]:
    """Returns the loss of each Adam step (lr 10⁻³) taken on the training images `order` lists,
    `batch_size` at a time. Adam: one setting that moves all four networks in a few steps (SGD
    at one learning rate diverged on LeNet-5's RBF logits or left AlexNet stalled)."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    model.train()
    batches = order.split(batch_size)
    for index in progress_bar(
        batches, desc=desc, disable=not progress, file=sys.stderr, leave=False
    ):
        inputs = padded(dataset, dataset.train_images[index].to(device))
        loss = F.cross_entropy(model(inputs), dataset.train_labels[index].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, inputs: torch.Tensor, batch_size: int = 100) -> None:
    """Replaces each batch-norm layer's running mean/variance by their average over `inputs` for
    the final weights. After a few hundred fast-moving steps the exponential running averages
    still describe earlier weights (measured: ResNet-20 at 50 % test error in eval mode vs 12 %
    with batch statistics); this is "precise BN" (Wu & Johnson 2021)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    model.train()
    for batch in inputs.split(batch_size):
        model(batch)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()


def smooth(values: list[float], window: int = 20) -> torch.Tensor:
    """Returns the running mean over the last `window` values (shorter at the start)."""
    series = torch.tensor(values)
    cumulative = torch.cat([torch.zeros(1), series.cumsum(0)])
    ends = torch.arange(1, len(series) + 1)
    starts = (ends - window).clamp(min=0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def save_loss_curves(runs: list[Training], data_name: str, path: Path) -> Path:
    """Writes each architecture's training loss (running mean of 20 steps) against the step."""
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(9, 6), layout="constrained")
        ax = fig.subplots()
        for run in runs:
            label = f"{run.name} (test error {run.test_error_pct:.1f} %)"
            ax.plot(range(1, len(run.losses) + 1), smooth(run.losses).numpy(), lw=2, label=label)
        ax.axhline(2.3026, color="grey", ls=":", label="chance: ln 10")
        ax.set_yscale("log")
        ax.set_xlabel("Adam step (batch 32)")
        ax.set_ylabel("training loss (cross-entropy, mean of 20 steps)")
        ax.set_title(f"Short training on {data_name}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.savefig(path, dpi=100)
    return path


def save_size_chart(rows: list[Row], path: Path) -> Path:
    """Writes parameters against multiply-adds per image (log-log), one labelled point each."""
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(9, 6), layout="constrained")
        ax = fig.subplots()
        for row in rows:
            ax.scatter(row.multiply_adds, row.parameters, s=120, zorder=3)
            ax.annotate(row.description, (row.multiply_adds, row.parameters),
                        textcoords="offset points", xytext=(8, 6), fontsize=11)  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(right=max(r.multiply_adds for r in rows) * 30)
        ax.set_xlabel("multiply-adds per 3×32×32 image")
        ax.set_ylabel("trainable parameters")
        ax.set_title("Size and cost of the classic architectures at CIFAR-10 size")
        ax.grid(True, which="both", alpha=0.3)
        fig.savefig(path, dpi=100)
    return path


def find_data() -> Dataset:
    """Returns CIFAR-10 when a copy is found offline, else the bundled MNIST."""
    try:
        return load_dataset("cifar10", download=False)
    except NetscopeError:
        return load_dataset("mnist")


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its two figures into `out`."""
    out = make_folder(out)
    with one_cpu_thread():
        rows = size_table()
    dataset = find_data()
    data_name = "CIFAR-10" if dataset.name == "cifar10" else "MNIST padded to 32×32"
    epoch_steps = len(dataset.train_images) // 32
    runs = []
    for name in ARCHITECTURES:
        steps = 10 * epoch_steps if full else SHORT_STEPS[name]
        runs.append(train_briefly(name, dataset, steps, seed=seed, progress=progress))
    summary = ["parameters and multiply-adds per 3×32×32 image (CIFAR-10 size):"]
    summary += format_table(rows)
    summary.append(f"training on {data_name}, batch 32, Adam lr 1e-3:")
    summary += [
        f"{r.name:<16}{len(r.losses):>6} steps: loss {sum(r.losses[:10]) / 10:.3f} → "
        f"{sum(r.losses[-10:]) / 10:.3f} (first/last 10 steps), test error "
        f"{r.test_error_pct:.1f} % on 1,000 images, {r.seconds:.0f} s"
        for r in runs
    ]
    figures = [
        Figure(
            save_size_chart(rows, out / "architectures_size.png"),
            "Parameters and FLOPs",
            "VGG has the most parameters and multiply-adds; ResNet-20 gets its depth with few "
            "parameters.",
        ),
        Figure(
            save_loss_curves(runs, data_name, out / "architectures_loss.png"),
            "Short training runs",
            "Every network's loss falls well below chance (ln 10) within its few steps.",
        ),
    ]
    numbers = {
        "table": [vars(r) for r in rows],
        "data": data_name,
        "training": [
            {
                "name": r.name,
                "steps": len(r.losses),
                "first_loss": r.losses[0],
                "final_loss_mean10": sum(r.losses[-10:]) / 10,
                "test_error_pct": r.test_error_pct,
                "seconds": r.seconds,
            }  # fmt: skip
            for r in runs
        ],
    }
    return LessonResult("architectures", summary, numbers, figures)
