"""`netscope compare RUN_A RUN_B`: both measures between every pair of layers of two runs (or of
RUN_A and recorded responses), as compare.json and two heat maps."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from netscope.compare.features import (
    check_layers,
    default_layers,
    layer_features,
    response_features,
)
from netscope.compare.measures import Comparison, compare_features
from netscope.compare.plots import save_heatmaps
from netscope.device import resolve_device
from netscope.errors import NetscopeError
from netscope.guard import guarded
from netscope.inspect.hooks import layer_names, split_call
from netscope.provenance import weights_of
from netscope.record import write_record


@dataclass
class CompareConfig:
    """What to compare and how; each field is a `netscope compare --flag` of the same name."""

    layers: list[str] | None = None  # layers of RUN_A (default: activation layers + output)
    layers_b: list[str] | None = None  # layers of RUN_B (default: --layers if B has them all)
    responses: str | None = None  # FILE.npy, images × units: use as B instead of RUN_B
    images: str | None = None  # FILE.npy, N×C×H×W uint8 or floats in [0, 1] (default: test set)
    n_images: int | None = None  # first N test images (default 1000, or the rows of --responses)
    spatial: str = "flatten"  # flatten | pool (mean over positions) for convolutional layers
    max_units: int = 32768  # units of all layers read per pass over the images (wider: more passes)
    max_targets: int = 500  # predict at most this many (randomly drawn) units of each B layer
    folds: int = 5  # outer cross-validation folds over images
    seed: int = 0
    batch_size: int = 250
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("spatial", self.spatial in ("flatten", "pool"), "flatten or pool"),
            ("folds", self.folds >= 2, "an integer >= 2"),
            ("max-units", self.max_units >= 1, "an integer >= 1"),
            ("max-targets", self.max_targets >= 1, "an integer >= 1"),
            ("batch-size", self.batch_size >= 1, "an integer >= 1"),
            (
                "n-images",
                self.n_images is None or self.n_images >= 2 * self.folds,
                "2·folds or more",
            ),
        ]
        for flag, ok, expected in checks:
            if not ok:
                value = getattr(self, flag.replace("-", "_"))
                raise NetscopeError(f"--{flag} {value}: expected {expected}")

    def feature_options(self, seed_offset: int = 0) -> dict:
        """Returns the keyword arguments of `layer_features` this config sets."""
        return dict(
            spatial=self.spatial,
            max_units=self.max_units,
            max_targets=self.max_targets,
            seed=self.seed + seed_offset,
            batch_size=self.batch_size,
            progress=self.progress,
        )


@guarded
def compare_models(
    model_a: nn.Module,
    model_b: nn.Module,
    images: torch.Tensor,
    layers_a: list[str] | None = None,
    layers_b: list[str] | None = None,
    *,
    config: CompareConfig | None = None,
) -> Comparison:
    """Returns the Comparison of two models' layers on `images` (pixels for `Normalized` models)."""
    config = config or CompareConfig()
    layers_a = layers_a or default_layers(model_a, tuple(images.shape[1:]))
    layers_b = layers_b or default_layers(model_b, tuple(images.shape[1:]))
    feats_a = layer_features(model_a, images, layers_a, **config.feature_options())
    feats_b = layer_features(model_b, images, layers_b, **config.feature_options(seed_offset=1))
    return compare_features(feats_a, feats_b, config.folds, config.seed, config.progress)


def load_npy(path: str | Path, argument: str) -> np.ndarray:
    """Returns the numeric array in a .npy file (never unpickles), or raises NetscopeError."""
    try:
        array = np.load(Path(path), allow_pickle=False)
    except FileNotFoundError:
        raise NetscopeError(f"{argument} {path}: no such file") from None
    except (OSError, ValueError) as err:
        raise NetscopeError(f"{argument} {path}: not a numeric .npy array ({err})") from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise NetscopeError(f"{argument} {path}: expected a numeric array, got {array.dtype}")
    if not np.isfinite(array).all():
        raise NetscopeError(f"{argument} {path}: contains NaN or infinite values")
    return array


def load_responses(path: str | Path, n_images: int | None = None) -> torch.Tensor:
    """Returns an images × units float tensor from a .npy file, checked against `n_images`."""
    array = load_npy(path, "--responses")
    if array.ndim != 2 or array.shape[1] < 1:
        raise NetscopeError(
            f"--responses {path}: expected a 2-D array images × units, got shape {array.shape}"
            + (" (use array.reshape(-1, 1) for a single unit)" if array.ndim == 1 else "")
        )
    if n_images is not None and len(array) != n_images:
        raise NetscopeError(
            f"--responses {path}: has {len(array)} rows but {n_images} images are compared "
            "(one row per image, in the order of the images)"
        )
    return torch.from_numpy(array.astype(np.float32))


