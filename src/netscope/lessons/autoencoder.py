"""Autoencoders on MNIST and greedy layer-wise pretraining for learning from few labels.

An autoencoder maps x (784 pixels) to a code h of another size and back, trained to reconstruct
x. Stacked denoising autoencoders (Vincent et al. 2010) pretrain a deep encoder one layer at a
time on unlabelled images, each layer learning to undo masking noise on the codes of the layer
below; the encoder then starts a classifier that is fine-tuned on the few labelled images. The
lesson compares it with the same classifier trained from scratch on the same labels.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure as Canvas
from torch import nn

from netscope.data import Dataset, load_dataset
from netscope.device import resolve_device
from netscope.evaluate import error_pct, predict
from netscope.lessons import Figure, LessonResult, make_folder
from netscope.progress import progress_bar
from netscope.threads import one_cpu_thread

FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}


@dataclass
class Settings:
    """Sizes and budgets of the experiment."""

    sizes: tuple[int, ...] = (784, 256, 64)  # x, then each code h: dim(h) ≠ dim(x)
    unlabelled: int = 20_000  # training images used without labels for pretraining
    pretrain_epochs: int = 5
    noise: float = 0.3  # fraction of inputs zeroed (masking noise)
    label_counts: tuple[int, ...] = (100, 1000)
    finetune_steps: int = 300
    seeds: tuple[int, ...] = (0, 1, 2)
    test_images: int = 10_000


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Returns uint8 N×C×H×W images as float rows of pixels in [0, 1] (N×C·H·W)."""
    return images.flatten(1).float() / 255


def encoder_layers(sizes: tuple[int, ...]) -> list[nn.Sequential]:
    """Returns one Linear+ReLU block per code layer."""
    return [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(sizes[:-1], sizes[1:])]


