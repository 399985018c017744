"""`netscope import`: a run directory for a model trained elsewhere, so that every command that
takes a run (evaluate, inspect, attack, fool, compare, report, serve) works on it unchanged.

    netscope import my_model.py:make_model --weights weights.safetensors \\
        --data mnist --mean 0.1307 --std 0.3081 --out runs/mine

writes RUN/model.safetensors (the weights, checked to fit the model) and RUN/run.json, which
records the factory, the data set and its checksum, the normalisation the model expects and the
test error measured on import. The run names user code, so loading it again needs
NETSCOPE_TRUST_CODE=1 (netscope.usercode); importing it here is the user's own explicit request.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from netscope.config import TrainConfig
from netscope.data import SPECS, Dataset, load_dataset
from netscope.errors import NetscopeError
from netscope.evaluate import error_pct, predict
from netscope.models import Normalized
from netscope.run import (
    Run,
    check_fit,
    claimed,
    default_run_dir,
    load_run,
    load_weights,
    near_chance,
    run_info,
    save_tensors,
    write_json,
)
from netscope.usercode import build_user_model, resolved_factory, split_factory


def import_model(
    factory: str,
    weights: str | Path,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    data: str = "mnist",
    data_dir: str | None = None,
    out: str | Path | None = None,
    dataset: Dataset | None = None,
) -> Run:
    """Returns the Run written to `out` for the model `factory` ('MODULE:FACTORY') builds, with
    `weights` (a safetensors state dict) loaded; it expects inputs normalised by `mean`/`std`
    (one value per channel, or one for all) and classifies the images of `data` (`dataset`:
    that data set, when it is loaded already)."""
    weights = Path(weights)
    dataset = dataset or load_dataset(data, data_dir)
    channels = dataset.image_shape[0]
    mean, std = _per_channel("--mean", mean, channels), _per_channel("--std", std, channels)
    factory = resolved_factory(factory)
    model = _model_with(factory, weights)
    pixel_model = Normalized(model, mean, std).eval()
    _check_outputs(pixel_model, dataset, factory)
    error = error_pct(predict(pixel_model, dataset.test_images.float() / 255), dataset.test_labels)
    found_again = {"data": _absolute(data), "data_dir": data_dir and str(Path(data_dir).resolve())}
    info = _imported_info(factory, model, dataset, found_again, mean, std, weights, error)
    run_dir = Path(out) if out else default_run_dir()
    with claimed(run_dir, new=True):
        save_tensors(run_dir / "model.safetensors", model.state_dict(), {"imported": str(weights)})
        write_json(run_dir / "run.json", info)
    if near_chance(error, len(dataset.classes)):
        print(
            f"netscope: warning: test error {error:.2f} % is near chance: check --mean/--std "
            "(the normalisation the model was trained with) and --data",
            file=sys.stderr,
        )
    return load_run(run_dir, trust_code=True)


def _model_with(factory: str, weights: Path) -> torch.nn.Module:
    """Returns the model `factory` builds with `weights` loaded, or raises NetscopeError."""
    model = build_user_model(factory, trust_code=True)  # named on the command line: asked for
    tensors = load_weights(weights)
    check_fit(model.state_dict(), tensors, weights, factory)
    model.load_state_dict(tensors)
    return model.eval()


def _per_channel(flag: str, values: Sequence[float], channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        values *= channels
    if len(values) != channels or not all(abs(v) < float("inf") for v in values):
        raise NetscopeError(
            f"{flag} {' '.join(map(str, values))}: expected 1 or {channels} finite numbers "
            f"(one per channel of the data set's images)"
        )
    if flag == "--std" and min(values) <= 0:
        raise NetscopeError(f"--std {' '.join(map(str, values))}: expected numbers > 0")
    return values


def _check_outputs(pixel_model: Normalized, dataset: Dataset, factory: str) -> None:
    """Raises NetscopeError unless the model maps the data set's images to one logit a class."""
    images = dataset.test_images[:2].float() / 255
    try:
        with torch.no_grad():
            logits = pixel_model(images)
    except Exception as err:  # the user's forward does not take these images
        raise NetscopeError(
            f"{factory}: the model does not take the images of {dataset.name} "
            f"({'×'.join(map(str, images.shape))}, normalised): {type(err).__name__}: {err}"
        ) from err
    expected = (len(images), len(dataset.classes))
    if not torch.is_tensor(logits) or tuple(logits.shape) != expected:
        found = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise NetscopeError(
            f"{factory}: the model returns {found} for {len(images)} images, expected logits of "
            f"shape {expected} ({len(dataset.classes)} classes in {dataset.name})"
        )


def _imported_info(factory, model, dataset, found_again, mean, std, weights, error) -> dict:
    """Returns the run.json record of an imported model (`found_again`: the data set's
    `data` and `data_dir`, as load_dataset takes them)."""
    module, name = split_factory(factory)
    label = f"{Path(module).name if module.endswith('.py') else module}:{name}"
    info = run_info(TrainConfig(**found_again), dataset, torch.device("cpu"), model)
    for key in ("seed", "bf16_autocast", "processes"):  # facts of a netscope training only
        info.pop(key)
    info["config"] = {**found_again, "model": label}
    info["model"] |= {"name": label, "factory": factory}
    info["data"] |= {"mean": list(mean), "std": list(std)}
    info["metrics"] = {"test_error_pct": error}
    info["imported"] = {"weights": str(weights.resolve()), "sha256": _sha256(weights)}
    return info


def _absolute(data: str) -> str:
    """Returns a data set's name as it is, an image folder's path made absolute."""
    return data if data in SPECS else str(Path(data).resolve())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()
