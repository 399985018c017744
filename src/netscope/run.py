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
import math
import os
import platform
import re
import tempfile
import typing
from collections.abc import Callable, Iterator
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
from netscope.models import REGISTRY, Normalized, build_model
from netscope.usercode import build_user_model

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
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or bad UTF-8
        raise NetscopeError(f"{path}: not valid JSON ({_short(err)})") from None


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
        raise NetscopeError(f"{path}: not a valid safetensors file ({_short(err)})") from None


# ---------------------------------------------------------------- what a run directory holds
#
# run.json and metrics.jsonl are checked against the schema below when read, so that every
# command that reads a run fails on a damaged or hand-edited file with one error naming the file,
# the key and what was expected, instead of a traceback somewhere later. A key ending in "?" may
# be missing (written by later versions only, or only by some runs); other keys are ignored.


@dataclass(frozen=True)
class Rule:
    """What a JSON value must be: `check` tells, `expected` is said when it does not hold."""

    expected: str
    check: Callable[[Any], bool]


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def integer(low: int = 0) -> Rule:
    return Rule(f"an integer >= {low}", lambda v: type(v) is int and low <= v < 2**63)


def number(low: float = -math.inf) -> Rule:
    return Rule(
        "a finite number" + (f" >= {low}" if low > -math.inf else ""),
        lambda v: _finite(v) and v >= low,
    )


def list_of(expected: str, item: Callable[[Any], bool], sizes: range = range(1, 2**31)) -> Rule:
    return Rule(expected, lambda v: type(v) is list and len(v) in sizes and all(map(item, v)))


TEXT = Rule("a string", lambda v: type(v) is str)
INTEGER = Rule("an integer", lambda v: type(v) is int and -(2**63) <= v < 2**63)
FLAG = Rule("true or false", lambda v: type(v) is bool)
PERCENT = Rule("a percentage in [0, 100]", lambda v: _finite(v) and 0 <= v <= 100)
FACTORY = Rule("MODULE:FACTORY", lambda v: type(v) is str and ":" in v)

METRICS_ROW = {
    "epoch": integer(1),
    "train_loss": number(),
    "test_error_pct": PERCENT,
    "epoch_s": number(0),
}

RUN_JSON = {
    "netscope": TEXT,
    "created": TEXT,
    "config": Rule("an object of training options", lambda v: type(v) is dict),  # + TrainConfig
    "model": {
        "name": TEXT,
        "factory?": FACTORY,  # user code (netscope import); else a name in models.REGISTRY
        "in_channels": integer(1),
        "num_classes": integer(1),
        "image_size": integer(1),
        "parameters": integer(0),
    },
    "data": {
        "name": TEXT,
        "source": TEXT,
        "checksum": TEXT,
        "classes": list_of("a non-empty list of strings", lambda v: type(v) is str),
        "mean": list_of("a list of finite numbers", _finite),
        "std": list_of("a list of finite numbers > 0", lambda v: _finite(v) and v > 0),
        "image_shape": list_of("[channels, height, width]", integer(1).check, range(3, 4)),
        "train_size": integer(0),
        "test_size": integer(0),
        "shuffle_seed?": Rule("an integer or null", lambda v: v is None or integer(0).check(v)),
    },
    "versions": Rule(
        "an object of strings",
        lambda v: type(v) is dict and all(type(x) is str for x in v.values()),
    ),
    "seed?": integer(0),  # not in an imported run: netscope did not train it
    "device": TEXT,
    "bf16_autocast?": FLAG,
    "processes?": integer(1),
    "epochs_done": integer(0),
    "train_seconds": number(0),
    "metrics": {f"{key}?": rule for key, rule in METRICS_ROW.items()},
    "imported?": {"weights": TEXT, "sha256": TEXT},
}


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = value if isinstance(value, BaseException) else json.dumps(value)
        text = str(text)
    except (TypeError, ValueError):  # e.g. an integer too long to print
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_object(value: Any, schema: dict, where: str, key: str = "") -> None:
    """Raises NetscopeError naming `where`, the key and what was expected, at the first value
    of `value` that breaks `schema` ({key: Rule or nested schema}; "key?": may be missing)."""
    if type(value) is not dict:
        expected = "an object {…}" + (f" for {key}" if key else "")
        raise NetscopeError(f"{where}: expected {expected}, found {_short(value)}")
    for name, rule in schema.items():
        path = f"{key}.{name.rstrip('?')}" if key else name.rstrip("?")
        if name.rstrip("?") not in value:
            if name.endswith("?"):
                continue
            raise NetscopeError(f"{where}: missing {path!r}")
        found = value[name.rstrip("?")]
        if isinstance(rule, dict):
            check_object(found, rule, where, path)
        elif not rule.check(found):
            raise NetscopeError(f"{where}: {path}: expected {rule.expected}, found {_short(found)}")


