"""The web page's slider over epochs: GET /api/growth on the lecture run, and the card in a real
browser (Debian's Chromium through Playwright, as tests/test_browser.py drives it)."""

from __future__ import annotations

import base64
import io
import warnings

import pytest
from PIL import Image
from test_browser import ARTIFACTS, CHROMIUM, browser, served_page  # noqa: F401 (fixture)

from netscope.serve import HOST
from netscope.serve.growth import UNITS

with warnings.catch_warnings():  # starlette's TestClient warns about httpx versions on import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client(lecture_run, mnist) -> TestClient:
    from netscope.serve.app import create_app

    return TestClient(create_app(lecture_run.path, mnist), base_url=f"http://{HOST}:8000")


def picture(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_growth_answers_per_checkpoint_with_the_same_units(client):
    first = client.get("/api/growth", params={"checkpoint": "checkpoints/epoch_00.safetensors"})
    last = client.get("/api/growth", params={"checkpoint": "checkpoints/epoch_10.safetensors"})
    assert first.status_code == last.status_code == 200
    first, last = first.json(), last.json()
    assert (first["epoch"], last["epoch"]) == (0, 10)
    assert first["filters"]["layer"] == "conv1"
    assert picture(first["filters"]["png"]).size == (8 * 47, 8 * 23)  # 8×4 kernels of 5×5, gaps
    assert first["filters"]["png"] != last["filters"]["png"]
    assert first["filters"]["limit"] < last["filters"]["limit"]  # the weights grow
    units = [(u["layer"], u["unit"]) for u in first["units"]]
    assert units == [(u["layer"], u["unit"]) for u in last["units"]]
    assert [layer for layer, _ in units] == ["conv1"] * UNITS + ["conv2"] * UNITS
    assert all(a["value"] < b["value"] for a, b in zip(first["units"], last["units"]))
    for unit in last["units"]:
        assert picture(unit["patch_png"]).size == picture(unit["projection_png"]).size
    final = client.get("/api/growth").json()
    assert final["epoch"] is None and final["units"] == last["units"]  # epoch 10 is the final


def test_growth_of_an_unknown_checkpoint_is_a_404_naming_them(client):
    response = client.get("/api/growth", params={"checkpoint": "checkpoints/epoch_99.safetensors"})
    assert response.status_code == 404
    assert "checkpoints/epoch_00.safetensors" in response.json()["detail"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium")
def test_the_slider_shows_each_epoch(browser, lecture_run, mnist):  # noqa: F811
    with served_page(browser, lecture_run, mnist) as (page, problems):
        page.wait_for_function("document.querySelectorAll('#growth-view img').length === 13")
        assert page.locator("#growth-label").text_content() == "10"
        final_filters = page.locator("#growth-view img").first.get_attribute("src")
        page.locator("#growth-epoch").fill("0")
        page.wait_for_function("document.getElementById('growth-label').textContent === '0'")
        page.wait_for_function(
            "src => document.querySelector('#growth-view img').src !== src", arg=final_filters
        )
        page.locator("#growth-card").screenshot(path=ARTIFACTS / "serve_growth_epoch0.png")
        page.locator("#growth-epoch").fill("2")
        page.wait_for_function("document.getElementById('growth-label').textContent === '2'")
        page.wait_for_timeout(1500)
        page.locator("#growth-card").screenshot(path=ARTIFACTS / "serve_growth_epoch2.png")
    assert problems == []
