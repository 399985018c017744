"""Results that show themselves: each draws the figure its own `plot_*` draws, prints a one-line
summary as its repr, and `netscope.show` writes any of them (or bare tensors) as a PNG."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from PIL import Image

import netscope
from netscope.attack import fgsm, fooling_images, universal_perturbation
from netscope.attack.plots import plot_attack_examples
from netscope.compare import CompareConfig, compare_models
from netscope.display import draw, join_pngs, show
from netscope.errors import NetscopeError
from netscope.evaluate import evaluate, save_confusion_png
from netscope.inspect import class_models, morph, occlusion, top_patches
from netscope.inspect.projection import top_projections
from netscope.lessons import run_lesson

DIGITS = [str(k) for k in range(10)]


@pytest.fixture(scope="module")
def pixels(mnist):
    return mnist.test_images[:40].float() / 255, mnist.test_labels[:40]


def picture(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_an_attack_shows_its_own_figure_and_a_one_line_summary(lecture, pixels, tmp_path):
    images, labels = pixels
    result = fgsm(lecture, images, labels, eps=0.15)
    plot_attack_examples(result, DIGITS, tmp_path / "direct.png")
    assert result._repr_png_() == (tmp_path / "direct.png").read_bytes()  # the same figure
    metrics = result.metrics()
    fooled = round(metrics["success_rate"] * metrics["n_attacked"])
    line = repr(result)
    assert "\n" not in line and line.startswith("AttackResult(fgsm")
    assert f"fooled {fooled} of {metrics['n_attacked']} correctly classified" in line
    assert f"median ‖r‖₂ {metrics['l2_median']:.2f}" in line


def test_every_result_draws_a_figure_and_says_what_it_found(lecture_run, lecture, mnist, pixels):
    images, labels = pixels
    shape = lecture_run.image_shape
    results = [
        fooling_images(lecture, shape, [3, 7], steps=30),
        universal_perturbation(lecture, images[:16], xi=4.0, max_passes=1),
        top_patches(lecture, images, "conv2", k=4),
        class_models(lecture, [0, 1, 2], shape, steps=10),
        morph(lecture, images[:2], [8, 1], steps=10, frames=3),
        evaluate(lecture, images, labels, lecture_run.classes),
        lecture_run,
        top_projections(lecture, images, "conv2", k=4, units=[0, 1]),
    ]
    for result in results:
        line = repr(result)
        assert "\n" not in line and line.startswith(type(result).__name__ + "("), line
        image = picture(result._repr_png_())
        assert image.width >= 400 and image.height >= 250, type(result).__name__
    fooling, universal, top, models, path, evaluation, run, projections = results
    assert f"{int(fooling.success().sum())} classified as their class" in repr(fooling)
    assert f"changes {100 * universal.fooling_rate:.1f} % of the 16 images" in repr(universal)
    assert repr(top) == "TopPatches(conv2: 64 units × top 4, receptive field 19×19)"
    assert f"from {float(models.probability.min()):.3f}" in repr(models)
    reached = int((path.final_prediction() == path.targets).sum())
    assert f"{reached} of 2 end as their target class" in repr(path)
    assert f"test error {evaluation.test_error_pct:.2f} %" in repr(evaluation)
    assert f"test error {run.info['metrics']['test_error_pct']:.2f} %" in repr(run)
    assert repr(projections).startswith("Projections(conv2: 2 units × top 4 by deconvnet")


def test_an_evaluation_shows_its_confusion_matrix(lecture, pixels, tmp_path):
    images, labels = pixels
    evaluation = evaluate(lecture, images, labels, DIGITS)
    save_confusion_png(evaluation, tmp_path / "confusion.png")
    assert evaluation._repr_png_() == (tmp_path / "confusion.png").read_bytes()


def test_a_run_shows_a_table_with_its_curves_and_a_new_run_only_text(lecture_run):
    table = lecture_run._repr_html_()
    error = lecture_run.info["metrics"]["test_error_pct"]
    assert f"{error:.2f} %" in table and "10 of 10" in table
    assert table.count("data:image/png;base64,") == 1  # the training curves
    untrained = dataclasses.replace(
        lecture_run, metrics=[], info={**lecture_run.info, "metrics": {}, "epochs_done": 0}
    )
    assert "not trained yet" in repr(untrained)
    assert untrained._repr_png_() is None  # Jupyter falls back to the text
    assert "base64" not in untrained._repr_html_()


def test_a_comparison_shows_both_heat_maps_side_by_side(lecture, pixels):
    images, _ = pixels
    config = CompareConfig(folds=2, progress=False)
    layers = ["relu2", "relu3"]
    comparison = compare_models(lecture, lecture, images[:30], layers, layers, config=config)
    assert comparison.cka.diagonal().tolist() == pytest.approx([1.0, 1.0])
    line = repr(comparison)
    assert "2 layers of A × 2 of B on 30 images" in line and "CKA 0." in line
    image = picture(comparison._repr_png_())
    assert image.width > 1.6 * image.height  # two square-ish maps next to each other


def test_a_lesson_shows_its_findings_and_every_figure(tmp_path):
    lesson = run_lesson("perceptron", tmp_path)
    page = lesson._repr_html_()
    assert all(line in page for line in lesson.summary)  # no line holds a character to escape
    assert page.count("data:image/png;base64,") == len(lesson.figures) == 1
    assert repr(lesson).startswith("LessonResult(perceptron: separable data")
    assert repr(lesson).endswith("; 1 figure)")
    with Image.open(lesson.figures[0].file) as figure:
        assert picture(lesson._repr_png_()).width <= figure.width


def test_join_pngs_trims_white_and_stacks(tmp_path):
    for name, size in (("a", (50, 30)), ("b", (20, 40))):
        image = Image.new("RGB", (size[0] + 40, size[1] + 40), "white")
        image.paste((200, 0, 0), (20, 20, 20 + size[0], 20 + size[1]))
        image.save(tmp_path / f"{name}.png")
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    with Image.open(join_pngs(files, tmp_path / "across.png", margin=2)) as joined:
        assert joined.size == (54 + 24, 44)
    with Image.open(join_pngs(files, tmp_path / "down.png", across=False, margin=2)) as joined:
        assert joined.size == (54, 34 + 44)


def test_show_writes_a_png_where_asked_or_to_a_temporary_file(lecture, pixels, tmp_path, capsys):
    images, labels = pixels
    result = fgsm(lecture, images[:8], labels[:8], eps=0.1)
    assert show(result, tmp_path / "attack.png") == tmp_path / "attack.png"
    assert (tmp_path / "attack.png").read_bytes() == result._repr_png_()
    written = show(images[:5], titles=["a", "b", "c", "d", "e"])
    assert str(written) in capsys.readouterr().err
    assert picture(written.read_bytes()).width >= 400
    written.unlink()
    assert netscope.show is show


def test_show_opens_the_file_only_when_asked(monkeypatch, pixels, tmp_path):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    show(pixels[0][:2], tmp_path / "two.png")
    assert opened == []
    show(pixels[0][:2], tmp_path / "two.png", open=True)
    assert opened == [(tmp_path / "two.png").resolve().as_uri()]


def test_show_draws_maps_under_their_images(lecture, pixels, tmp_path):
    images, labels = pixels
    maps = occlusion(lecture, images[:3], labels[:3], stride=4)
    with_images = picture(draw(maps, tmp_path / "maps.png", images=images[:3]).read_bytes())
    alone = picture(draw(images[:3], tmp_path / "images.png").read_bytes())
    assert with_images.height > 1.5 * alone.height  # a row of images and a row of maps
    signed = torch.randn(3, 28, 28)
    draw(signed, tmp_path / "signed.png", images=images[:3], label="signed map")


def test_show_refuses_what_it_cannot_draw(pixels, tmp_path):
    images, _ = pixels
    with pytest.raises(NetscopeError, match="cannot draw a dict"):
        show({"a": 1}, tmp_path / "x.png")
    with pytest.raises(NetscopeError, match=r"maps of shape \(2, 28, 28\) do not fit images"):
        show(torch.zeros(2, 28, 28), tmp_path / "x.png", images=images[:3])
    with pytest.raises(NetscopeError, match="expected images N×C×H×W"):
        show(torch.zeros(2, 5, 28, 28), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
