"""`netscope inspect RUN`: every analysis of this package on a trained run, as PNGs + inspect.json."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from netscope.errors import NetscopeError
from netscope.inspect import plots
from netscope.inspect.classmodel import class_models
from netscope.inspect.dream import deep_dream
from netscope.inspect.filters import conv_layers, filters
from netscope.inspect.hooks import activations, forward, resolve_layer
from netscope.inspect.morph import morph
from netscope.inspect.occlusion import occlusion
from netscope.inspect.photos import PHOTOS, load_photo
from netscope.inspect.receptive import receptive_field, recompute_on_canvas, top_patches
from netscope.inspect.saliency import integrated_gradients, saliency
from netscope.run import Run, write_json


@dataclass
class InspectConfig:
    """What `netscope inspect` computes; each field is a `--flag` of the same name."""

    images: int = 6  # test images (one per class in turn) for occlusion, saliency and IG
    top_k: int = 9  # patches per unit
    search_images: int = 10000  # test images searched for top patches (0 = all)
    layers: list[str] | None = None  # layers for top patches (default: every Conv2d)
    filters_layer: str | None = None  # default: the first Conv2d
    window: int = 7  # occluding square, pixels
    stride: int = 1  # occlusion positions every this many pixels
    occluder: float = 0.5  # grey value of the square
    ig_steps: int = 32
    class_steps: int = 200
    dream_layer: str | None = None  # default: the last Conv2d
    dream_photo: str = "camera"  # a photo from skimage.data
    dream_size: int = 112  # side of the dreamed image (conv layers take any size)
    octaves: int = 3
    dream_steps: int = 10
    morph: tuple[str, ...] = ("3:8", "chelsea:6")  # SOURCE:TARGET, SOURCE a class or photo
    morph_steps: int = 100
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("images", self.images >= 1),
            ("top-k", self.top_k >= 1),
            ("search-images", self.search_images >= 0),
            ("window", self.window >= 1),
            ("stride", self.stride >= 1),
            ("ig-steps", self.ig_steps >= 1),
            ("class-steps", self.class_steps >= 1),
            ("octaves", self.octaves >= 1),
            ("dream-steps", self.dream_steps >= 1),
            ("morph-steps", self.morph_steps >= 1),
        ]
        for flag, ok in checks:
            if not ok:
                value = getattr(self, flag.replace("-", "_"))
                raise NetscopeError(f"--{flag} {value}: expected a positive integer")


@dataclass
class Context:
    """What every stage of run_inspect works on."""

    model: torch.nn.Module
    test: torch.Tensor  # searched test images, pixels in [0, 1]
    labels: torch.Tensor
    classes: list[str]
    shape: tuple[int, int, int]
    config: InspectConfig
    out: Path
    # the examples for occlusion, saliency and dream: test indices, pixels, labels, titles
    examples: torch.Tensor | None = None
    images: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    titles: list[str] | None = None


def _figure(ctx: Context, fig, file: str, title: str, caption: str) -> dict:
    plots.save(fig, ctx.out / file)
    return {"file": file, "title": title, "caption": caption}


def pick_examples(labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    """Returns test indices of n images: the first of class 0, 1, …, then the second of each."""
    picked = []
    for k in range(n):
        members = (labels == k % num_classes).nonzero()[:, 0]
        if len(members) > k // num_classes:
            picked.append(members[k // num_classes])
    return torch.stack(picked)


def class_index(name: str, classes: list[str], what: str) -> int:
    """Returns the index of class `name`, or raises a NetscopeError listing the classes."""
    if name not in classes:
        raise NetscopeError(f"{what}: unknown class {name!r} (classes: {', '.join(classes)})")
    return classes.index(name)


def parse_morph(pair: str, classes: list[str]) -> tuple[str, int]:
    """Returns the source (a class name or a photo) and the target class index of `A:B`."""
    source, sep, target = pair.partition(":")
    if not sep:
        raise NetscopeError(f"--morph {pair!r}: expected SOURCE:TARGET, e.g. 3:8 or chelsea:6")
    if source not in PHOTOS:
        class_index(source, classes, f"--morph {pair} (or a photo: {', '.join(PHOTOS)})")
    return source, class_index(target, classes, f"--morph {pair}")


def check_config(model: torch.nn.Module, run: Run, config: InspectConfig) -> list[str]:
    """Returns the layers for top patches after checking every name in the config, so that a
    typo fails in a second, not after minutes of work."""
    layers = config.layers if config.layers is not None else conv_layers(model)
    for layer in layers:
        receptive_field(model, layer, run.image_shape)
    filters(model, config.filters_layer)
    if config.dream_layer is not None:
        resolve_layer(model, config.dream_layer)
    elif not conv_layers(model):
        raise NetscopeError(
            "deep dream: the model has no Conv2d layer (name one with --dream-layer)"
        )
    if config.dream_photo not in PHOTOS:
        raise NetscopeError(
            f"--dream-photo {config.dream_photo!r}: expected one of {', '.join(PHOTOS)}"
        )
    for pair in config.morph:
        parse_morph(pair, run.classes)
    return layers


def morph_starts(ctx: Context) -> tuple[torch.Tensor, list[int], list[str]]:
    """Returns the start images, target classes and source names of the `--morph A:B` pairs;
    A is a class (its first test image the model is sure of) or a photo."""
    starts, targets, sources = [], [], []
    for pair in ctx.config.morph:
        source, target = parse_morph(pair, ctx.classes)
        targets.append(target)
        if source in PHOTOS:
            starts.append(load_photo(source, ctx.shape).to(ctx.test.device))
            sources.append(f"photo '{source}'")
            continue
        wanted = ctx.classes.index(source)
        members = (ctx.labels == wanted).nonzero()[:, 0][:200]
        with torch.no_grad():
            sure = forward(ctx.model, ctx.test[members]).softmax(1)[:, wanted]
        # the first image the model is sure of (≥ 0.99), else its most certain one
        first = int((sure >= 0.99).float().argmax()) if (sure >= 0.99).any() else int(sure.argmax())
        starts.append(ctx.test[members[first]][None])
        sources.append(f"test image of {source}")
    return torch.cat(starts), targets, sources


def stage_filters(ctx: Context) -> tuple[dict, list[dict]]:
    """Returns the filters entry of inspect.json and its figure."""
    name, weights = filters(ctx.model, ctx.config.filters_layer)
    figure = _figure(
        ctx,
        plots.plot_filters(name, weights),
        "filters.png",
        f"Filters of {name}",
        "Red and blue are weights of opposite sign on one shared scale: look for edge and "
        "stroke detectors at different angles.",
    )
    return {"layer": name, "shape": list(weights.shape)}, [figure]


def stage_top_patches(ctx: Context, layers: list[str]) -> tuple[dict, list[dict]]:
    """Returns the receptive fields, top patches and canvas check of each layer, and figures."""
    entry, figures = {}, []
    for layer in layers:
        top = top_patches(
            ctx.model, ctx.test, layer, ctx.config.top_k, progress=ctx.config.progress
        )
        recomputed = recompute_on_canvas(ctx.model, ctx.shape, top)
        field = top.field
        entry[layer] = {
            "receptive_field": {"size": field.size, "jump": field.jump, "start": field.start},
            "searched_images": len(ctx.test),
            "max_recompute_error": float((recomputed - top.values).abs().max()),
            "values": top.values.cpu().tolist(),
            "image_index": top.image_index.cpu().tolist(),
            "position": top.position.cpu().tolist(),
        }
        h, w = field.size
        figures.append(
            _figure(
                ctx,
                plots.plot_top_patches(top),
                f"top_patches_{layer.replace('.', '_')}.png",
                f"Top patches of {layer}",
                f"Each block is one unit's {ctx.config.top_k} strongest {h}×{w} test patches: what "
                "it responds to is what they share.",
            )
        )
    return entry, figures


def stage_occlusion(ctx: Context) -> tuple[dict, list[dict]]:
    """Returns the occlusion entry of inspect.json and its figure."""
    config = ctx.config
    maps = occlusion(
        ctx.model,
        ctx.images,
        ctx.targets,
        config.window,
        config.stride,
        config.occluder,
        progress=config.progress,
    )
    entry = {
        "window": config.window,
        "stride": config.stride,
        "value": config.occluder,
        "p_min": maps.flatten(1).min(1).values.tolist(),
    }
    figure = _figure(
        ctx,
        plots.plot_occlusion(ctx.images, maps, ctx.titles, config.window),
        "occlusion.png",
        "Occlusion sensitivity",
        "Dark where hiding the pixels under the square makes the network lose the true class: "
        "the parts of the digit it relies on.",
    )
    return entry, [figure]


def stage_saliency(ctx: Context) -> tuple[dict, list[dict]]:
    """Returns saliency and IG with IG's completeness error (sum of IG vs score gap), and figure."""
    model, images, targets, steps = ctx.model, ctx.images, ctx.targets, ctx.config.ig_steps
    sal = saliency(model, images, targets)
    ig = integrated_gradients(model, images, targets, steps=steps)
    with torch.no_grad():
        scores = forward(model, images).gather(1, targets[:, None])[:, 0]
        base = forward(model, torch.zeros_like(images)).gather(1, targets[:, None])[:, 0]
    entry = {
        "ig_steps": steps,
        "ig_baseline": "black",
        "score_minus_baseline": (scores - base).tolist(),
        "ig_completeness_error": (ig.flatten(1).sum(1) - (scores - base)).abs().tolist(),
    }
    figure = _figure(
        ctx,
        plots.plot_attributions(images, sal, ig, ctx.titles, steps),
        "saliency.png",
        "Saliency and integrated gradients",
        "Saliency is bright where a small change moves the true class's score most; IG is red "
        "where a pixel adds to the score (compared with a black image) and blue where it takes "
        "away.",
    )
    return entry, [figure]