def pretrain_layer(
    layer: nn.Sequential, inputs: torch.Tensor, settings: Settings, last_sigmoid: bool
) -> nn.Linear:
    """Trains `layer` as the encoder of a denoising autoencoder on `inputs` and returns its
    decoder (Adam, batch 100, masking noise). The first layer reconstructs pixels through a
    sigmoid with cross-entropy; deeper ones reconstruct non-negative codes with squared error."""
    encoder = layer[0]
    decoder = nn.Linear(encoder.out_features, encoder.in_features).to(inputs.device)
    optimizer = torch.optim.Adam([*layer.parameters(), *decoder.parameters()], lr=1e-3)
    for _ in range(settings.pretrain_epochs):
        for batch in inputs[torch.randperm(len(inputs), device=inputs.device)].split(100):
            kept = (torch.rand_like(batch) >= settings.noise).to(batch.dtype)
            output = decoder(layer(batch * kept))
            if last_sigmoid:
                loss = F.binary_cross_entropy_with_logits(output, batch)
            else:
                loss = F.mse_loss(F.relu(output), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return decoder


@dataclass
class StackedAutoencoder:
    """Encoder blocks and their decoders, pretrained greedily one layer at a time."""

    encoders: list[nn.Sequential]
    decoders: list[nn.Linear] = field(default_factory=list)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the top code h of pixel rows `x`."""
        for encoder in self.encoders:
            x = encoder(x)
        return x

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Returns x → h → x̂ through all encoders, then all decoders in reverse."""
        code = self.encode(x)
        for index, decoder in reversed(list(enumerate(self.decoders))):
            code = decoder(code)
            code = torch.sigmoid(code) if index == 0 else F.relu(code)
        return code


def pretrain(unlabelled: torch.Tensor, settings: Settings, seed: int = 0) -> StackedAutoencoder:
    """Returns a stacked denoising autoencoder pretrained greedily on `unlabelled` pixel rows."""
    torch.manual_seed(seed)
    stack = StackedAutoencoder(
        [layer.to(unlabelled.device) for layer in encoder_layers(settings.sizes)]
    )
    inputs = unlabelled
    for index, layer in enumerate(stack.encoders):
        stack.decoders.append(pretrain_layer(layer, inputs, settings, last_sigmoid=index == 0))
        with torch.no_grad():
            inputs = layer(inputs)
    return stack


def classifier(encoders: list[nn.Sequential], num_classes: int = 10) -> nn.Sequential:
    """Returns the encoder blocks followed by a linear read-out to class logits."""
    width = encoders[-1][0].out_features
    return nn.Sequential(*encoders, nn.Linear(width, num_classes))


def finetune(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, steps: int) -> nn.Module:
    """Trains all of `model` with Adam on the labelled rows (full batch) and returns it."""
    model = model.to(inputs.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@dataclass
class FewLabelResult:
    """Test error (%) with pretraining and from scratch, per label count, one entry per seed."""

    pretrained: dict[int, list[float]] = field(default_factory=dict)
    scratch: dict[int, list[float]] = field(default_factory=dict)

    def mean(self, which: str, labels: int) -> float:
        values = getattr(self, which)[labels]
        return sum(values) / len(values)


def labelled_subset(dataset: Dataset, count: int, seed: int) -> torch.Tensor:
    """Returns the indices of `count` training images, `count`/10 per class, picked at random
    (by `seed`) among all training images: labels are the scarce resource here, not images."""
    generator = torch.Generator().manual_seed(seed)
    per_class = count // len(dataset.classes)
    chosen = []
    for label in range(len(dataset.classes)):
        candidates = (dataset.train_labels == label).nonzero()[:, 0]
        order = torch.randperm(len(candidates), generator=generator)[:per_class]
        chosen.append(candidates[order])
    return torch.cat(chosen)


def few_label_experiment(
    dataset: Dataset, settings: Settings, device: torch.device, progress: bool = True
) -> tuple[FewLabelResult, StackedAutoencoder]:
    """Returns test errors of pretrained vs scratch classifiers for each label count and seed
    (and the stacked autoencoder of the first seed, for its reconstructions)."""
    unlabelled = pixels(dataset.train_images[: settings.unlabelled]).to(device)
    test_x = pixels(dataset.test_images[: settings.test_images]).to(device)
    test_y = dataset.test_labels[: settings.test_images].to(device)
    result, first = FewLabelResult(), None
    bar = progress_bar(
        settings.seeds, desc="seeds", disable=not progress, file=sys.stderr, leave=False
    )
    with one_cpu_thread():  # these layers are small: a second CPU thread only adds waiting
        for seed in bar:
            stack = pretrain(unlabelled, settings, seed)
            first = first or stack
            for count in settings.label_counts:
                index = labelled_subset(dataset, count, seed)
                x = pixels(dataset.train_images[index]).to(device)
                y = dataset.train_labels[index].to(device)
                pretrained_copy = classifier(copy.deepcopy(stack.encoders))
                torch.manual_seed(seed)
                scratch = classifier(encoder_layers(settings.sizes))
                for name, model in (("pretrained", pretrained_copy), ("scratch", scratch)):
                    trained = finetune(model, x, y, settings.finetune_steps)
                    error = error_pct(predict(trained, test_x), test_y)
                    getattr(result, name).setdefault(count, []).append(error)
    return result, first


def save_reconstructions(stack: StackedAutoencoder, images: torch.Tensor, path: Path) -> Path:
    """Writes a grid: originals on top, their reconstructions through the code h below."""
    originals = pixels(images)
    device = stack.encoders[0][0].weight.device
    reconstructions = stack.reconstruct(originals.to(device))
    side = images.shape[-1]
    count = len(images)
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(1.3 * count, 3.4), layout="constrained")
        axes = fig.subplots(2, count)
        for column in range(count):
            for row, source in enumerate((originals, reconstructions.cpu())):
                axes[row, column].imshow(
                    source[column].view(side, side).numpy(), cmap="gray", vmin=0, vmax=1
                )
                axes[row, column].set_xticks([])
                axes[row, column].set_yticks([])
        axes[0, 0].set_ylabel("input x")
        axes[1, 0].set_ylabel("x̂")
        sizes = "→".join(str(s) for s in [*stack_sizes(stack), *reversed(stack_sizes(stack)[:-1])])
        fig.suptitle(f"Stacked denoising autoencoder {sizes}: test digits and reconstructions")
        fig.savefig(path, dpi=100)
    return path


def stack_sizes(stack: StackedAutoencoder) -> list[int]:
    """Returns the widths x, h₁, h₂, … of a stack."""
    return [stack.encoders[0][0].in_features] + [e[0].out_features for e in stack.encoders]


def save_few_labels(result: FewLabelResult, settings: Settings, path: Path) -> Path:
    """Writes test error with and without pretraining per label count (bars: mean; dots: seeds)."""
    counts = list(settings.label_counts)
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(8.5, 5.8), layout="constrained")
        ax = fig.subplots()
        width = 0.38
        for offset, which, color, label in (
            (-width / 2, "scratch", "#999999", "from scratch"),
            (width / 2, "pretrained", "#0b5394", "pretrained (stacked DAE)"),
        ):
            positions = [i + offset for i in range(len(counts))]
            means = [result.mean(which, c) for c in counts]
            bars = ax.bar(positions, means, width, color=color, label=label)
            ax.bar_label(bars, fmt="%.1f %%", padding=3)
            for position, count in zip(positions, counts):
                values = getattr(result, which)[count]
                ax.scatter([position] * len(values), values, color="black", s=14, zorder=3)
        ax.set_xticks(range(len(counts)), [f"{c:,} labels" for c in counts])
        ax.set_ylabel(f"test error % ({settings.test_images:,} MNIST test images)")
        ax.set_title(
            f"Same classifier {'-'.join(map(str, settings.sizes))}-10; mean of "
            f"{len(settings.seeds)} seeds (dots)"
        )
        ax.legend()
        fig.suptitle("Few labels: unsupervised pretraining vs training from scratch")
        fig.savefig(path, dpi=100)
    return path


