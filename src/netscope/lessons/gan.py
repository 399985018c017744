"""Lesson gan: a DCGAN (Radford et al. 2015) learns to draw MNIST digits; a trained classifier
judges the drawings.

The architecture follows the paper's guidelines: no pooling (strided convolutions in the
discriminator, fractionally-strided ones in the generator), batch norm in both networks except the
generator's output and the discriminator's input, ReLU in the generator with a tanh output,
LeakyReLU(0.2) in the discriminator, and Adam with lr 2e-4 and β₁ 0.5.

Sample quality is measured with our own trained MNIST classifier as the judge (by default the
lecture CNN): the fraction of samples it classifies with ≥ 0.9 confidence, the entropy of the
histogram of its predicted classes (log2 10 = 3.32 bits when all ten digits are equally common),
and exp(E_x KL(p(y|x) ‖ p(y))) — an "inception-score-like" number (Salimans et al. 2016) computed
with this MNIST classifier instead of the Inception network, so it is only comparable between
runs judged by the same classifier. Real MNIST test images scored by the same judge give the
ceiling.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from netscope.errors import NetscopeError
from netscope.lessons import Figure, LessonResult, make_folder
from netscope.png import pyplot, save_png
from netscope.progress import progress_bar

CONFIDENT = 0.9  # a sample counts as a clear digit when the judge gives it this probability


@dataclass
class GanConfig:
    """How to train the DCGAN; `run(..., full=True)` multiplies the epochs by 5."""

    epochs: int = 2
    batch_size: int = 64
    latent: int = 64  # size of the noise vector z
    width: int = 32  # channels of the generator's last hidden layer (the discriminator's first)
    lr: float = 2e-4
    beta1: float = 0.5
    train_limit: int = 0  # use only the first N training images (0 = all)
    n_judge: int = 1000  # samples scored by the judge
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "latent", "width", "n_judge"):
            if getattr(self, name) < 1:
                raise NetscopeError(f"--{name.replace('_', '-')}: expected an integer >= 1")
        if not 0 <= self.beta1 < 1 or self.lr <= 0:
            raise NetscopeError("--lr must be > 0 and --beta1 in [0, 1)")
        if 0 < self.train_limit < self.batch_size:
            raise NetscopeError(
                f"--train-limit {self.train_limit}: expected 0 (all) or at least one batch "
                f"({self.batch_size} images)"
            )


class Generator(nn.Module):
    """Maps noise z (N×latent) to images in [0, 1] (N×C×28×28): a projection to 7×7 feature maps,
    then two fractionally-strided convolutions (7 → 14 → 28)."""

    def __init__(self, latent: int = 64, width: int = 32, channels: int = 1):
        super().__init__()
        self.latent = latent
        self.project = nn.Sequential(
            nn.Linear(latent, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )
        self.up1 = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.up2 = nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.up2(self.up1(self.project(z)))) + 1) / 2


class Discriminator(nn.Module):
    """Maps images in [0, 1] (N×C×28×28) to one logit each (real > 0): two strided convolutions
    (28 → 14 → 7), then a linear read-out of the flattened 7×7 maps."""

    def __init__(self, width: int = 32, channels: int = 1):
        super().__init__()
        self.down1 = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)
        )
        self.down2 = nn.Sequential(
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
        )
        self.read_out = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.read_out(self.down2(self.down1(pixels * 2 - 1))).squeeze(1)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv/linear weights from N(0, 0.02), batch-norm scales from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def make_gan(config: GanConfig, channels: int = 1) -> tuple[Generator, Discriminator]:
    """Returns a freshly initialised (generator, discriminator) pair, seeded by config.seed."""
    torch.manual_seed(config.seed)
    generator = Generator(config.latent, config.width, channels)
    discriminator = Discriminator(config.width, channels)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator


@dataclass
class GanHistory:
    """Per-step losses and the fixed-noise samples after each epoch (index 0: before training)."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)  # mean D(x) on real images
    d_fake: list[float] = field(default_factory=list)  # mean D(G(z)) on generated images
    snapshots: list[torch.Tensor] = field(default_factory=list)
    steps_per_epoch: int = 0


