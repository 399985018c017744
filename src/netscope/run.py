"""A run directory, read and written here alone: the weights, the record of how they were made,
the per-epoch metrics and the state a resumed training needs.

    RUN/model.safetensors          final (or latest) weights
    RUN/run.json                   config, model, data set + checksum, versions, seed, device, metrics
    RUN/metrics.jsonl              one line per finished epoch
    RUN/train_state.safetensors    weights + optimiser state of the last finished epoch (resume)
    RUN/checkpoints/epoch_NN.safetensors   weights after each epoch (00 = initialisation)

Every file is written atomically (temporary file, fsync, rename), so a killed process leaves the
previous epoch intact. Weights are read with safetensors, which never executes code. A training
holds an exclusive lock on RUN/.lock while it writes, so two trainings never share a directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from netscope.config import TrainConfig
from netscope.device import ONE_PROCESS, Processes, uses_bf16
from netscope.display import Shows, figure_of, html_table, image_tag, png_bytes, table_of
from netscope.errors import NetscopeError
from netscope.models import Normalized, build_model

if TYPE_CHECKING:
    from netscope.data import Dataset


def write_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to `path` so that readers see the old file or the new one, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    """Writes `obj` as indented JSON, atomically."""
    write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Writes tensors as a safetensors file, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(cpu, str(tmp), metadata=metadata)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Returns parsed JSON, or raises NetscopeError naming the file."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NetscopeError(
            f"{path}: missing (is {path.parent} a netscope run directory?)"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise NetscopeError(f"{path}: not valid JSON ({err})") from None


def read_metrics(run_dir: Path) -> list[dict]:
    """Returns the per-epoch metrics of a run (empty before the first epoch ends)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    """Rewrites metrics.jsonl atomically with `rows`."""
    write_atomic(
        Path(run_dir) / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()
    )


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Returns the tensors of a safetensors file, or raises NetscopeError naming it."""
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise NetscopeError(f"{path}: missing") from None
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise NetscopeError(f"{path}: not a valid safetensors file ({err})") from None


@dataclass
class Run(Shows):
    """A loaded run: the model (expects normalised input), its config and its record."""

    path: Path
    model: nn.Module
    config: TrainConfig
    info: dict
    checkpoint: str = "model.safetensors"
    metrics: list[dict] = field(default_factory=list)

    def __repr__(self) -> str:
        error = self.info.get("metrics", {}).get("test_error_pct")
        result = f"test error {error:.2f} %" if error is not None else "not trained yet"
        return (
            f"Run({self.path}: {self.info['model']['name']} on {self.info['data']['name']}, "
            f"{self.info['epochs_done']} of {self.config.epochs} epochs, {result})"
        )

    @property
    def classes(self) -> list[str]:
        return self.info["data"]["classes"]

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.info["data"]["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.info["data"]["std"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.info["data"]["image_shape"])

    def pixel_model(self) -> Normalized:
        """Returns the model wrapped to take pixels in [0, 1] (what analysis code uses)."""
        return Normalized(self.model, self.mean, self.std).eval()

    def load_dataset(self) -> Dataset:
        """Returns the data set the run was trained on, checked against the recorded checksum."""
        return recorded_dataset(self.path, self.info)

    def checkpoints(self) -> list[str]:
        """Returns the names of the weight files a run has, oldest first."""
        found = sorted(p.name for p in (self.path / "checkpoints").glob("epoch_*.safetensors"))
        return [f"checkpoints/{n}" for n in found] + ["model.safetensors"]


@figure_of(Run)
def run_figure(run: Run, path: Path) -> Path:
    """Returns `path` after drawing the run's training curves there."""
    from netscope.report.figures import save_curves_png  # the report's figure, drawn on demand

    if not run.metrics:
        raise NetscopeError(f"{run.path}: no finished epoch yet, so no training curves")
    return save_curves_png(run.metrics, path, title=f"{run.path.name}: {run.info['model']['name']}")


@table_of(Run)
def run_html(run: Run) -> str:
    """Returns the run's facts as a compact table, above its training curves."""
    info, error = run.info, run.info.get("metrics", {}).get("test_error_pct")
    rows = [
        ("model", f"{info['model']['name']} ({info['model']['parameters']:,} parameters)"),
        ("data", f"{info['data']['name']}, {info['data']['train_size']:,} training images"),
        ("recipe", f"{run.config.recipe}, lr {run.config.lr:g}, batch {run.config.batch_size}"),
        ("epochs", f"{info['epochs_done']} of {run.config.epochs}"),
        ("test error", f"{error:.2f} %" if error is not None else "–"),
        ("training time", f"{info['train_seconds']:.1f} s on {info['device']}"),
        ("weights", run.checkpoint),
    ]
    if len(run.metrics) < 2:  # one epoch is one point: the table says all there is
        return html_table(f"Run {run.path}", rows)
    curves = image_tag(png_bytes(lambda p: run_figure(run, p)), "training curves", "720px")
    return html_table(f"Run {run.path}", rows) + curves


def recorded_dataset(run_dir: Path, info: dict) -> Dataset:
    """Returns the data set run.json names, or raises NetscopeError if its checksum differs."""
    from netscope.data import load_dataset

    data, config = info["data"], info["config"]
    dataset = load_dataset(config["data"], root=config["data_dir"])
    if dataset.checksum != data["checksum"]:
        raise NetscopeError(
            f"{run_dir}: data set {data['name']} found at {dataset.source} differs from the "
            f"one the run was trained on (checksum {dataset.checksum[:19]}…)"
        )
    return dataset


