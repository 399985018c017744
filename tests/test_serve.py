"""The web API of `netscope serve` on the lecture run: answers, checkpoints, clear 4xx errors,
each request its own answer under concurrency, and 429 with Retry-After under overload."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from itertools import cycle

import httpx
import pytest
import torch
from PIL import Image
from serving import local_server, page_image

from netscope.run import Run
from netscope.serve import HOST
from netscope.serve.app import REPLICAS, create_app

with warnings.catch_warnings():  # starlette's TestClient warns about httpx versions on import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client(lecture_run: Run, mnist) -> TestClient:
    return TestClient(create_app(lecture_run.path, mnist), base_url=f"http://{HOST}:8000")


@pytest.fixture(scope="module")
def seven(mnist) -> list:
    """Test image #0 (a 7) as the page sends it: 28×28 nested lists of pixels in [0, 1]."""
    assert mnist.test_labels[0] == 7
    return page_image(mnist, 0)


def png_size(uri: str) -> tuple[int, int]:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size


def test_info_lists_checkpoints_and_layers(client, lecture_run):
    info = client.get("/api/info").json()
    assert info["checkpoints"] == lecture_run.checkpoints()
    assert info["layers"] == [
        "conv1",
        "pool1",
        "relu1",
        "conv2",
        "pool2",
        "relu2",
        "fc1",
        "relu3",
        "fc2",
    ]
    assert info["image_shape"] == [1, 28, 28] and info["classes"] == [str(d) for d in range(10)]


def test_page_and_its_files_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_predict_matches_the_model_and_draws_every_layer(client, lecture_run, seven):
    body = client.post("/api/predict", json={"image": seven}).json()
    expected = lecture_run.pixel_model()(torch.tensor(seven)[None, None]).softmax(1)[0]
    assert body["predicted"] == 7
    assert torch.allclose(torch.tensor(body["probabilities"]), expected, atol=1e-5)
    shapes = {f["layer"]: f["shape"] for f in body["features"]}
    assert (
        shapes["conv1"] == [32, 24, 24] and shapes["pool2"] == [64, 2, 2] and shapes["fc2"] == [10]
    )
    for feature in body["features"]:
        assert min(png_size(feature["png"])) > 0


def test_predict_subset_of_layers(client, seven):
    body = client.post("/api/predict", json={"image": seven, "layers": ["relu1"]}).json()
    assert [f["layer"] for f in body["features"]] == ["relu1"]
    assert body["features"][0]["cmap"] == "magma"  # after a ReLU: no negative values


def test_checkpoints_switch_the_weights(client, seven):
    def probs(checkpoint):
        body = {"image": seven, "checkpoint": checkpoint, "layers": []}
        return client.post("/api/predict", json=body).json()["probabilities"]

    untrained = probs("checkpoints/epoch_00.safetensors")
    final = probs("model.safetensors")
    assert final[7] > 0.99
    assert max(untrained) < 0.5  # random initial weights: no confident answer yet


def test_test_image_endpoint(client, seven):
    body = client.get("/api/test-image", params={"index": 0}).json()
    assert body["label"] == 7 and body["image"] == [seven]


@pytest.mark.parametrize("method", ["saliency", "occlusion"])
def test_explain_returns_a_map_for_the_predicted_class(client, seven, method):
    body = client.post("/api/explain", json={"image": seven, "method": method}).json()
    assert body["target"] == 7 and body["method"] == method
    assert png_size(body["png"]) == (28 * 8, 28 * 8)


def test_deepfool_twin_changes_the_class_with_a_small_change(client, seven):
    body = client.post("/api/twin", json={"image": seven, "method": "deepfool"}).json()
    assert body["original"] == 7 and body["success"] and body["predicted"] != 7
    twin = torch.tensor(body["image"])
    assert twin.shape == (1, 28, 28) and 0 <= twin.min() and twin.max() <= 1
    change = twin - torch.tensor(seven)
    assert math.isclose(body["l2"], change.norm().item(), rel_tol=1e-4)
    assert body["l2"] < 0.3 * torch.tensor(seven).norm().item()  # far smaller than the digit
    assert png_size(body["difference_png"]) == (28 * 8, 28 * 8)


def test_fgsm_twin_stays_within_eps(client, seven):
    body = client.post("/api/twin", json={"image": seven, "method": "fgsm", "eps": 0.1}).json()
    assert body["method"] == "fgsm" and body["linf"] <= 0.1 + 1e-6