def _config_rule(kind: Any) -> Rule:
    """Returns the Rule for a TrainConfig field annotated `kind` (int, float, bool, str, X | None)."""
    options = typing.get_args(kind) or (kind,)
    rules = {int: INTEGER, float: number(), bool: FLAG, str: TEXT}
    base = rules[next(k for k in options if k is not type(None))]
    if type(None) in options:
        return Rule(base.expected + " or null", lambda v: v is None or base.check(v))
    return base


def config_from_info(info: dict, where: str = "run.json") -> TrainConfig:
    """Returns the TrainConfig run.json records (a field it lacks, written by an earlier version,
    takes its default), or raises NetscopeError naming `where` and the field."""
    recorded = info["config"]
    hints = typing.get_type_hints(TrainConfig)
    unknown = sorted(set(recorded) - set(hints))
    if unknown:
        raise NetscopeError(f"{where}: config: unknown field(s) {', '.join(unknown)}")
    for name, value in recorded.items():
        rule = _config_rule(hints[name])
        if not rule.check(value):
            raise NetscopeError(
                f"{where}: config.{name}: expected {rule.expected}, found {_short(value)}"
            )
    try:
        return TrainConfig(**recorded)
    except NetscopeError as err:
        raise NetscopeError(f"{where}: config: {err}") from None


def _check_agreement(info: dict, where: str) -> None:
    """Raises NetscopeError when run.json's parts disagree (classes, channels, image size)."""
    model, data = info["model"], info["data"]
    channels, height, width = data["image_shape"]
    square = width if "factory" in model else height  # netscope's own models take square images
    facts = [
        (
            "data.image_shape[2]",
            width,
            "data.image_shape[1] (netscope's models are square)",
            square,
        ),
        ("data.classes", len(data["classes"]), "model.num_classes", model["num_classes"]),
        ("data.image_shape[0]", channels, "model.in_channels", model["in_channels"]),
        ("data.image_shape[1]", height, "model.image_size", model["image_size"]),
        ("data.mean", len(data["mean"]), "one value per channel", channels),
        ("data.std", len(data["std"]), "one value per channel", channels),
    ]
    for name, value, other, expected in facts:
        if value != expected:
            raise NetscopeError(f"{where}: {name} gives {value}, but {other} is {expected}")
    if "factory" not in model and model["name"] not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise NetscopeError(
            f"{where}: model.name: expected one of {known}, found {_short(model['name'])}"
        )


def read_run_info(run_dir: str | Path) -> dict:
    """Returns the run.json of `run_dir` once it has passed the schema, or raises NetscopeError
    naming the file, the key and what was expected."""
    path = Path(run_dir) / "run.json"
    info = read_json(path)
    check_object(info, RUN_JSON, str(path))
    config_from_info(info, str(path))
    _check_agreement(info, str(path))
    return info