@torch.no_grad()
def sample(generator: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Returns the generator's images for noise `z` in eval mode (batch-norm running statistics)."""
    was_training = generator.training
    generator.eval()
    images = generator(z)
    generator.train(was_training)
    return images


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    real: torch.Tensor,
    latent: int,
) -> tuple[torch.Tensor, ...]:
    """Runs one discriminator and one generator update (non-saturating loss); returns
    (d_loss, g_loss, mean D(x), mean D(G(z))) as tensors."""
    opt_g, opt_d = optimizers
    ones = torch.ones(len(real), device=real.device)
    fake = generator(torch.randn(len(real), latent, device=real.device))
    real_logits, fake_logits = discriminator(real), discriminator(fake.detach())
    real_loss = F.binary_cross_entropy_with_logits(real_logits, ones)
    d_loss = real_loss + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(ones))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    # The generator is trained to make D call its images real: -log D(G(z)), not log(1 - D(G(z))),
    # whose gradient vanishes early when D easily rejects the samples (Goodfellow et al. 2014).
    g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return (
        d_loss.detach(),
        g_loss.detach(),
        torch.sigmoid(real_logits).mean().detach(),
        torch.sigmoid(fake_logits).mean().detach(),
    )


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    images: torch.Tensor,
    config: GanConfig,
    fixed_noise: torch.Tensor,
) -> GanHistory:
    """Returns the training history after `config.epochs` epochs of DCGAN training on `images`
    (pixels in [0, 1], N×C×H×W, on the training device); the networks are trained in place."""
    betas = (config.beta1, 0.999)
    optimizers = (
        torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas),
        torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=betas),
    )
    steps = len(images) // config.batch_size
    history = GanHistory(snapshots=[sample(generator, fixed_noise).cpu()], steps_per_epoch=steps)
    generator.train()
    discriminator.train()
    shuffle = torch.Generator().manual_seed(config.seed)
    for epoch in range(config.epochs):
        order = torch.randperm(len(images), generator=shuffle).to(images.device)
        records = []
        bar = progress_bar(
            range(steps),
            desc=f"gan epoch {epoch + 1}/{config.epochs}",
            disable=not config.progress,
            leave=False,
            file=sys.stderr,
            mininterval=0.5,
        )
        for step in bar:
            batch = images[order[step * config.batch_size : (step + 1) * config.batch_size]]
            records.append(gan_step(generator, discriminator, optimizers, batch, config.latent))
        d_loss, g_loss, d_real, d_fake = torch.stack([torch.stack(r) for r in records]).T.tolist()
        if not all(math.isfinite(v) for v in d_loss + g_loss):
            raise NetscopeError(f"GAN training diverged in epoch {epoch + 1} (loss is not finite)")
        history.d_loss += d_loss
        history.g_loss += g_loss
        history.d_real += d_real
        history.d_fake += d_fake
        history.snapshots.append(sample(generator, fixed_noise).cpu())
    return history


@torch.no_grad()
def interpolate(generator: nn.Module, z_start: torch.Tensor, z_end: torch.Tensor, steps: int = 10):
    """Returns the generator's images (steps×C×H×W) along the straight line from z_start to z_end."""
    weights = torch.linspace(0, 1, steps, device=z_start.device).view(-1, 1)
    return sample(generator, (1 - weights) * z_start.view(1, -1) + weights * z_end.view(1, -1))


@torch.no_grad()
def pick_endpoints(judge: nn.Module, images: torch.Tensor) -> tuple[int, int]:
    """Returns the indices of the first two images the judge calls different classes with
    confidence (falling back to 0, 1), so an interpolation between them morphs one digit into
    another."""
    device = next(judge.parameters(), images).device
    top = F.softmax(judge(images.to(device)), dim=1).max(dim=1)
    sure = [i for i in range(len(images)) if top.values[i] >= CONFIDENT]
    for i in sure:
        for j in sure:
            if top.indices[j] != top.indices[i]:
                return i, j
    return 0, 1


@dataclass
class JudgeScore:
    """How a trained classifier sees a set of images."""

    mean_max_prob: float  # mean over images of the judge's top probability
    confident_fraction: float  # fraction classified with probability >= CONFIDENT
    class_counts: list[int]  # histogram of predicted classes
    entropy_bits: float  # entropy of that histogram (log2 K bits = all classes equally common)
    classes_covered: int  # classes predicted for at least 1 % of the images
    inception_like: float  # exp(E_x KL(p(y|x) || p(y))) with the judge in place of Inception


