"""`netscope attack` and `netscope fool`: run an attack on a run's test images, write the numbers
(attack.json, fool.json) and the figures into an output folder."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from netscope.attack.checks import NORMS, check_eps
from netscope.attack.deepfool import deepfool
from netscope.attack.fooling import METHODS as FOOL_METHODS
from netscope.attack.fooling import fooling_images
from netscope.attack.gradient import fgsm, pgd
from netscope.attack.lbfgs import lbfgs
from netscope.attack.plots import (
    plot_attack_examples,
    plot_fooling_grid,
    plot_norm_histogram,
    plot_success_curve,
    plot_universal,
)
from netscope.attack.result import AttackResult
from netscope.attack.universal import apply_universal, universal_perturbation
from netscope.errors import NetscopeError
from netscope.run import Run, write_json

METHODS = ("fgsm", "pgd", "lbfgs", "deepfool", "universal")
DEFAULT_NORM = {"fgsm": "linf", "pgd": "linf", "lbfgs": "l2", "deepfool": "l2", "universal": "l2"}
DEFAULT_EPS = {"linf": 0.3, "l2": 2.0}  # Madry et al.'s MNIST L-inf budget; a common MNIST L2 one
DEFAULT_XI = {"linf": 0.3, "l2": 5.0}  # universal perturbation budget
# Moosavi-Dezfooli et al. 2016, Table 1: ρ_adv of DeepFool on LeNet trained on MNIST
PAPER_RHO_ADV_LENET_MNIST = 0.2


@dataclass
class AttackConfig:
    """One attack on a run's first `n` test images; each field is a `netscope attack --flag`."""

    method: str = "deepfool"  # fgsm | pgd | lbfgs | deepfool | universal
    norm: str | None = None  # linf | l2 (default: linf for fgsm/pgd, l2 otherwise; lbfgs: l2)
    eps: float | None = None  # budget (fgsm/pgd) or ‖v‖ (universal); default by norm
    n: int = 1000  # test images to attack (universal: also the train images it is built on)
    steps: int = 40  # PGD steps
    overshoot: float = 0.02  # DeepFool
    max_iter: int = 50  # DeepFool iterations
    target: int | None = None  # aim every image at this class (fgsm, pgd, lbfgs)
    target_rate: float = 0.8  # universal: stop once this share of its images is fooled
    max_passes: int = 5  # universal: passes over its images
    curve: bool = True  # fgsm/pgd: also measure the success rate at 6 budgets up to eps
    examples: int = 4  # rows in the examples figure
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise NetscopeError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        self.norm = self.norm or DEFAULT_NORM[self.method]
        if self.norm not in NORMS:
            raise NetscopeError(f"--norm {self.norm!r}: expected one of {', '.join(NORMS)}")
        if self.method == "lbfgs" and self.norm != "l2":
            raise NetscopeError("--norm: lbfgs minimises the L2 norm (use --norm l2)")
        if self.eps is None:
            self.eps = (DEFAULT_XI if self.method == "universal" else DEFAULT_EPS)[self.norm]
        check_eps(self.eps, "--eps")
        if self.n < 1:
            raise NetscopeError(f"--n {self.n}: expected an integer >= 1")
        if self.target is not None and self.method not in ("fgsm", "pgd", "lbfgs"):
            raise NetscopeError(f"--target: {self.method} is untargeted (use fgsm, pgd or lbfgs)")


def _figure(path: Path, title: str, caption: str) -> dict:
    return {"file": path.name, "title": title, "caption": caption}


def _attack(model, images, labels, targets, config: AttackConfig) -> AttackResult:
    if config.method == "fgsm":
        return fgsm(model, images, labels, config.eps, targets=targets, norm=config.norm)
    if config.method == "pgd":
        return pgd(
            model,
            images,
            labels,
            config.eps,
            config.norm,
            config.steps,
            targets=targets,
            seed=config.seed,
        )
    if config.method == "lbfgs":
        return lbfgs(model, images, labels, targets=targets, progress=config.progress)
    return deepfool(model, images, labels, config.overshoot, config.max_iter, config.norm)


def success_curve(model, images, labels, targets, config: AttackConfig) -> dict:
    """Returns {"eps": [...], "success_rate": [...]} for six budgets from eps/6 to eps."""
    budgets = [config.eps * k / 6 for k in range(1, 7)]
    rates = []
    for eps in budgets:
        curve_config = AttackConfig(**{**asdict(config), "eps": eps})
        rates.append(
            _attack(model, images, labels, targets, curve_config).metrics()["success_rate"]
        )
    return {"eps": budgets, "success_rate": rates}


def _test_images(run: Run, n: int, device: torch.device, split: str = "test"):
    dataset = run.load_dataset()
    images = getattr(dataset, f"{split}_images")[:n].to(device).float() / 255
    return images, getattr(dataset, f"{split}_labels")[:n].to(device)