def read_metrics(run_dir: Path) -> list[dict]:
    """Returns the per-epoch metrics of a run (empty before the first epoch ends), or raises
    NetscopeError naming the line that is not an epoch's record."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError) as err:
        raise NetscopeError(f"{path}: cannot read ({_short(err)})") from None
    rows = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_number}"
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise NetscopeError(
                f"{where}: not JSON (expected one epoch's record per line)"
            ) from None
        check_object(row, METRICS_ROW, where)
        if row["epoch"] != len(rows) + 1:
            raise NetscopeError(f"{where}: epoch {row['epoch']}, expected epoch {len(rows) + 1}")
        rows.append(row)
    return rows


# ---------------------------------------------------------------- weights that fit the model


def check_fit(
    expected: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], path: Path, model: str
) -> None:
    """Raises NetscopeError naming `path` when `weights` are not a finite state dict with the
    names and shapes of `expected` (a model's state dict, possibly on the meta device)."""
    shared = [k for k in expected if k in weights]
    wrong = {
        "missing": sorted(set(expected) - set(weights)),
        "unexpected": sorted(set(weights) - set(expected)),
        "wrong shape:": [
            f"{k} {tuple(weights[k].shape)} (expected {tuple(expected[k].shape)})"
            for k in shared
            if weights[k].shape != expected[k].shape
        ],
        "not floating-point:": [
            k for k in shared if weights[k].is_floating_point() != expected[k].is_floating_point()
        ],
        "NaN or infinite values in": [
            k for k in shared if weights[k].is_floating_point() and not weights[k].isfinite().all()
        ],
    }
    problems = [
        f"{what} {', '.join(names[:3])}" + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        for what, names in wrong.items()
        if names
    ]
    if problems:
        raise NetscopeError(f"{path}: weights do not fit model {model}: {'; '.join(problems)}")


def model_from_info(
    info: dict, *, trust_code: bool | None = None, where: str = "run.json"
) -> nn.Module:
    """Returns an untrained model built from the `model` entry of run.json (`where`); a model
    that is user code (`netscope import`) is built only when trusted (netscope.usercode)."""
    spec = info["model"]
    if "factory" in spec:
        return build_user_model(spec["factory"], trust_code=trust_code, where=where)
    sizes = (spec["in_channels"], spec["num_classes"], spec["image_size"])
    try:
        return build_model(spec["name"], *sizes)
    except NetscopeError as err:
        raise NetscopeError(f"{where}: model: {err}") from None
    except Exception as err:  # sizes no model of this kind can have
        raise NetscopeError(
            f"{where}: model {spec['name']} cannot be built with in_channels, num_classes, image_size "
            f"{sizes} ({_short(err)})"
        ) from None


def model_with_weights(
    info: dict,
    weights: dict[str, torch.Tensor],
    path: Path,
    *,
    trust_code: bool | None = None,
    where: str = "run.json",
) -> nn.Module:
    """Returns the model run.json (`where`) describes with `weights` (read from `path`) loaded,
    or raises NetscopeError naming `path` and what does not fit."""
    name = info["model"]["name"]
    if "factory" not in info["model"]:
        # the shapes first, on the meta device: sizes a damaged run.json names are never allocated
        with torch.device("meta"):
            check_fit(model_from_info(info, where=where).state_dict(), weights, path, name)
    model = model_from_info(info, trust_code=trust_code, where=where)
    check_fit(model.state_dict(), weights, path, name)
    model.load_state_dict(weights)
    return model


# ---------------------------------------------------------------- reading a run


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


# "near chance": a test error within this many points of 100·(1 − 1/classes)
CHANCE_MARGIN_PCT = 5.0


def near_chance(error_pct: float, classes: int) -> bool:
    """Returns whether a test error is within CHANCE_MARGIN_PCT of guessing (2 or more classes)."""
    return classes >= 2 and error_pct >= 100 * (1 - 1 / classes) - CHANCE_MARGIN_PCT


@figure_of(Run)
def run_figure(run: Run, path: Path) -> Path:
    """Returns `path` after drawing the run's training curves there."""
    from netscope.curves import save_curves_png  # imports matplotlib: only when drawn

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
    """Returns the data set run.json names, or raises NetscopeError if it differs from the one
    recorded (checksum, image shape)."""
    from netscope.data import load_dataset

    data, config = info["data"], info["config"]
    dataset = load_dataset(config.get("data", "mnist"), root=config.get("data_dir"))
    if dataset.checksum != data["checksum"]:
        raise NetscopeError(
            f"{run_dir}: data set {data['name']} found at {dataset.source} differs from the "
            f"one the run was trained on (checksum {dataset.checksum[:19]}…)"
        )
    if list(dataset.image_shape) != data["image_shape"]:
        raise NetscopeError(
            f"{run_dir}: data set {data['name']} has images of shape {list(dataset.image_shape)}, "
            f"run.json records {data['image_shape']}"
        )
    return dataset


def load_run(
    path: str | Path, checkpoint: str = "model.safetensors", *, trust_code: bool | None = None
) -> Run:
    """Returns the run in `path` with the weights of `checkpoint` loaded (on the CPU, eval mode).
    `trust_code`: build a model that is user code (`netscope import`); None: only when the
    environment says NETSCOPE_TRUST_CODE=1."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise NetscopeError(f"{run_dir}: not a directory (expected a netscope run directory)")
    info = read_run_info(run_dir)
    weights_path = (run_dir / checkpoint).resolve()
    if run_dir.resolve() not in weights_path.parents:
        raise NetscopeError(f"{checkpoint}: checkpoint must lie inside {run_dir}")
    weights = load_weights(weights_path)
    where = str(run_dir / "run.json")
    model = model_with_weights(info, weights, weights_path, trust_code=trust_code, where=where)
    config = config_from_info(info)
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
            "train_size": _limited(config.train_limit, len(dataset.train_images)),
            "test_size": _limited(config.test_limit, len(dataset.test_images)),
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


def _limited(limit: int, n: int) -> int:
    return min(limit, n) if limit else n


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
    """What resuming needs: the weights, optimiser state and metrics of the last finished epoch."""

    path: Path
    epoch: int
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    metrics: list[dict]

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Restores the per-parameter state into `optimizer` (SGD), or raises NetscopeError
        naming the tensor that does not fit it."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        state_dict = optimizer.state_dict()
        for name, value in self.optimizer.items():
            match = re.fullmatch(r"optimizer\.(\d{1,9})\.momentum_buffer", name)
            param = params[int(match[1])] if match and int(match[1]) < len(params) else None
            if param is None or value.shape != param.shape or not _finite_floats(value):
                raise NetscopeError(
                    f"{self.path}: {name} {tuple(value.shape)} does not fit the optimiser "
                    f"(expected optimizer.N.momentum_buffer: finite, shaped like parameter N, "
                    f"N < {len(params)})"
                )
            state_dict["state"].setdefault(int(match[1]), {})["momentum_buffer"] = value
        optimizer.load_state_dict(state_dict)


def _finite_floats(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and bool(tensor.isfinite().all())


def read_train_state(run_dir: Path) -> TrainState:
    """Returns the train state of `run_dir`, or raises NetscopeError naming what is wrong."""
    path = Path(run_dir) / "train_state.safetensors"
    tensors = load_weights(path)
    with safe_open(str(path), "pt") as f:
        epoch = (f.metadata() or {}).get("epoch", "")
    if not re.fullmatch(r"\d{1,9}", epoch):
        raise NetscopeError(f"{path}: metadata has no epoch number (found {_short(epoch)})")
    metrics = read_metrics(run_dir)
    if int(epoch) > len(metrics):
        raise NetscopeError(
            f"{path}: saved after epoch {epoch}, but metrics.jsonl records {len(metrics)} epochs"
        )
    other = sorted(k for k in tensors if not k.startswith(("model.", "optimizer.")))
    if other:
        raise NetscopeError(
            f"{path}: unexpected tensor(s) {', '.join(other[:3])} (expected model.* and optimizer.*)"
        )
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizer = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    return TrainState(path, int(epoch), weights, optimizer, metrics[: int(epoch)])