def test_the_page_offers_every_per_image_attack_of_the_registry(client, seven):
    """The twin's attacks come from netscope.attack.ATTACKS: a registered attack appears on the
    page without touching serve/; each answers with a twin inside the pixel box."""
    from netscope.attack import ATTACKS

    offered = client.get("/api/info").json()["attacks"]
    assert [a["name"] for a in offered] == [n for n, s in ATTACKS.items() if s.per_image]
    assert {a["name"]: a["budget"] for a in offered}["pgd"] is True
    for attack in offered:
        body = client.post("/api/twin", json={"image": seven, "method": attack["name"]}).json()
        twin = torch.tensor(body["image"])
        assert body["method"] == attack["name"] and 0 <= twin.min() and twin.max() <= 1
        if attack["budget"]:
            assert body["linf"] <= 0.2 + 1e-6  # the default ε, in the attack's L∞ norm


BAD_REQUESTS = [
    ("/api/predict", {"image": [[0.5] * 28] * 27}, 422, "expected 1×28×28"),
    ("/api/predict", {"image": [[0.5] * 28] * 28 + [[0.5]]}, 422, "rows of different lengths"),
    ("/api/predict", {"image": [[1.5] * 28] * 28}, 422, "[0, 1]"),
    ("/api/predict", {"image": [[-0.1] * 28] * 28}, 422, "[0, 1]"),
    ("/api/predict", {"image": [[float("nan")] * 28] * 28}, 422, "NaN"),
    ("/api/predict", {"image": [["white"] * 28] * 28}, 422, "expected numbers"),
    ("/api/predict", {"image": [[True] * 28] * 28}, 422, "expected numbers"),
    ("/api/predict", {"image": [[[0.5] * 28] * 28] * 3}, 422, "expected 1×28×28"),
    ("/api/predict", {"pixels": []}, 422, "image"),
    ("/api/predict", {"image": None, "layers": ["conv1"]}, 422, "image"),
    ("/api/predict", {"image": "SEVEN", "layers": ["conv9"]}, 422, "conv9"),
    ("/api/predict", {"image": "SEVEN", "checkpoint": "epoch_99"}, 404, "unknown checkpoint"),
    ("/api/predict", {"image": "SEVEN", "checkpoint": "../../run.json"}, 404, "unknown checkpoint"),
    ("/api/explain", {"image": "SEVEN", "method": "gradcam"}, 422, "saliency"),
    ("/api/explain", {"image": "SEVEN", "target": 10}, 422, "target 10"),
    ("/api/twin", {"image": "SEVEN", "method": "cw"}, 422, "deepfool"),
    ("/api/twin", {"image": "SEVEN", "method": "fgsm", "eps": 0}, 422, "eps"),
    ("/api/twin", {"image": "SEVEN", "method": "fgsm", "eps": 3}, 422, "eps"),
    # NaN and Infinity (which JSON cannot carry, but Python's json writes) in every field
    ("/api/twin", {"image": "SEVEN", "method": "fgsm", "eps": float("nan")}, 422, "eps: "),
    ("/api/twin", {"image": "SEVEN", "method": "fgsm", "eps": float("inf")}, 422, "eps: "),
    ("/api/twin", {"image": "SEVEN", "method": "fgsm", "eps": -float("inf")}, 422, "eps: "),
    ("/api/explain", {"image": "SEVEN", "target": float("nan")}, 422, "target: "),
    ("/api/explain", {"image": "SEVEN", "target": float("inf")}, 422, "target: "),
    ("/api/explain", {"image": "SEVEN", "target": -1}, 422, "target: "),
    ("/api/predict", {"image": "SEVEN", "checkpoint": float("nan")}, 422, "checkpoint: "),
    ("/api/predict", {"image": "SEVEN", "layers": [float("nan")]}, 422, "layers.0: "),
    ("/api/predict", {"image": float("nan")}, 422, "image: "),
    ("/api/predict", {"image": [[float("inf")] * 28] * 28}, 422, "image: contains NaN or infinity"),
    ("/api/predict", {"image": [[1e300] * 28] * 28}, 422, "image: pixels must lie in [0, 1]"),
    # the work one request may ask for is bounded
    ("/api/predict", {"image": "SEVEN", "layers": ["conv1", "conv1"]}, 422, "named twice"),
    ("/api/predict", {"image": "SEVEN", "layers": ["fc2"] * 4000}, 422, "named twice"),
    ("/api/predict", {"image": "SEVEN", "checkpoint": "x" * 1000}, 422, "checkpoint: "),
]