def run_attack(run: Run, out: Path, config: AttackConfig | None = None) -> dict:
    """Returns the attack.json record after attacking the run's test images with `config` and
    writing attack.json and the figures into `out`."""
    from netscope.train import resolve_device

    config = config or AttackConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    model = run.pixel_model().to(device)
    images, labels = _test_images(run, config.n, device)
    targets = None
    if config.target is not None:
        if not 0 <= config.target < len(run.classes):
            raise NetscopeError(f"--target {config.target}: expected 0..{len(run.classes) - 1}")
        keep = labels != config.target  # images of the target class have nowhere to go
        images, labels = images[keep], labels[keep]
        targets = torch.full_like(labels, config.target)
    record = {
        "method": config.method,
        "norm": config.norm,
        "eps": config.eps if config.method in ("fgsm", "pgd", "universal") else None,
        "run": str(run.path),
        "checkpoint": run.checkpoint,
        "model": run.info["model"]["name"],
        "device": str(device),
        "torch": torch.__version__,
        "config": asdict(config),
    }
    if config.method == "universal":
        result, extra, figures = _universal(run, model, images, labels, config, out, device)
    else:
        result = _attack(model, images, labels, targets, config)
        extra, figures = _extra_figures(model, images, labels, targets, result, config, out)
    name = f"{config.method}_{config.norm}"
    examples = plot_attack_examples(
        result, run.classes, out / f"{name}_examples.png", config.examples, _title(result, config)
    )
    figures.insert(
        0,
        _figure(
            examples,
            f"{NAMES[config.method]} adversarial examples",
            "Left the clean test image, middle the perturbation amplified by the written factor, "
            "right the image the network now puts in another class (red).",
        ),
    )
    record |= result.metrics() | extra | {"figures": figures}
    if config.method == "deepfool" and config.norm == "l2":
        record["paper_rho_adv_lenet_mnist"] = PAPER_RHO_ADV_LENET_MNIST
    write_json(out / "attack.json", record)
    return record


NAMES = {"fgsm": "FGSM", "pgd": "PGD", "lbfgs": "L-BFGS", "deepfool": "DeepFool"}
NAMES |= {"universal": "Universal perturbation"}
NORM_NAMES = {"l2": "L2", "linf": "L∞"}


def _title(result: AttackResult, config: AttackConfig) -> str:
    metrics = result.metrics()
    rate = metrics["success_rate"]
    budget = f", ε = {config.eps:g}" if config.method in ("fgsm", "pgd", "universal") else ""
    symbol = "‖r‖₂" if config.norm == "l2" else "‖r‖∞"
    median = metrics["l2_median" if config.norm == "l2" else "linf_median"]
    size = f", median {symbol} = {median:.2f}" if median is not None else ""
    fooled = f"{100 * rate:.1f} % fooled" if rate is not None else "nothing to attack"
    return f"{NAMES[config.method]} ({NORM_NAMES[config.norm]}{budget}): {fooled}{size}"


def summary_line(record: dict) -> str:
    """Returns one line with the attack's numbers, for the terminal."""

    def number(key: str, scale: float = 1.0, unit: str = "") -> str:
        value = record.get(key)
        return "n/a" if value is None else f"{scale * value:.3f}{unit}"

    line = (
        f"{NAMES[record['method']]} ({NORM_NAMES[record['norm']]}) on {record['n_attacked']} "
        f"correctly classified test images: {number('success_rate', 100, ' %')} fooled, "
        f"median L2 {number('l2_median')}, median Linf {number('linf_median')}, "
        f"rho_adv {number('rho_adv')}, {number('s_per_image', 1000, ' ms')} per image"
    )
    if "fooling_rate_heldout" in record:
        line += f"; universal fooling rate on held-out images {number('fooling_rate_heldout', 100, ' %')}"
    return line


def _extra_figures(model, images, labels, targets, result, config, out):
    name = f"{config.method}_{config.norm}"
    if config.method in ("fgsm", "pgd"):
        if not config.curve:
            return {}, []
        curve = success_curve(model, images, labels, targets, config)
        path = plot_success_curve(
            curve["eps"],
            curve["success_rate"],
            out / f"{name}_curve.png",
            config.method,
            config.norm,
        )
        caption = "Share of the correctly classified test images fooled at each budget ε."
        return {"curve": curve}, [_figure(path, "Success rate against budget", caption)]
    path = plot_norm_histogram(result, out / f"{name}_norms.png", config.norm, NAMES[config.method])
    caption = "How far each test image is from a wrong decision: the size of its perturbation."
    return {}, [_figure(path, "Perturbation sizes", caption)]


def _universal(run, model, images, labels, config, out, device):
    train_images, _ = _test_images(run, config.n, device, split="train")
    universal = universal_perturbation(
        model,
        train_images,
        xi=config.eps,
        norm=config.norm,
        target_rate=config.target_rate,
        max_passes=config.max_passes,
        overshoot=config.overshoot,
        seed=config.seed,
        progress=config.progress,
    )
    start = time.perf_counter()
    result = apply_universal(model, images, universal.perturbation, labels)
    result.seconds = universal.seconds + (time.perf_counter() - start)
    heldout = float((result.adversarial_pred != result.original_pred).float().mean())
    path = plot_universal(universal, result, run.classes, out / f"universal_{config.norm}.png")
    extra = {
        "fooling_rate_train": universal.fooling_rate,
        "fooling_rate_heldout": heldout,
        "passes": len(universal.history),
        "history": universal.history,
    }
    caption = (
        f"One perturbation v built on {len(train_images)} training images; it changes the "
        f"prediction of {100 * heldout:.0f} % of {len(images)} held-out test images."
    )
    return result, extra, [_figure(path, "Universal perturbation", caption)]


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
    from netscope.train import resolve_device

    config = config or FoolConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    model = run.pixel_model().to(device)
    methods = FOOL_METHODS if config.method == "both" else (config.method,)
    record = {"run": str(run.path), "checkpoint": run.checkpoint, "device": str(device)}
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
        record["figures"].append(_figure(path, f"Fooling images ({method})", caption))
    write_json(out / "fool.json", record)
    return record