@torch.no_grad()
def judge_images(judge: nn.Module, images: torch.Tensor, batch_size: int = 500) -> JudgeScore:
    """Returns the JudgeScore of `images` (pixels in [0, 1]) under `judge`, any model mapping
    pixels in [0, 1] to logits (e.g. `Run.pixel_model()`)."""
    judge.eval()
    device = next(judge.parameters(), images).device  # a model without parameters: stay put
    probs = torch.cat(
        [
            F.softmax(judge(images[i : i + batch_size].to(device)).float(), dim=1)
            for i in range(0, len(images), batch_size)
        ]
    )
    top = probs.max(dim=1)
    counts = torch.bincount(top.indices, minlength=probs.shape[1])
    share = counts.float() / len(images)
    entropy = -(share[share > 0] * share[share > 0].log2()).sum()
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * (probs.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(1)
    return JudgeScore(
        mean_max_prob=top.values.mean().item(),
        confident_fraction=(top.values >= CONFIDENT).float().mean().item(),
        class_counts=counts.tolist(),
        entropy_bits=abs(entropy.item()),  # abs: no '-0.0'
        classes_covered=int((share >= 0.01).sum()),
        inception_like=kl.mean().exp().item(),
    )


def generate(generator: nn.Module, n: int, latent: int, seed: int, device) -> torch.Tensor:
    """Returns n images from the generator for noise drawn with `seed` (reproducible)."""
    z = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed)).to(device)
    return sample(generator, z)


# ---------------------------------------------------------------- figures


def image_grid(images: torch.Tensor, rows: int, pad: int = 2) -> torch.Tensor:
    """Returns the images (N×1×H×W in [0, 1]) tiled into one (rows·H)×(cols·W) image with white
    lines between them."""
    n, _, h, w = images.shape
    cols = math.ceil(n / rows)
    grid = torch.ones(rows * (h + pad) - pad, cols * (w + pad) - pad)
    for i, image in enumerate(images[:, 0].cpu()):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = image
    return grid


def save_sample_strip(history: GanHistory, path: Path, max_panels: int = 6) -> Path:
    """Writes the fixed-noise samples before training and after each epoch side by side."""
    plt = pyplot()
    epochs = list(range(len(history.snapshots)))
    if len(epochs) > max_panels:  # keep the first, the last and evenly spaced ones between
        picks = torch.linspace(0, len(epochs) - 1, max_panels).round().long().unique().tolist()
        epochs = [epochs[i] for i in picks]
    fig, axes = plt.subplots(1, len(epochs), figsize=(3.2 * len(epochs), 3.9), dpi=110)
    for ax, epoch in zip(list(axes) if len(epochs) > 1 else [axes], epochs):
        grid = image_grid(history.snapshots[epoch][:36], rows=6).numpy()
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
        ax.set_title("untrained" if epoch == 0 else f"after epoch {epoch}", fontsize=14)
        ax.axis("off")
    fig.suptitle("DCGAN samples from the same 36 noise vectors", fontsize=16)
    return save_png(fig, path)


def save_sample_gif(history: GanHistory, path: Path, scale: int = 3) -> Path:
    """Writes the fixed-noise sample grids, one frame per epoch, as an animated GIF."""
    from PIL import Image

    frames = []
    for snapshot in history.snapshots:
        grid = image_grid(snapshot[:64], rows=8)
        pixels = (grid * 255).round().byte().numpy()
        image = Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale))
        frames.append(image)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=700, loop=0)
    return Path(path)


def _smooth(values: list[float], window: int) -> torch.Tensor:
    series = torch.tensor(values).view(1, 1, -1)
    window = max(1, min(window, len(values)))
    return F.avg_pool1d(series, window, stride=1).flatten().numpy()