def stage_class_models(ctx: Context) -> tuple[dict, list[dict]]:
    """Returns each class model's probability and the figure."""
    config = ctx.config
    models = class_models(
        ctx.model,
        list(range(len(ctx.classes))),
        ctx.shape,
        config.class_steps,
        seed=config.seed,
        progress=config.progress,
    )
    entry = {
        "steps": config.class_steps,
        "probability": dict(zip(ctx.classes, models.probability.tolist())),
    }
    figure = _figure(
        ctx,
        plots.plot_class_models(models, ctx.classes),
        "class_models.png",
        "Class models",
        "Each image was grown from grey to maximise one class's score: the shape the network "
        "looks for in that class.",
    )
    return entry, [figure]


def stage_dream(ctx: Context) -> tuple[dict, list[dict]]:
    """Returns the layer energy before/after dreaming on a photo and an enlarged digit, and figure."""
    config, model = ctx.config, ctx.model
    layer = config.dream_layer or conv_layers(model)[-1]
    side = config.dream_size
    photo = load_photo(config.dream_photo, (ctx.shape[0], side, side)).to(ctx.test.device)
    digit = torch.nn.functional.interpolate(ctx.images[:1], size=(side, side), mode="bilinear")
    before = torch.cat([photo, digit])
    after = deep_dream(
        model,
        before,
        layer,
        config.octaves,
        steps=config.dream_steps,
        seed=config.seed,
        progress=config.progress,
    )
    energy = [
        activations(model, x, [layer])[layer].pow(2).flatten(1).mean(1) for x in (before, after)
    ]
    entry = {
        "layer": layer,
        "size": side,
        "octaves": config.octaves,
        "steps": config.dream_steps,
        "energy_before": energy[0].tolist(),
        "energy_after": energy[1].tolist(),
    }
    names = [
        f"photo '{config.dream_photo}'",
        f"test digit {ctx.classes[ctx.targets[0]]} (enlarged)",
    ]
    figure = _figure(
        ctx,
        plots.plot_dream(before, after, names, layer),
        "deep_dream.png",
        f"Deep Dream on {layer}",
        f"The patterns that appear are what {layer}'s units respond to, drawn wherever the "
        "image already hints at them.",
    )
    return entry, [figure]


