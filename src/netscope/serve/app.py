"""The web app behind `netscope serve`: a JSON API over one run directory, and the static page.

    GET  /api/info          classes, image shape, checkpoints, layers
    GET  /api/test-image    ?index=N: a test image's pixels and label
    POST /api/predict       class probabilities and every layer's feature maps
    POST /api/explain       saliency or occlusion map (netscope.inspect)
    POST /api/twin          adversarial twin by any per-image attack of netscope.attack.ATTACKS
    GET  /api/growth        ?checkpoint=NAME: filters and units at that epoch (serve/growth.py)

Every request is checked before any work: Host and Origin (guard.LoopbackOnly), how many are
inside at once (admission.Admission: 429 beyond), body size and JSON depth (guard.BodyLimit), then
each field (schema.py). A bad one gets a 4xx with `{"detail": "what is wrong"}` naming the field,
and the server carries on. Each copy of a model answers one request at a time (`Lab.evaluating`),
so every answer is its own request's.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.middleware import Middleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from torch import nn

from netscope.attack import ATTACKS, AttackJob, AttackResult
from netscope.data import Dataset
from netscope.device import resolve_device
from netscope.errors import NetscopeError
from netscope.inspect import activations, occlusion, saliency
from netscope.run import Run, load_run
from netscope.serve.admission import Admission
from netscope.serve.growth import growth_router
from netscope.serve.guard import BodyLimit, LoopbackOnly
from netscope.serve.render import difference_uri, feature_grid, heat_uri, pixels_uri, png_uri
from netscope.serve.schema import (
    ERRORS,
    MAX_JSON_DEPTH,
    TWIN_METHODS,
    ExplainRequest,
    Explanation,
    ImageRequest,
    Info,
    LabelledImage,
    Prediction,
    PredictRequest,
    Twin,
    TwinRequest,
    bad_request,
    invalid_fields,
    max_body_bytes,
    problem,
    to_pixels,
)

STATIC = Path(__file__).parent / "static"
SKIPPED_LAYERS = (nn.Flatten, nn.Identity, nn.Dropout)  # outputs that only repeat their input
MAX_ACTIVE = 16  # requests inside the server at once; about a second of work when all are twins
REPLICAS = 2  # copies of each model evaluating at once: fastest on 2 cores (bench/RESULTS.md)


class Lab:
    """One run directory's models (loaded per checkpoint on demand, a few kept) and test set."""

    def __init__(self, run_dir: str | Path, dataset: Dataset | None = None, keep: int = 4):
        self.run: Run = load_run(run_dir)
        self._dataset = dataset
        self.device = resolve_device("auto")
        self.checkpoints = self.run.checkpoints()
        self.layers = shown_layers(self.run.model, self.run.image_shape)
        self._replicas: OrderedDict[str, queue.SimpleQueue] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    def replicas(self, checkpoint: str) -> queue.SimpleQueue:
        """Returns the idle copies of the pixel-space model with `checkpoint`'s weights (loaded
        on first use), or raises a 404."""
        if checkpoint not in self.checkpoints:
            raise bad_request(
                f"unknown checkpoint {checkpoint!r} (this run has: {', '.join(self.checkpoints)})",
                404,
            )
        with self._lock:
            if checkpoint not in self._replicas:
                model = load_run(self.run.path, checkpoint).pixel_model().to(self.device)
                idle = self._replicas[checkpoint] = queue.SimpleQueue()
                for _ in range(REPLICAS):
                    idle.put(copy.deepcopy(model))
                if len(self._replicas) > self._keep:
                    self._replicas.popitem(last=False)
            self._replicas.move_to_end(checkpoint)
            return self._replicas[checkpoint]

    @contextmanager
    def evaluating(self, checkpoint: str) -> Iterator[nn.Module]:
        """Yields a copy of `checkpoint`'s model that no other request is using, waiting for one
        to be free. Forward hooks, train/eval flags and autograd graphs hang on the module, so
        two requests must never evaluate the same copy at once."""
        idle = self.replicas(checkpoint)
        model = idle.get()
        try:
            yield model
        finally:
            idle.put(model)

    def pixels(self, request: ImageRequest) -> torch.Tensor:
        """Returns the request's image as a checked 1×C×H×W tensor on the models' device."""
        return to_pixels(request.image, self.run.image_shape).to(self.device)

    def chosen_layers(self, layers: list[str] | None) -> list[str]:
        """Returns the requested layers (default: all), or raises a 422 for an unknown layer or
        one named twice (so a request can ask for each layer's maps at most once)."""
        if layers is None:
            return self.layers
        for i, name in enumerate(layers):
            if name not in self.layers:
                raise bad_request(
                    f"layers: unknown layer {name[:80]!r} (valid: {', '.join(self.layers)})"
                )
            if name in layers[:i]:
                raise bad_request(f"layers: {name!r} is named twice (ask for each layer once)")
        return layers

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the run's test images (uint8) and labels, loaded once."""
        with self._lock:
            if self._test is None:
                dataset = self._dataset or self.run.load_dataset()
                self._test = (dataset.test_images, dataset.test_labels)
            return self._test


