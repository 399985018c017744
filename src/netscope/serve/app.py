"""The web app behind `netscope serve`: a JSON API over one run directory, and the static page.

    GET  /api/info          classes, image shape, checkpoints, layers
    GET  /api/test-image    ?index=N: a test image's pixels and label
    POST /api/predict       class probabilities and every layer's feature maps
    POST /api/explain       saliency or occlusion map (netscope.inspect)
    POST /api/twin          adversarial twin by DeepFool or FGSM (netscope.attack)

Every request is checked (image size, type, value range, checkpoint, index); a bad one gets a
4xx with `{"detail": "what is wrong"}` and the server carries on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import torch
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from torch import nn

from netscope.data import Dataset
from netscope.errors import NetscopeError
from netscope.run import Run, load_run
from netscope.serve.render import difference_uri, feature_grid, heat_uri, pixels_uri, png_uri
from netscope.serve.schema import (
    MAX_BODY_BYTES,
    ExplainRequest,
    ImageRequest,
    PredictRequest,
    TwinRequest,
    bad_request,
    to_pixels,
)

STATIC = Path(__file__).parent / "static"
SKIPPED_LAYERS = (nn.Flatten, nn.Identity, nn.Dropout)  # outputs that only repeat their input


class Lab:
    """One run directory's models (loaded per checkpoint on demand, a few kept) and test set."""

    def __init__(self, run_dir: str | Path, dataset: Dataset | None = None, keep: int = 4):
        self.run: Run = load_run(run_dir)
        self._dataset = dataset
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.checkpoints = self.run.checkpoints()
        self.layers = shown_layers(self.run.model, self.run.image_shape)
        self._models: OrderedDict[str, nn.Module] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    def model(self, checkpoint: str) -> nn.Module:
        """Returns the pixel-space model with `checkpoint`'s weights, or raises a 404."""
        if checkpoint not in self.checkpoints:
            raise bad_request(
                f"unknown checkpoint {checkpoint!r} (this run has: {', '.join(self.checkpoints)})",
                404,
            )
        with self._lock:
            if checkpoint not in self._models:
                run = load_run(self.run.path, checkpoint)
                self._models[checkpoint] = run.pixel_model().to(self.device)
                if len(self._models) > self._keep:
                    self._models.popitem(last=False)
            self._models.move_to_end(checkpoint)
            return self._models[checkpoint]

    def pixels(self, request: ImageRequest) -> torch.Tensor:
        """Returns the request's image as a checked 1×C×H×W tensor on the models' device."""
        return to_pixels(request.image, self.run.image_shape).to(self.device)

    def chosen_layers(self, layers: list[str] | None) -> list[str]:
        """Returns the requested layers (default: all), or raises a 422 naming the valid ones."""
        unknown = [name for name in layers or [] if name not in self.layers]
        if unknown:
            raise bad_request(
                f"unknown layer {unknown[0]!r} (valid layers: {', '.join(self.layers)})"
            )
        return self.layers if layers is None else layers

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


def feature_maps(model: nn.Module, pixels: torch.Tensor, layers: list[str]) -> list[dict]:
    """Returns each layer's output on one image as a picture with its shape and colour scale."""
    from netscope.inspect import activations

    outputs = activations(model, pixels, layers)
    maps = []
    for name in layers:
        grid, scale = feature_grid(outputs[name][0])
        maps.append(
            {"layer": name, "shape": list(outputs[name].shape[1:]), "png": png_uri(grid), **scale}
        )
    return maps


def explanation(model: nn.Module, pixels: torch.Tensor, method: str, target: int) -> dict:
    """Returns the saliency or occlusion map of one image for class `target`, as a picture."""
    from netscope.inspect import occlusion, saliency

    if method == "saliency":
        values = saliency(model, pixels, target)[0]
        high = max(float(values.max()), 1e-12)
        return {"png": heat_uri(values, "inferno", 0.0, high), "low": 0.0, "high": high}
    values = occlusion(model, pixels, target)[0]
    return {"png": heat_uri(values, "viridis", 0.0, 1.0), "low": 0.0, "high": 1.0}


def adversarial_twin(model: nn.Module, pixels: torch.Tensor, method: str, eps: float) -> dict:
    """Returns the DeepFool or FGSM twin of one image: its prediction, picture and difference."""
    from netscope.attack import deepfool, fgsm

    with torch.no_grad():
        label = model(pixels).argmax(1)
    result = (
        deepfool(model, pixels, label) if method == "deepfool" else fgsm(model, pixels, label, eps)
    )
    difference, gain = difference_uri(result.perturbation[0])
    change = result.perturbation[0].flatten()
    return {
        "method": method,
        "original": int(result.original_pred[0]),
        "predicted": int(result.adversarial_pred[0]),
        "probabilities": probabilities(model, result.adversarial),
        "success": bool(result.success[0]),
        "adversarial_png": pixels_uri(result.adversarial[0], scale=8),
        "difference_png": difference,
        "gain": gain,
        "l2": float(change.norm()),
        "linf": float(change.abs().max()),
        "image": result.adversarial[0].cpu().tolist(),
    }


def create_app(run_dir: str | Path, dataset: Dataset | None = None) -> FastAPI:
    """Returns the FastAPI app serving the page and the API for the run in `run_dir` (pass the
    run's `dataset` when it is loaded already; otherwise the first test image request loads it)."""
    lab = Lab(run_dir, dataset)
    app = FastAPI(title="netscope", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.lab = lab

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(
                {"detail": f"request body of {length} bytes is too large (max {MAX_BODY_BYTES})"},
                status_code=413,
            )
        return await call_next(request)

    @app.exception_handler(NetscopeError)
    async def netscope_error(_request: Request, err: NetscopeError):
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
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
            "test_size": run.info["data"].get("test_size"),
            "test_error_pct": run.info.get("metrics", {}).get("test_error_pct"),
        }

    @app.get("/api/test-image")
    def test_image(index: int = Query(..., description="index into the test set")) -> dict:
        images, labels = lab.test_set()
        if not 0 <= index < len(images):
            raise bad_request(f"index {index}: expected 0 .. {len(images) - 1}")
        return {
            "index": index,
            "label": int(labels[index]),
            "image": (images[index].float() / 255).tolist(),
        }

    @app.post("/api/predict")
    def predict(request: PredictRequest) -> dict:
        model, pixels = lab.model(request.checkpoint), lab.pixels(request)
        layers = lab.chosen_layers(request.layers)
        probs = probabilities(model, pixels)
        return {
            "checkpoint": request.checkpoint,
            "probabilities": probs,
            "predicted": max(range(len(probs)), key=probs.__getitem__),
            "features": feature_maps(model, pixels, layers) if layers else [],
        }

    @app.post("/api/explain")
    def explain(request: ExplainRequest) -> dict:
        model, pixels = lab.model(request.checkpoint), lab.pixels(request)
        n_classes = len(lab.run.classes)
        target = request.target
        if target is None:
            target = max(range(n_classes), key=probabilities(model, pixels).__getitem__)
        if not 0 <= target < n_classes:
            raise bad_request(f"target {target}: expected a class index 0 .. {n_classes - 1}")
        return {
            "method": request.method,
            "target": target,
            **explanation(model, pixels, request.method, target),
        }

    @app.post("/api/twin")
    def twin(request: TwinRequest) -> dict:
        model, pixels = lab.model(request.checkpoint), lab.pixels(request)
        return adversarial_twin(model, pixels, request.method, request.eps)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