def save_losses(history: GanHistory, path: Path) -> Path:
    """Writes the two losses and D's outputs on real and generated images over training."""
    plt = pyplot()
    window = max(1, history.steps_per_epoch // 10)
    epochs = lambda n: ((torch.arange(n) + window) / history.steps_per_epoch).numpy()  # noqa: E731
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    for values, label in ((history.d_loss, "discriminator"), (history.g_loss, "generator")):
        smooth = _smooth(values, window)
        left.plot(epochs(len(smooth)), smooth, label=label, lw=2)
    left.set(xlabel="epoch", ylabel="loss (running mean)", title="The two losses")
    for values, label in (
        (history.d_real, "D(x), real images"),
        (history.d_fake, "D(G(z)), fakes"),
    ):
        smooth = _smooth(values, window)
        right.plot(epochs(len(smooth)), smooth, label=label, lw=2)
    right.set(xlabel="epoch", ylabel="probability 'real'", title="What the discriminator says")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.legend(fontsize=12)
        ax.grid(alpha=0.3)
        ax.xaxis.label.set_size(13)
        ax.yaxis.label.set_size(13)
        ax.title.set_size(15)
    return save_png(fig, path)


def save_interpolation(
    images: torch.Tensor, judge_probs: torch.Tensor, classes: list[str], path: Path
) -> Path:
    """Writes the images along a latent line with the judge's verdict under each."""
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(1.45 * n, 2.4), dpi=110)
    top = judge_probs.max(dim=1)
    for i, ax in enumerate(axes):
        ax.imshow(images[i, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        label = f"{classes[top.indices[i]]}  {top.values[i]:.2f}"
        ax.set_xlabel(label, fontsize=12)
    fig.suptitle(
        "Walking in a straight line from one noise vector to another (judge: class, probability)",
        fontsize=13,
    )
    return save_png(fig, path)


def save_judge_histograms(scores: dict[str, JudgeScore], classes: list[str], path: Path) -> Path:
    """Writes the judge's predicted-class histogram for each set of images side by side."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    width = 0.8 / len(scores)
    for i, (name, score) in enumerate(scores.items()):
        share = torch.tensor(score.class_counts, dtype=torch.float) / sum(score.class_counts)
        label = (
            f"{name}: {100 * score.confident_fraction:.0f} % confident, "
            f"{score.entropy_bits:.2f} bits"
        )
        x = torch.arange(len(classes)) + (i - (len(scores) - 1) / 2) * width
        ax.bar(x.numpy(), (100 * share).numpy(), width=width, label=label)
    ax.axhline(100 / len(classes), color="gray", ls="--", lw=1)
    ax.set_xticks(range(len(classes)), classes, fontsize=12)
    ax.set_xlabel("class predicted by the judge", fontsize=13)
    ax.set_ylabel("% of images", fontsize=13)
    ax.set_title(
        "Which digits does the generator draw? (judge = trained MNIST classifier)", fontsize=14
    )
    ax.legend(fontsize=11)
    return save_png(fig, path)


# ---------------------------------------------------------------- the lesson


def load_judge(judge, out: Path, dataset, progress: bool = True) -> tuple[nn.Module, str]:
    """Returns (judge model taking pixels in [0, 1], description). `judge` is an nn.Module, a run
    directory, or None: then a lecture CNN is trained with the `fast` recipe into out/judge."""
    from netscope.run import Run, load_run

    if isinstance(judge, nn.Module):
        return judge.eval(), "the given model"
    if isinstance(judge, Run):
        return judge.pixel_model(), str(judge.path)
    if judge is not None:
        return load_run(judge).pixel_model(), str(judge)
    from netscope.config import recipe_config
    from netscope.train import train

    run_dir = Path(out) / "judge"
    if (run_dir / "model.safetensors").exists() and (run_dir / "run.json").exists():
        run = load_run(run_dir)
    else:
        config = recipe_config("fast", out=str(run_dir), progress=progress, checkpoints=False)
        run = train(config, dataset=dataset)
    error = run.info["metrics"]["test_error_pct"]
    return run.pixel_model(), f"lecture CNN, fast recipe ({error:.2f} % test error), {run_dir}"


def run(
    out: Path,
    full: bool = False,
    seed: int = 0,
    epochs: int | None = None,
    judge=None,
    config: GanConfig | None = None,
    progress: bool = True,
) -> LessonResult:
    """Returns the lesson's result after training a DCGAN on MNIST and judging its samples.

    `judge`: a run directory, Run or model (pixels in [0, 1] → logits) used to score samples;
    None trains the lecture CNN with the fast recipe first (about 15 s on a CPU)."""
    from netscope.data import load_dataset
    from netscope.device import resolve_device

    config = config or GanConfig(seed=seed)
    epochs = epochs or config.epochs * (5 if full else 1)
    config = replace(config, epochs=epochs, progress=config.progress and progress)
    out = make_folder(out)
    device = resolve_device(config.device)
    dataset = load_dataset("mnist")
    judge_model, judge_name = load_judge(judge, out, dataset, config.progress)
    judge_model.to(device)
    limit = config.train_limit or len(dataset.train_images)
    images = (dataset.train_images[:limit].float() / 255).to(device)
    generator, discriminator = make_gan(config, dataset.image_shape[0])
    generator.to(device)
    discriminator.to(device)
    fixed = torch.randn(64, config.latent, generator=torch.Generator().manual_seed(seed + 1))
    untrained = judge_images(
        judge_model, generate(generator, config.n_judge, config.latent, seed + 2, device)
    )
    history = train_gan(generator, discriminator, images, config, fixed.to(device))
    samples = generate(generator, config.n_judge, config.latent, seed + 2, device)
    scores = {
        "real test images": judge_images(
            judge_model, dataset.test_images[: config.n_judge].float() / 255
        ),
        "DCGAN samples": judge_images(judge_model, samples),
        "untrained generator": untrained,
    }
    start, end = pick_endpoints(judge_model, history.snapshots[-1])
    path = interpolate(generator, fixed[start].to(device), fixed[end].to(device), steps=10)
    with torch.no_grad():
        path_probs = F.softmax(judge_model(path), dim=1).cpu()
    figures = save_figures(history, scores, path, path_probs, dataset.classes, out)
    numbers = {
        "animation": save_sample_gif(history, out / "gan_samples.gif").name,
        "config": asdict(config),
        "judge": judge_name,
        "scores": {name: asdict(score) for name, score in scores.items()},
        "final_d_loss": sum(history.d_loss[-50:]) / len(history.d_loss[-50:]),
        "final_g_loss": sum(history.g_loss[-50:]) / len(history.g_loss[-50:]),
    }
    return LessonResult("gan", _summary(scores, config, judge_name), numbers, figures)


def save_figures(
    history: GanHistory,
    scores: dict[str, JudgeScore],
    path: torch.Tensor,
    path_probs: torch.Tensor,
    classes: list[str],
    out: Path,
) -> list[Figure]:
    """Writes the lesson's four figures into `out`; returns them with titles and captions."""
    return [
        Figure(
            save_sample_strip(history, out / "gan_samples.png"),
            "DCGAN samples after each epoch",
            "The same noise vectors turn from noise into digit shapes as training goes on.",
        ),
        Figure(
            save_losses(history, out / "gan_losses.png"),
            "Generator and discriminator losses",
            "Neither loss goes to zero: the two networks keep each other in balance.",
        ),
        Figure(
            save_interpolation(path, path_probs, classes, out / "gan_interpolation.png"),
            "Latent-space interpolation",
            "Intermediate noise vectors give intermediate drawings that morph from one digit "
            "into another.",
        ),
        Figure(
            save_judge_histograms(scores, classes, out / "gan_judge.png"),
            "What the judge classifier sees",
            "A good generator draws every digit about equally often and clearly enough for "
            "the judge to be confident.",
        ),
    ]


def _summary(scores: dict[str, JudgeScore], config: GanConfig, judge_name: str) -> list[str]:
    lines = [
        f"DCGAN trained {config.epochs} epoch(s) on MNIST; judged by {judge_name}",
        f"{'':<22}{'confident':>10}{'mean p_max':>11}{'classes':>8}{'entropy':>9}{'IS-like':>8}",
    ]
    for name, s in scores.items():
        lines.append(
            f"{name:<22}{100 * s.confident_fraction:>9.1f}%{s.mean_max_prob:>11.3f}"
            f"{s.classes_covered:>8}{s.entropy_bits:>8.2f}b{s.inception_like:>8.2f}"
        )
    lines.append(
        "IS-like = exp(E KL(p(y|x) || p(y))) with this MNIST classifier in place of Inception "
        "(Salimans et al. 2016); at most 10"
    )
    return lines