def load_images(path: str | Path, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """Returns N×C×H×W pixels in [0, 1] from a .npy file of uint8 or floats in [0, 1]."""
    array = load_npy(path, "--images")
    if array.ndim == 3 and image_shape[0] == 1:
        array = array[:, None]
    if array.ndim != 4 or tuple(array.shape[1:]) != tuple(image_shape):
        raise NetscopeError(
            f"--images {path}: expected shape N×{'×'.join(map(str, image_shape))}, got {array.shape}"
        )
    if array.dtype == np.uint8:
        return torch.from_numpy(array).float() / 255
    if array.min() < 0 or array.max() > 1:
        raise NetscopeError(f"--images {path}: float pixels must lie in [0, 1] (or use uint8)")
    return torch.from_numpy(array.astype(np.float32))


def comparison_images(run_a, config: CompareConfig, n_rows: int | None) -> tuple[torch.Tensor, str]:
    """Returns the images to compare on (pixels in [0, 1]) and a phrase naming them: the first
    `n_images` of --images or of RUN_A's test set (default: 1000, or one per --responses row)."""
    if config.images:
        images, source = load_images(config.images, run_a.image_shape), config.images
    else:
        images = run_a.load_dataset().test_images.float() / 255
        source = f"{run_a.info['data']['name']} test images"
    n = config.n_images or n_rows or (len(images) if config.images else 1000)
    if n > len(images):
        raise NetscopeError(f"--n-images {n}: {source} hold only {len(images)} images")
    if n_rows is not None and n != n_rows:
        raise NetscopeError(
            f"--responses {config.responses}: has {n_rows} rows but {n} images are compared "
            "(one row per image, in the order of the images)"
        )
    if n < 2 * config.folds:
        raise NetscopeError(f"{n} images are too few for --folds {config.folds}")
    return images[:n], f"the first {n} {source}"


def run_compare(run_a, run_b, out: str | Path, config: CompareConfig | None = None) -> dict:
    """Returns the compare.json record after comparing two runs (or RUN_A with `--responses`) and
    writing compare.json and the heat maps into `out`."""
    config = config or CompareConfig()
    if (run_b is None) == (config.responses is None):
        raise NetscopeError(
            "compare: give either a second run directory RUN_B or --responses FILE.npy"
        )
    if run_b is not None and tuple(run_b.image_shape) != tuple(run_a.image_shape):
        raise NetscopeError(
            f"{run_b.path}: takes {run_b.image_shape} images but {run_a.path} takes "
            f"{run_a.image_shape}; both runs must see the same images"
        )
    device = resolve_device(config.device)
    model_a = run_a.pixel_model().to(device)
    layers_a = check_layers(model_a, config.layers or default_layers(model_a, run_a.image_shape))
    model_b = None if run_b is None else run_b.pixel_model().to(device)
    layers_b = None if run_b is None else layers_for_b(model_b, config, run_b.image_shape)
    responses = load_responses(config.responses) if config.responses else None
    images, image_phrase = comparison_images(
        run_a, config, None if responses is None else len(responses)
    )
    images = images.to(device)
    feats_a = layer_features(model_a, images, layers_a, **config.feature_options())
    if responses is None:
        feats_b = layer_features(model_b, images, layers_b, **config.feature_options(1))
        label_b, source_b = run_label(run_b), str(run_b.path)
    else:
        feats_b = {
            "responses": response_features(
                responses.to(device), config.max_targets, seed=config.seed + 1
            )
        }
        label_b, source_b = Path(config.responses).name, config.responses
    comparison = compare_features(feats_a, feats_b, config.folds, config.seed, config.progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = save_heatmaps(comparison, out, (f"A = {run_label(run_a)}", f"B = {label_b}"))
    record = {
        "run_a": str(run_a.path),
        "b": source_b,
        "weights_a": weights_of(run_a),
        "weights_b": None if run_b is None else weights_of(run_b),
        "images": image_phrase,
        **comparison.as_dict(),
        "config": asdict(config),
        "figures": figures,
    }
    return write_record(out / "compare.json", record)


def run_label(run) -> str:
    """Returns a short name for a run in figure titles (with its checkpoint when not the last)."""
    if run.checkpoint == "model.safetensors":
        return run.path.name
    return f"{run.path.name} ({Path(run.checkpoint).stem})"


def layers_for_b(model_b: nn.Module, config: CompareConfig, image_shape: tuple) -> list[str]:
    """Returns B's layers: --layers-b, else --layers when B has them all, else B's defaults."""
    if config.layers_b:
        return check_layers(model_b, config.layers_b, "--layers-b")
    names = set(layer_names(model_b))
    if config.layers and all(split_call(name)[0] in names for name in config.layers):
        return list(config.layers)
    return default_layers(model_b, image_shape)