def shown_layers(model: nn.Module, image_shape: tuple[int, ...]) -> list[str]:
    """Returns every layer call the page shows, in call order ("relu#1" for a second call),
    leaving out the layers that only repeat their input."""
    from netscope.inspect.hooks import layer_calls, resolve_layer

    calls = layer_calls(model, image_shape)
    return [name for name in calls if not isinstance(resolve_layer(model, name)[1], SKIPPED_LAYERS)]


def probabilities(model: nn.Module, pixels: torch.Tensor) -> list[float]:
    """Returns the softmax class probabilities of one image."""
    with torch.no_grad():
        return model(pixels).softmax(1)[0].tolist()


def feature_maps(outputs: dict[str, torch.Tensor]) -> list[dict]:
    """Returns each layer's output on one image as a picture with its shape and colour scale."""
    maps = []
    for name, output in outputs.items():
        grid, scale = feature_grid(output[0])
        maps.append({"layer": name, "shape": list(output.shape[1:]), "png": png_uri(grid), **scale})
    return maps


def explanation_map(
    model: nn.Module, pixels: torch.Tensor, method: str, target: int
) -> torch.Tensor:
    """Returns the H×W saliency or occlusion map of one image for class `target`."""
    return (saliency if method == "saliency" else occlusion)(model, pixels, target)[0]


def explanation_picture(values: torch.Tensor, method: str) -> dict:
    """Returns a saliency (black → bright, up to its largest value) or occlusion (probability
    0 → 1) map as a picture with its colour scale."""
    if method == "saliency":
        high = max(float(values.max()), 1e-12)
        return {"png": heat_uri(values, "inferno", 0.0, high), "low": 0.0, "high": high}
    return {"png": heat_uri(values, "viridis", 0.0, 1.0), "low": 0.0, "high": 1.0}


def attack(model: nn.Module, pixels: torch.Tensor, method: str, eps: float) -> AttackResult:
    """Returns attack `method` (any per-image attack of netscope.attack.ATTACKS, with its own
    defaults and `eps` as the budget of those that take one) on one image, against the model's
    own prediction."""
    spec = ATTACKS[method]
    with torch.no_grad():
        label = model(pixels).argmax(1)
    job = AttackJob(
        spec=spec,
        model=model,
        images=pixels,
        labels=label,
        targets=None,
        norm=spec.norms[0],
        eps=eps if spec.budget else None,
        options=spec.options() if spec.options else None,
    )
    return spec.attack(job)


def twin_answer(method: str, result: AttackResult, probs: list[float]) -> dict:
    """Returns the twin that `method` made: its prediction (`probs`), picture, difference and
    sizes."""
    difference, gain = difference_uri(result.perturbation[0])
    change = result.perturbation[0].flatten()
    return {
        "method": method,
        "original": int(result.original_pred[0]),
        "predicted": int(result.adversarial_pred[0]),
        "probabilities": probs,
        "success": bool(result.success[0]),
        "adversarial_png": pixels_uri(result.adversarial[0], scale=8),
        "difference_png": difference,
        "gain": gain,
        "l2": float(change.norm()),
        "linf": float(change.abs().max()),
        "image": result.adversarial[0].cpu().tolist(),
    }