def stage_morph(ctx: Context) -> tuple[list, list[dict]]:
    """Returns each morph's path (steps, p(target), top class) and the figure."""
    starts, targets, sources = morph_starts(ctx)
    path = morph(
        ctx.model,
        starts,
        targets,
        ctx.config.morph_steps,
        seed=ctx.config.seed,
        progress=ctx.config.progress,
    )
    classes = ctx.classes
    entry = [
        {
            "source": source,
            "target": classes[t],
            "steps": path.steps[k].tolist(),
            "p_target": path.probabilities[k, :, t].tolist(),
            "top_class": [classes[c] for c in path.probabilities[k].argmax(1).tolist()],
            "final_class": classes[int(path.final_prediction()[k])],
        }
        for k, (source, t) in enumerate(zip(sources, targets))
    ]
    figure = _figure(
        ctx,
        plots.plot_morph(path, sources, classes),
        "morph.png",
        "Morphing toward another class",
        "Read each row left to right: how little the image has to change before the network "
        "calls it the target class.",
    )
    return entry, [figure]


def prepare(run: Run, model: torch.nn.Module, out: Path, config: InspectConfig) -> Context:
    """Returns the context: the test images on the model's device and the chosen examples."""
    device = next(model.parameters()).device
    dataset = run.load_dataset()
    limit = config.search_images or len(dataset.test_images)
    test = (dataset.test_images[:limit].float() / 255).to(device)
    labels = dataset.test_labels[:limit].to(device)
    ctx = Context(model, test, labels, run.classes, run.image_shape, config, out)
    examples = pick_examples(labels, config.images, len(run.classes))
    ctx.examples, ctx.images, ctx.targets = examples, test[examples], labels[examples]
    with torch.no_grad():
        clean = forward(model, ctx.images).softmax(1).gather(1, ctx.targets[:, None])[:, 0]
    ctx.titles = [
        f"{run.classes[t]}: p = {p:.2f}" for t, p in zip(ctx.targets.tolist(), clean.tolist())
    ]
    return ctx


