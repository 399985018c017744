"""The DCGAN, row-by-row LSTM and fact-table lessons (netscope.lessons.gan / rnn / scale) and the
lectures' data-set table, on the real MNIST data and the trained lecture CNN as judge."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from netscope.cli import main
from netscope.data import DATASET_FACTS, SPECS, format_dataset_table
from netscope.errors import NetscopeError
from netscope.lessons import gan, rnn, scale


class FixedLogits(nn.Module):
    """A 'classifier' whose answer for image i is class classes[i] with logit margin `margin`."""

    def __init__(self, classes: list[int], margin: float):
        super().__init__()
        self.classes = torch.tensor(classes)
        self.margin = margin

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        index = pixels[:, 0, 0, 0].round().long()  # the test writes each image's index there
        return nn.functional.one_hot(self.classes[index], 10).float() * self.margin


def indexed_images(n: int) -> torch.Tensor:
    images = torch.zeros(n, 1, 28, 28)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.float)
    return images


# ---------------------------------------------------------------- gan


def test_judge_scores_have_their_known_values():
    # Every class equally often, all certain: 10 classes, log2 10 bits, IS-like = 10.
    judge = FixedLogits([i % 10 for i in range(100)], margin=50.0)
    spread = gan.judge_images(judge, indexed_images(100))
    assert spread.class_counts == [10] * 10
    assert spread.confident_fraction == 1.0
    assert spread.entropy_bits == pytest.approx(math.log2(10), abs=1e-5)
    assert spread.inception_like == pytest.approx(10.0, rel=1e-3)
    # Always the same class, unsure: one class, 0 bits, IS-like = 1, nothing confident.
    judge = FixedLogits([3] * 100, margin=1.0)
    collapsed = gan.judge_images(judge, indexed_images(100))
    assert collapsed.classes_covered == 1 and collapsed.entropy_bits == 0.0
    assert collapsed.inception_like == pytest.approx(1.0, abs=1e-5)
    assert collapsed.confident_fraction == 0.0
    assert collapsed.mean_max_prob == pytest.approx(math.e / (math.e + 9), rel=1e-5)


def test_generator_and_discriminator_shapes_and_interpolation_ends():
    generator, discriminator = gan.make_gan(gan.GanConfig(latent=16, width=8))
    z = torch.randn(5, 16)
    images = gan.sample(generator, z)
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1
    assert discriminator(images).shape == (5,)
    path = gan.interpolate(generator, z[0], z[1], steps=7)
    assert path.shape == (7, 1, 28, 28)
    torch.testing.assert_close(path[0], images[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(path[-1], images[1], atol=1e-5, rtol=0)


def test_gan_config_rejects_bad_values():
    with pytest.raises(NetscopeError, match="epochs"):
        gan.GanConfig(epochs=0)
    with pytest.raises(NetscopeError, match="beta1"):
        gan.GanConfig(beta1=1.5)
    with pytest.raises(NetscopeError, match="train-limit"):
        gan.GanConfig(train_limit=10, batch_size=64)


def test_short_gan_training_draws_digits_the_judge_recognises(lecture_run, tmp_path):
    # 200 steps of 64 images: the judge (the trained lecture CNN) must be clearly more sure of
    # the generator's samples than of an untrained generator's, and see at least 8 digits.
    config = gan.GanConfig(epochs=1, train_limit=12_800, n_judge=500, progress=False)
    result = gan.run(tmp_path, judge=lecture_run, config=config)
    scores = result.numbers["scores"]
    trained, untrained = scores["DCGAN samples"], scores["untrained generator"]
    assert trained["mean_max_prob"] > untrained["mean_max_prob"] + 0.25
    assert trained["classes_covered"] >= 8
    assert scores["real test images"]["confident_fraction"] > 0.95  # the judge itself is good
    result.save(tmp_path)
    record = json.loads((tmp_path / "lesson.json").read_text())
    for figure in record["figures"]:
        assert (tmp_path / figure["file"]).stat().st_size > 10_000
        assert figure["title"] and figure["caption"]
    assert (tmp_path / "gan_samples.gif").exists()


# ---------------------------------------------------------------- rnn


def test_lstm_per_row_read_out_ends_in_its_prediction():
    model = rnn.RowLSTM(hidden=16)
    images = torch.rand(4, 1, 28, 28)
    probs = rnn.probabilities_by_rows(model, images)
    assert probs.shape == (4, 28, 10)
    torch.testing.assert_close(probs[:, -1], model(images).softmax(1))
    # The read-out after row h does not depend on the rows below h: the LSTM reads in order.
    changed = images.clone()
    changed[:, :, 20:] = 0
    torch.testing.assert_close(rnn.probabilities_by_rows(model, changed)[:, :20], probs[:, :20])


def test_rows_read_for_any_classifier_blanks_unread_rows(lecture_run, mnist):
    model = lecture_run.pixel_model()
    images = mnist.test_images[:3].float() / 255
    probs = rnn.probabilities_by_rows(model, images)
    torch.testing.assert_close(probs[:, -1], model(images).softmax(1))
    blank = model(torch.zeros(1, 1, 28, 28)).softmax(1)
    first_row_empty = images[:, :, 0].abs().sum() == 0  # MNIST's top row is background
    assert first_row_empty
    torch.testing.assert_close(probs[:, 0], blank.expand(3, -1))


def test_lstm_reaches_3_percent_test_error_within_its_default_budget(lecture_run, tmp_path):
    result = rnn.run(tmp_path, cnn_run=lecture_run.path)
    assert result.numbers["config"]["epochs"] == rnn.RnnConfig().epochs
    assert result.numbers["lstm_test_error_pct"] <= 3.0
    docs = (Path(__file__).parents[1] / "docs" / "generative.md").read_text()
    quoted = f"**{result.numbers['lstm_test_error_pct']:.2f} % test error**"
    assert quoted in docs  # the number docs/generative.md quotes is the one this run reaches
    cnn_error = result.numbers["cnn_test_error_pct"]
    assert cnn_error == pytest.approx(lecture_run.info["metrics"]["test_error_pct"], abs=0.01)
    for figure in result.figures:
        assert figure.file.stat().st_size > 10_000
    # what each example digit ends up read as is printed and, when wrong, said in the caption
    examples = [rnn.Reading(e["true"], e["read_as"], e["probability"])
                for e in result.numbers["examples"]]  # fmt: skip
    assert [e["test_index"] for e in result.numbers["examples"]] == [0, 7, 8, 18]
    assert "; ".join(e.describe() for e in examples) in result.summary[-1]
    for example in examples:
        assert (example.describe() in result.figures[0].caption) == example.wrong


def test_rows_read_figure_says_what_each_digit_is_read_as():
    classes = [str(d) for d in range(10)]
    probs = torch.full((2, 28, 10), 0.01)
    probs[0, :, 7] = 0.91  # a 7, read as 7 throughout
    probs[1, :, 5] = 0.91  # a 5, read as 5 until the last row makes it a 6
    probs[1, -1, 5], probs[1, -1, 6] = 0.2, 0.71
    labels = torch.tensor([7, 5])
    readings = rnn.final_readings(probs, labels, classes)
    described = [reading.describe() for reading in readings]
    assert described == ["true 7 → read as 7 (91 %)", "true 5 → read as 6 (71 %, wrong)"]
    figure = rnn.draw_rows_read(torch.zeros(2, 1, 28, 28), probs, labels, classes, "a title")
    titles = {ax.get_title(): ax.title.get_color() for ax in figure.axes if ax.get_title()}
    assert titles == {"true class: 7\nread as 7 (91 %)": "black",
                      "true class: 5\nread as 6 (71 %) ✗": "#cc0000"}  # fmt: skip
    plt.close(figure)


def test_rnn_config_rejects_bad_values():
    with pytest.raises(NetscopeError, match="hidden"):
        rnn.RnnConfig(hidden=0)


# ---------------------------------------------------------------- facts


def test_scale_figure_keeps_every_count_inside_its_panel():
    figure = scale.draw_brains(scale.BRAINS)
    figure.tight_layout()  # as save_png lays it out
    renderer = figure.canvas.get_renderer()
    labels = []
    for ax in figure.axes:
        panel = ax.get_window_extent(renderer)
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            assert panel.x0 <= box.x0 and box.x1 <= panel.x1, text.get_text()
            labels.append(text.get_text())
    assert "150 trillion" in labels  # the human neocortex's synapses, the longest bar
    plt.close(figure)


def test_scale_tables_print_the_published_counts(tmp_path):
    result = scale.run(tmp_path)
    text = "\n".join(result.summary)
    for expected in ("302", "86 billion", "Azevedo", "650,000", "Krizhevsky", "Intel 4004"):
        assert expected in text
    assert "2,300" in text and "80 billion" in text and "Moore" in text
    lecture = next(b for b in result.numbers["brains"] if b["name"] == "lecture CNN")
    # conv1 832 + conv2 51,264 + fc1 51,400 + fc2 2,010 weights; 24·24·32 + 4·4·64 + 200 + 10 units
    assert lecture["synapses"] == 105_506
    assert lecture["neurons"] == 24 * 24 * 32 + 4 * 4 * 64 + 200 + 10
    for figure in result.figures:
        assert figure.file.stat().st_size > 10_000


def test_data_list_prints_the_lectures_table(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert format_dataset_table() in out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "1998" in lines["MNIST"] and "70,000" in lines["MNIST"] and " mnist " in lines["MNIST"]
    assert "60,000" in lines["CIFAR-10"] and "32×32" in lines["CIFAR-10"]
    assert "cifar10" in lines["CIFAR-10"] and "Cordts" in lines["Cityscapes"]
    names = [f.name for f in DATASET_FACTS]
    for lecture_set in ("NORB", "Caltech 101", "Caltech 256", "LFW", "PASCAL VOC", "MS-COCO"):
        assert any(name.startswith(lecture_set) for name in names)
    assert all(f.key is None or f.key in SPECS for f in DATASET_FACTS)