def verdict(result: FewLabelResult, settings: Settings) -> str:
    """Returns, per label count, whether pretraining lowered the mean test error, in words."""
    words = []
    for count in settings.label_counts:
        gain = result.mean("scratch", count) - result.mean("pretrained", count)
        effect = f"helps by {gain:.1f} points" if gain > 0 else f"costs {-gain:.1f} points"
        words.append(f"with {count:,} labels pretraining {effect}")
    return "; ".join(words)


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its two figures into `out`."""
    out = make_folder(out)
    settings = Settings(unlabelled=60_000, pretrain_epochs=20, seeds=tuple(range(seed, seed + 5)))
    if not full:
        settings = Settings(seeds=(seed, seed + 1, seed + 2))
    dataset = load_dataset("mnist")
    device = resolve_device("auto")
    result, stack = few_label_experiment(dataset, settings, device, progress)
    summary = [
        f"stacked denoising autoencoder {'-'.join(map(str, settings.sizes))}, pretrained on "
        f"{settings.unlabelled:,} unlabelled images; classifier fine-tuned on few labels"
    ]
    for count in settings.label_counts:
        summary.append(
            f"{count:>5} labels: pretrained {result.mean('pretrained', count):.2f} % vs scratch "
            f"{result.mean('scratch', count):.2f} % test error (mean of {len(settings.seeds)} seeds)"
        )
    figures = [
        Figure(
            save_reconstructions(
                stack, dataset.test_images[:12], out / "autoencoder_reconstructions.png"
            ),
            "Autoencoder reconstructions",
            "Each digit passes through a 64-number code and comes back recognisable.",
        ),
        Figure(
            save_few_labels(result, settings, out / "autoencoder_few_labels.png"),
            "Pretraining with few labels",
            "Compare each pair of bars (dots: single seeds): " + verdict(result, settings) + ".",
        ),
    ]
    numbers = {
        "pretrained_test_error_pct": {str(k): v for k, v in result.pretrained.items()},
        "scratch_test_error_pct": {str(k): v for k, v in result.scratch.items()},
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items()},
    }
    return LessonResult("autoencoder", summary, numbers, figures)