def run_inspect(run: Run, out: Path, config: InspectConfig | None = None) -> dict:
    """Runs every analysis on `run`, writes the PNGs and inspect.json into `out`; returns the
    inspect.json content."""
    from netscope.train import resolve_device

    config = config or InspectConfig()
    out = Path(out)
    torch.manual_seed(config.seed)
    model = run.pixel_model().to(resolve_device(config.device))
    layers = check_config(model, run, config)
    ctx = prepare(run, model, out, config)
    out.mkdir(parents=True, exist_ok=True)
    stages = {
        "filters": stage_filters,
        "top_patches": lambda c: stage_top_patches(c, layers),
        "occlusion": stage_occlusion,
        "saliency": stage_saliency,
        "class_models": stage_class_models,
        "deep_dream": stage_dream,
        "morph": stage_morph,
    }
    result: dict = {
        "run": str(run.path),
        "checkpoint": run.checkpoint,
        "device": str(ctx.test.device),
        "config": dataclasses.asdict(config),
        "examples": {
            "test_index": ctx.examples.tolist(),
            "label": ctx.targets.tolist(),
            "title": ctx.titles,
        },
    }
    figures, seconds = [], {}
    bar = tqdm(stages.items(), desc="netscope inspect", disable=not config.progress)
    for name, stage in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        result[name], new = stage(ctx)
        figures += new
        seconds[name] = round(time.perf_counter() - start, 2)
    result["seconds"] = seconds
    result["figures"] = figures
    write_json(out / "inspect.json", result)
    return result
