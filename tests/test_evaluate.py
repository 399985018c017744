"""Evaluation: confusion matrix and per-class errors on a case with a known answer, and the PNG."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from netscope.evaluate import error_pct, evaluate, predict, save_confusion_png


class FixedAnswers(nn.Module):
    """Predicts class `answers[i]` for an input whose first pixel is i."""

    def __init__(self, answers: list[int], n_classes: int = 3):
        super().__init__()
        self.table = torch.eye(n_classes)[answers]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.table[inputs.flatten(1)[:, 0].long()]


def test_confusion_and_per_class_errors_known_answer():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    answers = [0, 1, 1, 1, 0, 2]  # one 0->1 mistake, one 1->0 mistake
    inputs = torch.arange(6).float().view(6, 1, 1, 1)
    result = evaluate(FixedAnswers(answers), inputs, labels, ["a", "b", "c"])
    assert result.confusion.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert result.test_error_pct == pytest.approx(100 * 2 / 6)
    assert result.per_class_error_pct == pytest.approx([50.0, 100 / 3, 0.0])
    assert sorted(result.most_confused()) == [("a", "b", 1), ("b", "a", 1)]


def test_confusion_png_is_written(lecture_run, mnist, tmp_path):
    inputs = mnist.normalize(mnist.test_images[:2000])
    result = evaluate(lecture_run.model, inputs, mnist.test_labels[:2000], mnist.classes)
    assert result.confusion.sum() == 2000
    path = save_confusion_png(result, tmp_path / "confusion.png")
    with Image.open(path) as image:
        assert image.size[0] >= 800 and image.size[1] >= 700


def test_error_pct_is_exact_at_a_target_boundary():
    # 60 wrong of 10 000 must compare <= 0.6 (a float32 mean gives 0.6000000052)
    labels = torch.zeros(10_000, dtype=torch.long)
    logits = torch.zeros(10_000, 10)
    logits[:60, 1] = 1.0
    assert error_pct(logits, labels) == 0.6


@pytest.mark.parametrize("n_classes", [1, 2, 3])
def test_one_two_or_three_classes_evaluate_and_draw(n_classes, tmp_path):
    labels = torch.arange(6) % n_classes
    answers = labels.tolist()
    answers[0] = (answers[0] + 1) % n_classes  # one mistake 0 -> 1 (none with one class)
    classes = ["a", "b", "c"][:n_classes]
    inputs = torch.arange(6).float().view(6, 1, 1, 1)
    result = evaluate(FixedAnswers(answers, n_classes), inputs, labels, classes)
    assert result.most_confused() == ([] if n_classes == 1 else [("a", "b", 1)])
    assert result.as_dict()["most_confused"] == result.most_confused()
    with Image.open(save_confusion_png(result, tmp_path / "confusion.png")) as image:
        assert image.size[0] >= 800


def test_predict_gives_each_module_its_own_training_flag_back():
    """A new wrapper is in training mode around a network in eval mode: predicting must neither
    leave the network training (its BatchNorm statistics would move at the next forward) nor
    update them while it predicts."""
    from netscope.models import Normalized

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.LazyLinear(3))
    net(torch.rand(4, 1, 6, 6))
    net.eval()
    model = Normalized(net, (0.5,), (0.25,))
    mean = net[1].running_mean.clone()
    predict(model, torch.rand(5, 1, 6, 6))
    assert model.training and not net.training and not net[1].training
    assert torch.equal(net[1].running_mean, mean)