@pytest.mark.parametrize("path, body, status, message", BAD_REQUESTS)
def test_bad_requests_get_a_clear_4xx(client, seven, path, body, status, message):
    body = {k: (seven if v == "SEVEN" else v) for k, v in body.items()}
    # json.dumps writes NaN (as browsers cannot, but other clients may); httpx's json= refuses to
    response = client.post(
        path, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert message in str(response.json()["detail"])


@pytest.mark.parametrize("index", ["-1", "10000", "seven", "nan", "inf", "1e400"])
def test_bad_test_image_index(client, index):
    response = client.get("/api/test-image", params={"index": index})
    assert response.status_code == 422 and "index" in str(response.json()["detail"])


def test_oversized_body_is_refused_and_the_server_keeps_serving(client, seven):
    response = client.post(
        "/api/predict",
        content=b"[" + b"0," * 2_000_000 + b"0]",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert client.post("/api/predict", json={"image": seven}).json()["predicted"] == 7


def test_serve_binds_to_localhost_only_and_says_so(lecture_run, monkeypatch, capsys):
    import uvicorn

    import netscope.serve
    from netscope.serve import ServeConfig, serve

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.update(kwargs))
    # the server process caps glibc's malloc arenas; this test process keeps its own
    monkeypatch.setattr(netscope.serve, "cap_malloc_arenas", lambda: calls.update(capped=True))
    serve(lecture_run.path, ServeConfig(port=8123))
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123 and calls["capped"]
    assert "127.0.0.1 only" in capsys.readouterr().err


def test_bad_port_is_a_netscope_error():
    from netscope.errors import NetscopeError
    from netscope.serve import ServeConfig

    with pytest.raises(NetscopeError, match="--port"):
        ServeConfig(port=70000)


CONCURRENT_KINDS = [  # a mix of every model endpoint, cheap enough for a few hundred requests
    ("/api/predict", {}),
    ("/api/explain", {"method": "saliency"}),
    ("/api/twin", {"method": "fgsm", "eps": 0.1}),
    ("/api/predict", {"layers": ["conv2", "relu3"]}),
    ("/api/explain", {"method": "saliency", "target": 3}),
    ("/api/twin", {"method": "deepfool"}),
]


async def send_together(url: str, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    """Returns the responses to `requests`, all sent at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in requests))


def test_concurrent_requests_each_get_their_own_answer(lecture_run, mnist):
    requests = [
        (path, {"image": page_image(mnist, i), **extra})
        for i, (path, extra) in zip(range(210), cycle(CONCURRENT_KINDS))
    ]
    app = create_app(lecture_run.path, mnist, max_active=len(requests))  # all inside at once
    with local_server(app) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            alone = [client.post(path, json=body) for path, body in requests]
        together = asyncio.run(send_together(url, requests))
    assert [r.status_code for r in alone] == [200] * len(requests)
    assert Counter(r.status_code for r in together) == {200: len(requests)}
    differ = [i for i, (a, b) in enumerate(zip(alone, together)) if a.json() != b.json()]
    assert differ == []  # every answer, bit for bit, the one the request gets when served alone


def test_overload_gets_429_with_retry_after_and_never_a_5xx(lecture_run, mnist, seven):
    app = create_app(lecture_run.path, mnist, max_active=3)
    body = {"image": seven, "layers": ["fc2"]}
    with local_server(app) as url, ThreadPoolExecutor(12) as pool:
        alone = httpx.post(f"{url}api/predict", json=body).json()
        busy = ExitStack()
        for _ in range(REPLICAS):  # every copy of the model is busy: three requests get in, wait
            busy.enter_context(app.state.lab.evaluating("model.safetensors"))
        with busy:
            futures = [pool.submit(httpx.post, f"{url}api/predict", json=body) for _ in range(12)]
            deadline = time.monotonic() + 60
            while sum(f.done() for f in futures) < 9 and time.monotonic() < deadline:
                time.sleep(0.02)
        responses = [f.result() for f in futures]
        retried = httpx.post(f"{url}api/predict", json=body)
    assert Counter(r.status_code for r in responses) == {200: 3, 429: 9}
    for response in responses:
        if response.status_code == 429:
            assert response.headers["retry-after"] == "1" and "busy" in response.json()["detail"]
        else:
            assert response.json() == alone
    assert retried.status_code == 200 and retried.json() == alone