def create_app(
    run_dir: str | Path, dataset: Dataset | None = None, *, max_active: int = MAX_ACTIVE
) -> FastAPI:
    """Returns the FastAPI app serving the page and the API for the run in `run_dir` (pass the
    run's `dataset` when it is loaded already; otherwise the first test image request loads it).
    At most `max_active` requests are inside at once; the others are answered 429."""
    lab = Lab(run_dir, dataset)
    body_limit = max_body_bytes(lab.run.image_shape)
    app = FastAPI(
        title="netscope",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        responses=ERRORS,
        middleware=[  # outermost first: refuse foreign pages before counting or reading them
            Middleware(LoopbackOnly),
            Middleware(Admission, limit=max_active),
            Middleware(BodyLimit, max_bytes=body_limit, max_depth=MAX_JSON_DEPTH),
        ],
        exception_handlers={RequestValidationError: invalid_fields},
    )
    app.state.lab = lab

    @app.exception_handler(NetscopeError)
    async def netscope_error(_request, err: NetscopeError):
        return problem(422, str(err))

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info", response_model=Info)
    def info() -> dict:
        run = lab.run
        return {
            "run": run.path.resolve().name,
            "model": run.info["model"]["name"],
            "data": run.info["data"]["name"],
            "classes": run.classes,
            "image_shape": list(run.image_shape),
            "checkpoints": lab.checkpoints,
            "checkpoint": "model.safetensors",
            "layers": lab.layers,
            "attacks": [
                {"name": name, "title": ATTACKS[name].title, "budget": bool(ATTACKS[name].budget)}
                for name in TWIN_METHODS
            ],
            "test_size": run.info["data"].get("test_size"),
            "test_error_pct": run.info.get("metrics", {}).get("test_error_pct"),
        }

    @app.get("/api/test-image", response_model=LabelledImage)
    def test_image(index: int = Query(..., description="index into the test set")) -> dict:
        images, labels = lab.test_set()
        if not 0 <= index < len(images):
            raise bad_request(f"index {index}: expected 0 .. {len(images) - 1}")
        return {
            "index": index,
            "label": int(labels[index]),
            "image": (images[index].float() / 255).tolist(),
        }

    @app.post("/api/predict", response_model=Prediction)
    def predict(request: PredictRequest) -> dict:
        pixels, layers = lab.pixels(request), lab.chosen_layers(request.layers)
        with lab.evaluating(request.checkpoint) as model:
            probs = probabilities(model, pixels)
            outputs = activations(model, pixels, layers) if layers else {}
        return {
            "checkpoint": request.checkpoint,
            "probabilities": probs,
            "predicted": max(range(len(probs)), key=probs.__getitem__),
            "features": feature_maps(outputs),
        }

    @app.post("/api/explain", response_model=Explanation)
    def explain(request: ExplainRequest) -> dict:
        pixels, n_classes = lab.pixels(request), len(lab.run.classes)
        with lab.evaluating(request.checkpoint) as model:
            target = request.target
            if target is None:
                target = max(range(n_classes), key=probabilities(model, pixels).__getitem__)
            if target >= n_classes:
                raise bad_request(f"target {target}: expected a class index 0 .. {n_classes - 1}")
            values = explanation_map(model, pixels, request.method, target)
        return {
            "method": request.method,
            "target": target,
            **explanation_picture(values, request.method),
        }

    @app.post("/api/twin", response_model=Twin)
    def twin(request: TwinRequest) -> dict:
        pixels = lab.pixels(request)
        with lab.evaluating(request.checkpoint) as model:
            result = attack(model, pixels, request.method, request.eps)
            probs = probabilities(model, result.adversarial)
        return twin_answer(request.method, result, probs)

    app.include_router(growth_router(lab))  # GET /api/growth: the slider over epochs
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