def model_from_info(info: dict) -> nn.Module:
    """Returns an untrained model built from the `model` entry of run.json."""
    spec = info["model"]
    return build_model(spec["name"], spec["in_channels"], spec["num_classes"], spec["image_size"])


def load_run(path: str | Path, checkpoint: str = "model.safetensors") -> Run:
    """Returns the run in `path` with the weights of `checkpoint` loaded (on the CPU, eval mode)."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise NetscopeError(f"{run_dir}: not a directory (expected a netscope run directory)")
    info = read_json(run_dir / "run.json")
    weights_path = (run_dir / checkpoint).resolve()
    if run_dir.resolve() not in weights_path.parents:
        raise NetscopeError(f"{checkpoint}: checkpoint must lie inside {run_dir}")
    model = model_from_info(info)
    try:
        model.load_state_dict(load_weights(weights_path))
    except RuntimeError as err:
        raise NetscopeError(
            f"{weights_path}: weights do not fit model {info['model']['name']} ({err})"
        ) from None
    config = TrainConfig(**info["config"])
    return Run(run_dir, model.eval(), config, info, checkpoint, read_metrics(run_dir))


# ---------------------------------------------------------------- writing a run


def default_run_dir() -> Path:
    """Returns runs/<UTC timestamp> under the current directory."""
    return Path("runs") / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


@contextlib.contextmanager
def claimed(run_dir: Path, new: bool) -> Iterator[Path]:
    """Yields `run_dir` while this process holds an exclusive lock on RUN/.lock (the system drops
    it when the process ends, even by kill -9), so two trainings never write into one directory;
    `new` also refuses a directory that already holds a run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NetscopeError(
                f"{run_dir}: another netscope process is training into it"
            ) from None
        if new and (run_dir / "run.json").exists():
            raise NetscopeError(
                f"{run_dir}: already holds a run (use --resume {run_dir} or another --out)"
            )
        yield run_dir
    finally:
        os.close(fd)


def run_info(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    model: nn.Module,
    procs: Processes = ONE_PROCESS,
) -> dict:
    """Returns the run.json record for a new run (metrics are filled in after each epoch)."""
    channels, height, _ = dataset.image_shape
    return {
        "netscope": "0.1.0",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(config),
        "model": {
            "name": config.model,
            "in_channels": channels,
            "num_classes": len(dataset.classes),
            "image_size": height,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "data": {
            "name": dataset.name,
            "source": dataset.source,
            "checksum": dataset.checksum,
            "classes": dataset.classes,
            "mean": list(dataset.mean),
            "std": list(dataset.std),
            "image_shape": list(dataset.image_shape),
            "train_size": config.train_limit or len(dataset.train_images),
            "test_size": config.test_limit or len(dataset.test_images),
            "shuffle_seed": dataset.shuffle_seed,  # folders: their seeded order (None: file order)
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "seed": config.seed,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "bf16_autocast": uses_bf16(config, device),
        "processes": procs.world,
        "epochs_done": 0,
        "train_seconds": 0.0,
        "metrics": {},
    }


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Returns the optimiser's per-parameter state tensors under flat names (for safetensors)."""
    state = optimizer.state_dict()["state"]
    return {
        f"optimizer.{index}.{key}": value
        for index, entries in state.items()
        for key, value in entries.items()
        if torch.is_tensor(value)
    }


def save_epoch(run_dir: Path, model: nn.Module, optimizer, info: dict, metrics: list[dict]) -> None:
    """Writes everything a finished epoch changes; train_state goes last, since resume trusts it."""
    epoch = info["epochs_done"]
    weights = model.state_dict()
    meta = {"epoch": str(epoch)}
    if info["config"]["checkpoints"]:
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        save_tensors(run_dir / "checkpoints" / f"epoch_{epoch:02d}.safetensors", weights, meta)
    save_tensors(run_dir / "model.safetensors", weights, meta)
    write_metrics(run_dir, metrics)
    write_json(run_dir / "run.json", info)
    state = {f"model.{k}": v for k, v in weights.items()} | optimizer_tensors(optimizer)
    save_tensors(run_dir / "train_state.safetensors", state, meta)


@dataclass
class TrainState:
    """What resuming needs: the weights and optimiser state after the last finished epoch."""

    epoch: int
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]

    def load_into(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Restores the weights into `model` and the per-parameter state into `optimizer`."""
        model.load_state_dict(self.weights)
        state_dict = optimizer.state_dict()
        for name, value in self.optimizer.items():
            _, index, key = name.split(".", 2)
            state_dict["state"].setdefault(int(index), {})[key] = value
        optimizer.load_state_dict(state_dict)


def read_train_state(run_dir: Path) -> TrainState:
    """Returns the train state of `run_dir`, or raises NetscopeError naming what is wrong."""
    path = Path(run_dir) / "train_state.safetensors"
    tensors = load_weights(path)
    with safe_open(str(path), "pt") as f:
        epoch = (f.metadata() or {}).get("epoch", "")
    if not epoch.isdigit():
        raise NetscopeError(f"{path}: metadata has no epoch number (found {epoch!r})")
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizer = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    return TrainState(int(epoch), weights, optimizer)
