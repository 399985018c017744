"""The HTML report of the lecture run: self-contained, right numbers, analysis sections, escaping."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from netscope import demo
from netscope.demo import DemoConfig, run_demo
from netscope.errors import NetscopeError
from netscope.evaluate import find_mistakes
from netscope.report import write_report
from netscope.report.analyses import find_records, value_html
from netscope.report.html import esc, figure
from netscope.run import Run, load_run

HOSTILE = '<script>alert("x")</script>'


def make_run_copy(lecture_run: Run, folder: Path) -> Path:
    """Returns a copy of the lecture run (weights, record, metrics) to add analyses to."""
    folder.mkdir()
    for name in ("model.safetensors", "run.json", "metrics.jsonl"):
        shutil.copy(lecture_run.path / name, folder / name)
    return folder


def add_analyses(run_dir: Path) -> None:
    """Writes an inspect.json with a figure, hostile strings and a missing figure, a broken
    compare.json, and a lesson in a sub-folder (figures named by plain strings)."""
    Image.new("RGB", (40, 30), (200, 30, 30)).save(run_dir / "filters.png")
    record = {
        "figures": [
            {"file": "filters.png", "title": f"Filters {HOSTILE}", "caption": "look & see"},
            {"file": "gone.png", "title": "Missing one", "caption": ""},
        ],
        "layer": HOSTILE,
        "n_images": 16,
        "methods": {"saliency": {"seconds": 0.5, "n": 16}, "occlusion": {"seconds": 2.0, "n": 16}},
    }
    (run_dir / "inspect.json").write_text(json.dumps(record))
    (run_dir / "compare.json").write_text("{not json")
    for method, rate in (("deepfool", 1.0), ("fgsm", 0.85)):
        (run_dir / "attack" / method).mkdir(parents=True)
        record = {"method": method, "norm": "l2", "success_rate": rate, "figures": []}
        (run_dir / "attack" / method / "attack.json").write_text(json.dumps(record))
    lesson = run_dir / "lessons" / "xor"
    lesson.mkdir(parents=True)
    Image.new("RGB", (20, 20), (30, 30, 200)).save(lesson / "xor.png")
    (lesson / "lesson.json").write_text(
        json.dumps(
            {"name": "xor", "summary": ["one hidden layer solves XOR"], "figures": ["xor.png"]}
        )
    )


@pytest.fixture(scope="module")
def report(lecture_run: Run, mnist, tmp_path_factory) -> tuple[Path, str]:
    """The report `netscope demo` writes for a finished run (reused, not retrained)."""
    run_dir = make_run_copy(lecture_run, tmp_path_factory.mktemp("report") / "run")
    add_analyses(run_dir)
    path = run_demo(DemoConfig(out=str(run_dir), analyses=False), dataset=mnist)
    return path, path.read_text()


def test_report_is_one_self_contained_file(report):
    path, html = report
    assert path.name == "report.html" and path.parent.name == "run"
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert len(sources) >= 5  # curves, confusion, mistakes, the inspect figure, the lesson figure
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from a network
    assert "<link" not in html and "<script" not in html


def test_report_shows_the_run(report, lecture_run):
    _, html = report
    assert "105,506" in html  # the lecture CNN's parameter count
    assert f"{lecture_run.info['metrics']['test_error_pct']:.2f} %" in html
    assert html.count("<h2>") >= 5  # run, curves, errors, inspect, lesson
    epochs = len(lecture_run.metrics)
    curves = html.split('id="curves"')[1].split("</section>")[0]
    assert curves.count("<tr>") == epochs + 1  # header + one row per epoch


def test_errors_section_agrees_with_the_recorded_test_error(report, lecture_run):
    _, html = report
    errors = html.split('id="errors"')[1].split("</section>")[0]
    wrong = round(lecture_run.info["metrics"]["test_error_pct"] * 100)  # of 10,000 test images
    assert f"{wrong:,} / 10,000" in errors
    assert "Most confused pairs" in errors and "Example mistakes" in errors


def test_find_mistakes_returns_only_mistakes_most_confident_first(lecture_run, mnist):
    pixels = mnist.test_images[:2000].float() / 255
    labels = mnist.test_labels[:2000]
    mistakes = find_mistakes(lecture_run.pixel_model(), pixels, labels, k=8)
    predicted = lecture_run.pixel_model()(pixels).argmax(1)
    assert mistakes.total == int((predicted != labels).sum())
    assert (predicted[mistakes.indices] != labels[mistakes.indices]).all()
    assert (mistakes.predicted == predicted[mistakes.indices]).all()
    assert (mistakes.confidence.diff() <= 0).all()


def test_analysis_sections_appear_only_when_their_json_exists(report):
    _, html = report
    assert 'id="inspect"' in html and 'id="lesson"' in html
    assert 'id="fool"' not in html
    assert "compare.json could not be read" in html  # a broken file is named, not fatal
    assert "Lesson: xor" in html and "one hidden layer solves XOR" in html
    assert "gone.png is missing" in html
    # numbers: a dict of dicts becomes one table with a row per method
    assert "<th>seconds</th>" in html and "<td>occlusion</td>" in html


def test_attacks_get_one_summary_table_and_a_section_each(report):
    _, html = report
    summary = html.split('id="attacks"')[1].split("</section>")[0]
    assert "<th>success_rate</th>" in summary
    assert summary.count("<tr>") == 3  # header + deepfool + fgsm
    assert "Attack: deepfool (L2)" in html and "Attack: fgsm (L2)" in html


def test_user_strings_are_escaped(report):
    _, html = report
    assert HOSTILE not in html
    assert esc(HOSTILE) in html and "look &amp; see" in html


def test_a_huge_figure_in_a_run_is_embedded_without_reading_its_pixels(huge_png):
    assert figure(huge_png, title="huge").startswith("<figure><h3>huge</h3><img src=")


def test_value_html_tables_and_excerpts():
    assert value_html({"a": 1, "b": "x"}).count("<tr>") == 2
    assert "<th>1</th>" in value_html([[0.1, 0.2], [0.3, 0.4]])  # small matrix: a table
    assert value_html({"deep": {"er": {"still": [1]}}}).startswith("<pre>")


def test_find_records_looks_two_levels_deep(tmp_path):
    for folder in ("", "a", "a/b", "a/b/c"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "attack.json").write_text("{}")
    found = [p.relative_to(tmp_path).as_posix() for p in find_records(tmp_path, "attack.json")]
    assert found == ["attack.json", "a/attack.json", "a/b/attack.json"]


def test_report_cli_error_for_a_missing_run(tmp_path, capsys):
    from netscope.cli import main

    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_demo_evaluates_the_reused_run(report, lecture_run):
    path, _ = report
    evaluation = json.loads((path.parent / "evaluate" / "evaluation.json").read_text())
    assert evaluation["test_error_pct"] == pytest.approx(
        lecture_run.info["metrics"]["test_error_pct"]
    )
    assert evaluation["weights"]["finished"] and "note" not in evaluation["weights"]
    assert (path.parent / "evaluate" / "confusion.png").exists()


def test_demo_runs_analyses_skips_failing_ones_and_reuses_fresh_ones(
    lecture_run, tmp_path, monkeypatch, capsys
):
    calls = []

    def fake_inspect(out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "inspect.json").write_text(json.dumps({"figures": [], "size": 3}))
        calls.append(out)

    def failing_attack(out: Path) -> None:
        raise NetscopeError("this attack cannot run here")

    fakes = [
        demo.Analysis("inspect", "inspect.json", fake_inspect, "fake inspection"),
        demo.Analysis("attack/fake", "attack.json", failing_attack, "fake attack"),
    ]
    monkeypatch.setattr(demo, "analyses", lambda run, progress=True: fakes)
    run_dir = make_run_copy(lecture_run, tmp_path / "run")
    run = load_run(run_dir)
    demo.run_analyses(run, 3, 4)
    demo.run_analyses(run, 3, 4)
    err = capsys.readouterr().err
    assert len(calls) == 1  # the second time its output is newer than the weights
    assert json.loads((run_dir / "inspect" / "inspect.json").read_text())["size"] == 3
    assert "skipped: this attack cannot run here" in err
    assert "reusing" in err


def write_digit_folder(folder: Path, mnist, names: list[str], per_class: int = 12) -> Path:
    """Writes `per_class` real MNIST digits as 32×32 PNGs into folder/<name>/: class i gets
    digit i % 2, so that a third class is a second set of zeros and there are mistakes to show."""
    for i, name in enumerate(names):
        (folder / name).mkdir(parents=True)
        digits = mnist.train_images[mnist.train_labels == i % 2][i * per_class :]
        images = digits[:per_class, 0]
        for k, image in enumerate(images):
            Image.fromarray(image.numpy()).resize((32, 32)).save(folder / name / f"{k}.png")
    return folder


@pytest.mark.parametrize(
    "names",
    [["$\\alpha_$"], ["$x^2$", "$x^$"], ["$x^2$", "a_b\\c^d", "$\\undefined$ costs"]],
    ids=["1 class", "2 classes", "3 classes"],
)
def test_a_folder_with_few_classes_and_dollar_names_evaluates_and_reports(
    names, mnist, tmp_path, capsys
):
    from netscope.cli import main
    from netscope.config import recipe_config
    from netscope.train import train

    folder = write_digit_folder(tmp_path / "digits", mnist, names)
    config = recipe_config("lecture", data=str(folder), epochs=2, out=str(tmp_path / "run"))
    run = train(dataclasses.replace(config, progress=False, checkpoints=False))
    assert main(["evaluate", str(run.path), "--out", str(tmp_path / "eval")]) == 0
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert list(evaluation["per_class_error_pct"]) == sorted(names)
    assert all(t in names and p in names for t, p, _ in evaluation["most_confused"])
    html = write_report(run.path).read_text()
    for name in names:
        assert esc(name) in html
    pngs = [tmp_path / "eval" / "confusion.png"]
    pngs += [
        run.path / f for f in ("curves.png", "evaluate/confusion.png", "evaluate/mistakes.png")
    ]
    for png in pngs:
        with Image.open(png) as image:
            assert image.size[0] >= 800, png
    capsys.readouterr()
