"""Unit feature visualisation: the known optimum of a linear unit, optima that beat every test
image, diversity, directions, the Fourier parameterisation, and the model left as it was."""

from __future__ import annotations

import pytest
import torch

from netscope.errors import NetscopeError
from netscope.inspect import top_patches
from netscope.inspect.fourier import from_spectrum, to_spectrum
from netscope.inspect.optimise import Regulariser
from netscope.inspect.units import gram_similarity, visualise_units

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def digits(test_pixels):
    return test_pixels[0]


def linear_optimum(lecture, unit: int) -> float:
    """Returns the largest conv1 activation any [0, 1] image can give: conv1 is linear in the
    pixels, so it is reached by 1 where the kernel is positive and 0 elsewhere."""
    conv, mean, std = lecture.model.conv1, lecture.mean[0, 0, 0, 0], lecture.std[0, 0, 0, 0]
    weight, bias = conv.weight[unit].detach(), conv.bias[unit].detach()
    return float((weight / std).clamp(min=0).sum() - (weight * mean / std).sum() + bias)


def test_a_linear_unit_reaches_its_known_optimum(lecture):
    found = visualise_units(lecture, "conv1", SHAPE, [3, 11], position=(10, 10), steps=150,
                            reg=Regulariser())  # fmt: skip
    for row, unit in enumerate([3, 11]):
        assert found.objective[row, 0] == pytest.approx(linear_optimum(lecture, unit), rel=1e-3)
        kernel = lecture.model.conv1.weight[unit, 0].detach()
        window = found.images[row, 0, 0, 10:15, 10:15]
        assert torch.equal(window > 0.5, kernel > 0)  # the filter's sign, saturated


def test_optima_beat_every_test_image_and_copies_differ(lecture, digits):
    top = top_patches(lecture, digits, "conv2", k=1)
    units = [21, 36]
    alike = visualise_units(lecture, "conv2", SHAPE, units, position="center", copies=3,
                            steps=200)  # fmt: skip
    diverse = visualise_units(lecture, "conv2", SHAPE, units, position="center", copies=3,
                              diversity=0.5, steps=200)  # fmt: skip
    assert alike.position == diverse.position == (2, 2)
    assert alike.images.shape == (2, 3, *SHAPE)
    assert 0 <= diverse.images.min() and diverse.images.max() <= 1
    best_digit = top.values[units, 0]  # the neuron likes its optima more than any of 2000 digits
    assert (alike.objective.min(1).values > best_digit).all()
    assert (diverse.objective.max(1).values > best_digit).all()  # diversity costs a little
    assert diverse.similarity.mean() < alike.similarity.mean() - 0.2
    spread = (diverse.images - diverse.images.mean(1, keepdim=True)).abs().mean()
    assert spread > 2 * (alike.images - alike.images.mean(1, keepdim=True)).abs().mean()


def test_gram_similarity_of_identical_and_orthogonal_maps():
    maps = torch.zeros(4, 2, 3, 3)
    maps[0, 0] = maps[1, 0] = 1.0  # group 1: two identical copies
    maps[2, 0], maps[3, 1] = 1.0, 1.0  # group 2: different channels
    torch.testing.assert_close(gram_similarity(maps, 2), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(gram_similarity(maps, 1), torch.zeros(4))


def test_a_direction_in_activation_space(lecture):
    direction = torch.zeros(2, 64)
    direction[0, [21, 36]] = 2**-0.5
    direction[1, 12] = 1.0
    found = visualise_units(lecture, "conv2", SHAPE, direction, steps=100)
    grey = visualise_units(lecture, "conv2", SHAPE, direction, steps=1, lr=1e-9)
    assert (found.objective[:, 0] > grey.objective[:, 0] + 5).all()
    with pytest.raises(NetscopeError, match=r"directions: expected U×64"):
        visualise_units(lecture, "conv2", SHAPE, torch.zeros(1, 10), steps=1)
    with pytest.raises(NetscopeError, match="unit 64 out of range"):
        visualise_units(lecture, "conv2", SHAPE, [64], steps=1)
    with pytest.raises(NetscopeError, match=r"position \(9, 0\): the layer's maps are 4×4"):
        visualise_units(lecture, "conv2", SHAPE, [0], position=(9, 0), steps=1)


def test_a_unit_of_a_fully_connected_layer(lecture):
    found = visualise_units(lecture, "fc2", SHAPE, [3, 8], steps=60)  # class logits
    grey = visualise_units(lecture, "fc2", SHAPE, [3, 8], steps=1, lr=1e-9)
    assert (found.objective[:, 0] > grey.objective[:, 0] + 10).all()
    with torch.no_grad():
        logits = lecture(found.images[:, 0])
    assert logits.argmax(1).tolist() == [3, 8]


def test_fourier_parameterisation_round_trip_and_ascent(lecture, digits):
    images = digits[:3].clamp(0.01, 0.99)
    torch.testing.assert_close(from_spectrum(to_spectrum(images), (28, 28)), images)
    reg = Regulariser(fourier=True)  # pixels through a sigmoid: near 0 and 1, never at them
    found = visualise_units(lecture, "conv1", SHAPE, [3], position=(10, 10), steps=150, reg=reg)
    assert found.objective[0, 0] == pytest.approx(linear_optimum(lecture, 3), rel=1e-3)
    assert 0 < found.images.min() and found.images.max() < 1


def test_visualisation_leaves_the_model_as_it_was(lecture_run):
    model = lecture_run.pixel_model().train()
    for parameter in model.parameters():  # the session's shared model: start from no gradient
        parameter.grad = None
    state = {k: v.clone() for k, v in model.state_dict().items()}
    visualise_units(model, "conv2", SHAPE, [1], copies=2, diversity=0.5, steps=3)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert not any(m._forward_hooks for m in model.modules())
