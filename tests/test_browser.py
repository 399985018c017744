"""Debian's Chromium, driven headless by Playwright, opens the report and the served page.

Screenshots land in tests/artifacts/ (git-ignored) so a person can look at what the browser saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serving import local_server

from netscope.run import Run

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (Python)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@contextmanager
def watched_page(browser) -> Iterator:
    """Yields a laptop-sized page and a list that collects console errors and page errors."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    try:
        yield page, problems
    finally:
        page.close()


def test_report_opens_offline_with_every_image(browser, lecture_run: Run, mnist, tmp_path):
    from test_report import add_analyses, make_run_copy

    from netscope.report import ReportConfig, write_report

    run_dir = make_run_copy(lecture_run, tmp_path / "run")
    add_analyses(run_dir)  # figures of an inspect.json and a lesson.json, and hostile strings
    path = write_report(run_dir, ReportConfig(), mnist)
    with watched_page(browser) as (page, problems):
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        loaded = page.evaluate(
            "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        page.screenshot(path=ARTIFACTS / "report.png")
        page.screenshot(path=ARTIFACTS / "report_full.png", full_page=True)
    assert len(loaded) == 5 and all(loaded)  # curves, confusion, mistakes, inspect, lesson
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests)


@contextmanager
def served_page(browser, run: Run, mnist) -> Iterator:
    """Yields (page, problems) with the web page of `run` loaded and its checkpoints listed."""
    from netscope.serve.app import create_app

    with local_server(create_app(run.path, mnist)) as url, watched_page(browser) as watched:
        page = watched[0]
        page.goto(url)
        page.wait_for_selector("#checkpoint option", state="attached")
        yield watched


def draw_seven(page) -> None:
    """Draws a 7 on the page's canvas with the mouse: a top bar, then a long diagonal."""
    box = page.locator("#canvas").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 80, y + 70)
    page.mouse.down()
    for i in range(10):
        page.mouse.move(x + 80 + 12 * i, y + 70)
    for i in range(13):
        page.mouse.move(x + 200 - 8 * i, y + 70 + 15 * i)
    page.mouse.up()


def prediction_changed(page, before: str) -> None:
    page.wait_for_function(
        "before => document.getElementById('prediction').textContent !== before", arg=before
    )


def test_served_page_draw_predict_and_fool(browser, lecture_run: Run, mnist):
    with served_page(browser, lecture_run, mnist) as (page, problems):
        unset = "Array.from(document.images).filter(i => !i.src).map(i => getComputedStyle(i)"
        before_drawing = page.evaluate(unset + ".visibility)")  # no broken-image icons
        page.screenshot(path=ARTIFACTS / "serve_start.png")
        draw_seven(page)
        page.wait_for_function("document.getElementById('prediction').dataset.class !== ''")
        page.wait_for_function("document.querySelectorAll('#features img').length === 9")
        predicted = page.locator("#prediction").get_attribute("data-class")
        page.wait_for_function("document.getElementById('explain-img').naturalWidth > 0")
        page.click("#twin-button")
        page.wait_for_function("document.getElementById('twin-prediction').dataset.class !== ''")
        twin = page.locator("#twin-prediction").get_attribute("data-class")
        difference = page.locator("#diff-caption").text_content()
        page.screenshot(path=ARTIFACTS / "serve_drawn.png", full_page=True)
        page.screenshot(path=ARTIFACTS / "serve_drawn_top.png")

        before = page.locator("#prediction").text_content()
        page.select_option("#checkpoint", "checkpoints/epoch_00.safetensors")
        prediction_changed(page, before)  # the untrained weights give another answer

        page.fill("#index", "0")
        before = page.locator("#prediction").text_content()
        page.click("#load")
        prediction_changed(page, before)
        page.select_option("#checkpoint", "model.safetensors")
        page.wait_for_function("document.getElementById('prediction').dataset.class === '7'")
        page.wait_for_function(
            "(img => img.dataset.target === '7' && !img.classList.contains('stale'))"
            "(document.getElementById('explain-img'))"
        )
        source = page.locator("#source").text_content()
        page.screenshot(path=ARTIFACTS / "serve_test_image.png")
    assert before_drawing and set(before_drawing) == {"hidden"}
    assert predicted == "7"  # what a person sees in the drawing
    assert difference.startswith("Difference") and "amplified" not in difference
    assert twin is not None and twin != predicted
    assert 'labelled "7"' in source
    assert problems == []


def test_page_reports_a_server_error_and_keeps_working(browser, lecture_run: Run, mnist):
    with served_page(browser, lecture_run, mnist) as (page, _problems):
        page.fill("#index", "99999")
        page.click("#load")
        page.wait_for_function("document.getElementById('status').textContent !== ''")
        status = page.locator("#status").text_content()
        page.fill("#index", "1")
        page.click("#load")
        page.wait_for_function("document.getElementById('prediction').dataset.class === '2'")
    assert status.startswith("422") and "index 99999" in status


@pytest.fixture(autouse=True, scope="module")
def _clean_old_artifacts():
    """Removes the screenshots of an earlier session, so that what is there is from this one."""
    for old in ARTIFACTS.glob("*.png") if ARTIFACTS.exists() else []:
        old.unlink()
