"""`netscope attack` and `netscope fool`: run an attack on a run's test images, write the numbers
(attack.json, fool.json) and the figures into an output folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from netscope.attack.checks import NORMS, check_eps
from netscope.attack.fooling import METHODS as FOOL_METHODS
from netscope.attack.fooling import fooling_images, plot_fooling_grid
from netscope.attack.plots import plot_attack_examples
from netscope.attack.registry import ATTACKS
from netscope.attack.result import AttackResult
from netscope.attack.spec import AttackJob, AttackSpec
from netscope.device import resolve_device
from netscope.errors import NetscopeError
from netscope.provenance import weights_of
from netscope.record import Figure, write_record
from netscope.run import Run

# Moosavi-Dezfooli et al. 2016, Table 1: ρ_adv of DeepFool on LeNet trained on MNIST
PAPER_RHO_ADV_LENET_MNIST = 0.2
NORM_NAMES = {"l2": "L2", "linf": "L∞"}


@dataclass
class AttackConfig:
    """One attack on a run's first `n` test images; each field is a `netscope attack --flag`
    (and so is each field of the method's options dataclass: see `ATTACKS[method].options`)."""

    method: str = "deepfool"  # fgsm | pgd | lbfgs | deepfool | universal (netscope.attack.ATTACKS)
    norm: str | None = None  # linf | l2 (default: the method's own; lbfgs: l2 only)
    eps: float | None = None  # budget of fgsm/pgd, or ‖v‖ of universal; default by norm
    n: int = 1000  # test images to attack (universal: also the train images it is built on)
    target: int | None = None  # aim every image at this class (fgsm, pgd, lbfgs)
    curve: bool = True  # fgsm/pgd: also measure the success rate at 6 budgets up to eps
    examples: int = 4  # rows in the examples figure
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True
    options: Any = None  # the method's options dataclass (None: its defaults)

    def __post_init__(self) -> None:
        if self.method not in ATTACKS:
            raise NetscopeError(f"--method {self.method!r}: expected one of {', '.join(ATTACKS)}")
        spec = ATTACKS[self.method]
        self.norm = self.norm or spec.norms[0]
        if self.norm not in NORMS:
            raise NetscopeError(f"--norm {self.norm!r}: expected one of {', '.join(NORMS)}")
        if self.norm not in spec.norms:
            raise NetscopeError(
                f"--norm: {self.method} works in {' or '.join(spec.norms)} (use --norm "
                f"{spec.norms[0]})"
            )
        if spec.budget is None and self.eps is not None:
            raise NetscopeError(f"--eps: {self.method} finds its own perturbation size")
        if spec.budget is not None and self.eps is None:
            self.eps = spec.budget[self.norm]
        if self.eps is not None:
            check_eps(self.eps, "--eps")
        if self.n < 1:
            raise NetscopeError(f"--n {self.n}: expected an integer >= 1")
        if self.target is not None and not spec.targeted:
            targeted = [name for name, s in ATTACKS.items() if s.targeted]
            raise NetscopeError(
                f"--target: {self.method} is untargeted (use {', '.join(targeted)})"
            )
        self.options = method_options(spec, self.options)


def method_options(spec: AttackSpec, options: Any = None) -> Any:
    """Returns the attack's options (its defaults when None), checked to be of its type."""
    if spec.options is None:
        if options is not None:
            raise NetscopeError(f"{spec.name} takes no options (got {options!r})")
        return None
    if options is None:
        return spec.options()
    if not isinstance(options, spec.options):
        raise NetscopeError(
            f"options of {spec.name}: expected a {spec.options.__name__}, got "
            f"{type(options).__name__}"
        )
    return options


def attack_folder(config: AttackConfig) -> str:
    """Returns the folder, inside a run, for an attack's results: attack/METHOD, with -NORM for
    a norm other than the method's own, -epsE for a budget other than its default and -targetT
    for a targeted attack, so that no run overwrites another kind (netscope.folders)."""
    spec = ATTACKS[config.method]
    name = config.method + ("" if config.norm == spec.norms[0] else f"-{config.norm}")
    if spec.budget is not None and config.eps != spec.budget[config.norm]:
        name += f"-eps{config.eps:g}"
    return f"attack/{name}" + ("" if config.target is None else f"-target{config.target}")


def _run_images(run: Run, n: int, device: torch.device, split: str = "test"):
    dataset = run.load_dataset()
    images = getattr(dataset, f"{split}_images")[:n].to(device).float() / 255
    return images, getattr(dataset, f"{split}_labels")[:n].to(device)


def prepare_job(run: Run, out: Path, config: AttackConfig) -> AttackJob:
    """Returns the job of attacking the run's first `config.n` test images (without the images
    of the target class, for a targeted attack: they have nowhere to go)."""
    device = resolve_device(config.device)
    images, labels = _run_images(run, config.n, device)
    targets = None
    if config.target is not None:
        if not 0 <= config.target < len(run.classes):
            raise NetscopeError(f"--target {config.target}: expected 0..{len(run.classes) - 1}")
        keep = labels != config.target
        images, labels = images[keep], labels[keep]
        targets = torch.full_like(labels, config.target)
    return AttackJob(
        spec=ATTACKS[config.method],
        model=run.pixel_model().to(device),
        images=images,
        labels=labels,
        targets=targets,
        norm=config.norm,
        eps=config.eps,
        options=config.options,
        seed=config.seed,
        progress=config.progress,
        curve=config.curve,
        out=out,
        classes=run.classes,
        train_images=lambda: _run_images(run, config.n, device, "train")[0],
    )


def run_attack(run: Run, out: Path, config: AttackConfig | None = None) -> dict:
    """Returns the attack.json record after attacking the run's test images with `config` and
    writing attack.json and the figures into `out`."""
    config = config or AttackConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    job = prepare_job(run, out, config)
    result = job.spec.attack(job)
    extra, figures = job.spec.extras(job, result) if job.spec.extras else ({}, [])
    examples = plot_attack_examples(
        result,
        run.classes,
        out / f"{config.method}_{config.norm}_examples.png",
        config.examples,
        _title(job.spec, result, config),
    )
    caption = (
        "Left the clean test image, middle the perturbation amplified by the written factor, "
        "right the image the network now puts in another class (red)."
    )
    figures.insert(0, Figure(examples, f"{job.spec.title} adversarial examples", caption))
    record = {
        "method": config.method,
        "norm": config.norm,
        "eps": config.eps,
        "run": str(run.path),
        "checkpoint": run.checkpoint,
        "weights": weights_of(run),
        "model": run.info["model"]["name"],
        "device": str(job.images.device),
        "torch": torch.__version__,
        "config": asdict(config),
    }
    record |= result.metrics() | extra | {"figures": figures}
    if config.method == "deepfool" and config.norm == "l2":
        record["paper_rho_adv_lenet_mnist"] = PAPER_RHO_ADV_LENET_MNIST
    return write_record(out / "attack.json", record)


def _title(spec: AttackSpec, result: AttackResult, config: AttackConfig) -> str:
    metrics = result.metrics()
    rate = metrics["success_rate"]
    budget = f", ε = {config.eps:g}" if config.eps is not None else ""
    symbol = "‖r‖₂" if config.norm == "l2" else "‖r‖∞"
    median = metrics["l2_median" if config.norm == "l2" else "linf_median"]
    size = f", median {symbol} = {median:.2f}" if median is not None else ""
    fooled = f"{100 * rate:.1f} % fooled" if rate is not None else "nothing to attack"
    return f"{spec.title} ({NORM_NAMES[config.norm]}{budget}): {fooled}{size}"


def summary_line(record: dict) -> str:
    """Returns one line with the attack's numbers, for the terminal."""

    def number(key: str, scale: float = 1.0, unit: str = "") -> str:
        value = record.get(key)
        return "n/a" if value is None else f"{scale * value:.3f}{unit}"

    line = (
        f"{ATTACKS[record['method']].title} ({NORM_NAMES[record['norm']]}) on "
        f"{record['n_attacked']} correctly classified test images: "
        f"{number('success_rate', 100, ' %')} fooled, median L2 {number('l2_median')}, "
        f"median Linf {number('linf_median')}, rho_adv {number('rho_adv')}, "
        f"{number('s_per_image', 1000, ' ms')} per image"
    )
    if "fooling_rate_heldout" in record:
        line += f"; universal fooling rate on held-out images {number('fooling_rate_heldout', 100, ' %')}"
    return line


@dataclass
class FoolConfig:
    """Fooling images for every class; each field is a `netscope fool --flag`."""

    method: str = "both"  # gradient | evolution | both
    confidence: float = 0.99
    steps: int = 2000  # gradient steps or generations (each image stops at the confidence)
    lr: float = 0.01  # gradient ascent (Adam)
    population: int = 32  # evolution: children per class and generation
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in (*FOOL_METHODS, "both"):
            raise NetscopeError(
                f"--method {self.method!r}: expected one of {', '.join(FOOL_METHODS)}, both"
            )


def run_fool(run: Run, out: Path, config: FoolConfig | None = None) -> dict:
    """Returns the fool.json record after growing one fooling image per class with each method
    and writing fool.json and the grids into `out`."""
    config = config or FoolConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    model = run.pixel_model().to(device)
    methods = FOOL_METHODS if config.method == "both" else (config.method,)
    record = {"run": str(run.path), "checkpoint": run.checkpoint, "device": str(device)}
    record["weights"] = weights_of(run)
    record |= {"config": asdict(config), "classes": run.classes, "results": {}, "figures": []}
    for method in methods:
        fooling = fooling_images(
            model,
            run.image_shape,
            method=method,
            confidence=config.confidence,
            steps=config.steps,
            lr=config.lr,
            population=config.population,
            seed=config.seed,
            device=device,
            progress=config.progress,
        )
        path = plot_fooling_grid(fooling, run.classes, out / f"fool_{method}.png")
        record["results"][method] = {
            "confidence": fooling.confidence.tolist(),
            "predicted": fooling.predicted.tolist(),
            "all_reached": bool(fooling.success(config.confidence).all()),
            "steps": fooling.steps,
            "seconds": fooling.seconds,
        }
        caption = (
            f"Uniform noise changed by {method} until the network gives each class "
            f"≥ {100 * config.confidence:g} %: the written confidence is the network's."
        )
        record["figures"].append(Figure(path, f"Fooling images ({method})", caption))
    return write_record(out / "fool.json", record)
