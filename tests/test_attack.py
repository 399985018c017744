"""netscope.attack: known answers on linear classifiers, the pixel box, targets, errors, Foolbox
agreement and the lecture CNN on real MNIST test images."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from netscope.attack import (
    AttackConfig,
    adversarial_batch_transform,
    apply_universal,
    deepfool,
    fgsm,
    fooling_images,
    lbfgs,
    pgd,
    run_attack,
    universal_perturbation,
)
from netscope.cli import main
from netscope.errors import NetscopeError
from netscope.report import write_report
from netscope.run import load_run

SIDE = 4  # linear models see 1×4×4 images


def linear_model(margins: list[float], seed: int = 0) -> nn.Module:
    """Returns f(x) = W (x - 0.5) + m: at the grey image class 0 wins by m_0 - m_k."""
    torch.manual_seed(seed)
    layer = nn.Linear(SIDE * SIDE, len(margins))
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.copy_(torch.tensor(margins) - layer.weight.sum(1) * 0.5)
    return nn.Sequential(nn.Flatten(), layer).eval()


def grey_images(n: int, spread: float = 0.05, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + spread * (2 * torch.rand(n, 1, SIDE, SIDE, generator=generator) - 1)


def boundary_distances(model: nn.Module, images: torch.Tensor, dual: str) -> torch.Tensor:
    """Returns the exact distance to the nearest decision boundary of an affine classifier:
    min over k of |f_k - f_0| / ‖w_k - w_0‖ in the dual norm (L2 for L2, L1 for L-inf)."""
    w = model[1].weight.detach()
    with torch.no_grad():
        logits = model(images)
    origin = logits.argmax(1)
    gaps = (logits.gather(1, origin[:, None]) - logits).abs()
    diffs = w[None, :, :] - w[origin][:, None, :]
    sizes = diffs.norm(dim=2) if dual == "l2" else diffs.abs().sum(2)
    distances = gaps / sizes
    distances[torch.arange(len(images)), origin] = float("inf")
    return distances.min(1).values


@pytest.fixture(scope="module")
def digits(lecture_run):
    """32 real MNIST test images (pixels in [0, 1]), labels, and the lecture CNN on pixels."""
    dataset = lecture_run.load_dataset()
    return (
        lecture_run.pixel_model(),
        dataset.test_images[:32].float() / 255,
        dataset.test_labels[:32],
    )


# ---------------------------------------------------------------- known answers (linear models)


def test_deepfool_finds_the_closed_form_minimal_perturbation_of_a_linear_classifier():
    model = linear_model([1.0, 0.0, 0.3, -0.2])
    images = grey_images(20)
    exact = boundary_distances(model, images, "l2").detach()
    result = deepfool(model, images, overshoot=0.02)
    assert result.success.all()
    found = result.norms()["l2"]
    # one DeepFool step lands on the nearest hyperplane; the overshoot scales it by 1.02
    torch.testing.assert_close(found, 1.02 * (exact + 1e-4), rtol=1e-3, atol=1e-5)
    assert result.metrics()["rho_adv"] == pytest.approx(
        float((found / images.flatten(1).norm(dim=1)).mean()), rel=1e-6
    )


def test_deepfool_on_1000_classes_searches_the_top_10_in_one_backward_pass_per_step(monkeypatch):
    """An affine classifier with 1000 classes: DeepFool's answer is the closed-form distance to
    the nearest boundary among the 9 most likely other classes (the candidates), the same
    whether their gradients come in one batched backward pass per iteration or one per class."""
    torch.manual_seed(0)
    model = linear_model(torch.randn(1000).tolist())
    images = grey_images(2)
    with torch.no_grad():
        logits = model(images)
    origin = logits.argmax(1)
    others = logits.scatter(1, origin[:, None], float("-inf")).topk(9, dim=1).indices
    w = model[1].weight.detach()
    gaps = logits.gather(1, origin[:, None]) - logits.gather(1, others)
    exact = (gaps / (w[others] - w[origin][:, None]).norm(dim=2)).min(1).values
    calls = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or grad(*a, **k))
    batched = deepfool(model, images, overshoot=0.0, classes_per_backward=9)
    assert batched.success.all() and len(calls) == 2  # one step, one more to see it crossed
    torch.testing.assert_close(batched.norms()["l2"], exact + 1e-4, rtol=1e-4, atol=1e-6)
    calls.clear()
    one_by_one = deepfool(model, images, overshoot=0.0)  # on the CPU: one class per pass
    assert len(calls) == 2 * 9
    torch.testing.assert_close(one_by_one.adversarial, batched.adversarial)


class Recorder(nn.Module):
    """Wraps a model and records the size of every batch it sees."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.batches = model, []

    def forward(self, x):
        self.batches.append(len(x))
        return self.model(x)


@pytest.mark.parametrize(
    "call, bound",
    [
        (lambda m, x, y: fgsm(m, x, y, 0.1, batch_size=3), 3),
        (lambda m, x, y: pgd(m, x, y, 0.1, steps=3, batch_size=3), 3),
        (lambda m, x, y: deepfool(m, x, y, batch_size=3), 3),
        (lambda m, x, y: lbfgs(m, x, y, search_steps=2, max_iter=3, batch_size=3), 3),
        (lambda m, x, y: universal_perturbation(m, x, max_passes=1, batch_size=3), 256),
        (lambda m, x, y: fooling_images(m, (1, 4, 4), steps=3, batch_size=2), 2),
        (
            lambda m, x, y: fooling_images(
                m, (1, 4, 4), method="evolution", steps=3, population=4, batch_size=2
            ),
            8,
        ),
    ],
)
def test_batch_size_bounds_the_images_per_forward_pass(call, bound):
    model = Recorder(linear_model([1.0, 0.0, 0.5, -0.3, 0.2]))
    images = grey_images(20)
    with torch.no_grad():
        labels = model(images).argmax(1)
    model.batches.clear()
    call(model, images, labels)
    assert 1 < len(model.batches) and max(model.batches) <= bound


def test_fooling_images_do_not_depend_on_the_batch_size(lecture_run):
    model = lecture_run.pixel_model()
    together = fooling_images(model, (1, 28, 28), classes=[2, 5, 9], steps=30)
    one_by_one = fooling_images(model, (1, 28, 28), classes=[2, 5, 9], steps=30, batch_size=1)
    torch.testing.assert_close(one_by_one.images, together.images)


def test_fgsm_linf_succeeds_exactly_above_the_linf_distance_of_a_binary_linear_classifier():
    model = linear_model([0.5, 0.0])
    images = grey_images(16)
    exact = boundary_distances(model, images, "linf").detach()  # |f_1 - f_0| / ‖w_1 - w_0‖₁
    for scale, fooled in [(1.01, True), (0.99, False)]:
        results = [
            fgsm(
                model,
                images[i : i + 1],
                model(images[i : i + 1]).argmax(1).detach(),
                float(scale * d),
            )
            for i, d in enumerate(exact)
        ]
        assert all(bool(r.success[0]) is fooled for r in results)


def test_pgd_l2_succeeds_exactly_above_the_l2_distance_of_a_binary_linear_classifier():
    model = linear_model([0.5, 0.0])
    images = grey_images(8)
    labels = model(images).argmax(1)
    exact = boundary_distances(model, images, "l2").detach()
    for scale, fooled in [(1.05, True), (0.95, False)]:
        for i, d in enumerate(exact):
            result = pgd(model, images[i : i + 1], labels[i : i + 1], float(scale * d), norm="l2")
            assert bool(result.success[0]) is fooled
            assert result.norms()["l2"][0] <= scale * d + 1e-5


def test_lbfgs_finds_a_near_minimal_targeted_perturbation_of_a_binary_linear_classifier():
    model = linear_model([0.5, 0.0])
    images = grey_images(8)
    labels = model(images).argmax(1)
    exact = boundary_distances(model, images, "l2").detach()
    result = lbfgs(model, images, labels, targets=1 - labels)
    assert result.success.all()
    found = result.norms()["l2"]
    assert (found >= exact * (1 - 1e-4)).all()  # nothing beats the exact distance
    assert (found <= exact * 1.05).all()


# ---------------------------------------------------------------- the lecture CNN on MNIST


def test_every_attack_keeps_pixels_in_the_box_and_within_its_budget(digits):
    model, images, labels = digits
    for norm, eps in [("linf", 0.2), ("l2", 1.5)]:
        for result in [
            fgsm(model, images, labels, eps, norm=norm),
            pgd(model, images, labels, eps, norm=norm, steps=10),
        ]:
            assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
            assert result.norms()[norm].max() <= eps + 1e-5
    for result in [deepfool(model, images, labels), deepfool(model, images, labels, norm="linf")]:
        assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
        assert result.metrics()["success_rate"] == 1.0


def test_pgd_is_at_least_as_strong_as_fgsm_at_the_same_budget(digits):
    model, images, labels = digits
    one_step = fgsm(model, images, labels, 0.15).metrics()["success_rate"]
    many_steps = pgd(model, images, labels, 0.15, steps=20).metrics()["success_rate"]
    assert 0 < one_step <= many_steps


def test_targeted_attacks_hit_their_targets(digits):
    model, images, labels = digits
    targets = (labels + 1) % 10
    result = pgd(model, images, labels, 0.4, steps=40, targets=targets)
    assert result.success.float().mean() >= 0.95
    assert (result.adversarial_pred[result.success] == targets[result.success]).all()
    few = slice(0, 8)
    result = lbfgs(
        model, images[few], labels[few], targets=targets[few], search_steps=3, max_iter=30
    )
    assert (result.adversarial_pred == targets[few]).all()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_deepfool_equals_foolbox_on_the_lecture_cnn(digits, norm):
    """Same images, same overshoot, same candidates: the same adversarial images, both ways
    (Foolbox 3.3.4's L2DeepFoolAttack / LinfDeepFoolAttack is the reference implementation)."""
    foolbox = pytest.importorskip("foolbox")
    model, images, labels = digits
    ours = deepfool(model, images, labels, norm=norm, overshoot=0.02, max_iter=50)
    attack = (
        foolbox.attacks.L2DeepFoolAttack if norm == "l2" else foolbox.attacks.LinfDeepFoolAttack
    )
    _, theirs, success = attack(steps=50, overshoot=0.02, candidates=10)(
        foolbox.PyTorchModel(model, bounds=(0, 1)), images, labels, epsilons=None
    )
    assert torch.equal(ours.success, success)
    assert (ours.adversarial - theirs).abs().max() < 1e-5
    ours_sizes = ours.norms()["l2" if norm == "l2" else "linf"]
    their_sizes = (theirs - images).flatten(1).norm(p=2 if norm == "l2" else float("inf"), dim=1)
    assert torch.allclose(ours_sizes, their_sizes, rtol=1e-4, atol=1e-6)


def test_deepfool_rho_adv_on_the_lecture_cnn_is_close_to_the_papers_lenet(digits):
    model, images, labels = digits
    rho = deepfool(model, images, labels).metrics()["rho_adv"]
    # Moosavi-Dezfooli et al. 2016, Table 1 report 2.0e-1 for LeNet on MNIST
    assert 0.1 < rho < 0.3


def test_universal_perturbation_stays_in_its_ball_and_reports_its_fooling_rate(digits):
    model, images, labels = digits
    universal = universal_perturbation(model, images, xi=5.0, max_passes=2, batch_size=2)
    assert universal.perturbation.norm() <= 5.0 + 1e-4
    assert len(universal.history) <= 2 and universal.fooling_rate == max(universal.history)
    result = apply_universal(model, images, universal.perturbation, labels)
    changed = (result.adversarial_pred != result.original_pred).float().mean()
    assert float(changed) == pytest.approx(universal.fooling_rate)
    assert universal.fooling_rate > 0.3  # measured 0.59 (seed 0)


def test_fooling_images_reach_99_percent_confidence_for_every_class(lecture_run):
    model = lecture_run.pixel_model()
    result = fooling_images(model, (1, 28, 28), method="gradient", steps=500)
    assert result.success(0.99).all()
    assert result.images.min() >= 0 and result.images.max() <= 1
    evolved = fooling_images(model, (1, 28, 28), classes=[3, 8], method="evolution", steps=600)
    assert evolved.success(0.99).all()


# ---------------------------------------------------------------- mistakes the user can make


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x, y: fgsm(m, x, y, -0.1), "eps"),
        (lambda m, x, y: pgd(m, x, y, 0.1, norm="l3"), "norm"),
        (lambda m, x, y: pgd(m, x, y, 0.1, targets=y), "target equals the true class"),
        (lambda m, x, y: lbfgs(m, x, y, targets=y), "target equals the true class"),
        (lambda m, x, y: deepfool(m, x * 255, y), "pixels must lie in [0, 1]"),
        (lambda m, x, y: deepfool(m, x, y[:3]), "labels"),
        (lambda m, x, y: universal_perturbation(m, x, xi=0), "xi"),
        (lambda m, x, y: fooling_images(m, (1, 4, 4), method="magic"), "method"),
        (lambda m, x, y: AttackConfig(method="cw"), "--method"),
        (lambda m, x, y: AttackConfig(method="lbfgs", norm="linf"), "--norm"),
        (lambda m, x, y: adversarial_batch_transform("pgd", -1, (0.5,), (0.5,)), "eps"),
    ],
)
def test_bad_arguments_raise_one_clear_error(call, message):
    model = linear_model([1.0, 0.0])
    images = grey_images(4)
    labels = model(images).argmax(1)
    with pytest.raises(NetscopeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(model, images, labels)


# ---------------------------------------------------------------- adversarial training


def test_adversarial_batch_transform_attacks_normalised_batches_within_eps(digits):
    model, images, labels = digits
    mean, std = (0.1307,), (0.3081,)
    inputs = (images - mean[0]) / std[0]
    transform = adversarial_batch_transform("pgd", 0.2, mean, std, steps=5)
    attacked = transform(model.model, inputs, labels)
    pixels = attacked * std[0] + mean[0]
    assert attacked.shape == inputs.shape
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert (pixels - images).abs().max() <= 0.2 + 1e-5
    loss = nn.functional.cross_entropy
    assert loss(model.model(attacked), labels) > loss(model.model(inputs), labels) + 1.0


def test_adversarial_training_ends_with_the_same_attacks_on_a_clean_twin(mnist, tmp_path, capsys):
    out, twin = tmp_path / "adv", tmp_path / "adv" / "clean_twin"
    args = ["train", "--train-limit", "300", "--test-limit", "100", "--epochs", "1",
            "--no-progress", "--no-checkpoints", "--adversarial", "fgsm", "--adversarial-eps",
            "0.3", "--adversarial-check", "50", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    clean = json.loads((twin / "metrics.jsonl").read_text())
    adv = json.loads((out / "metrics.jsonl").read_text())
    assert adv["train_loss"] > clean["train_loss"] + 0.1  # the same batches, made harder
    info, twin_info = (json.loads((d / "run.json").read_text()) for d in (out, twin))
    changed = {k: v for k, v in twin_info["config"].items() if info["config"][k] != v}
    assert changed == {"adversarial": None, "adversarial_check": 0, "out": str(twin)}
    check = info["adversarial_check"]
    images, labels = mnist.float_images("test")[:50], mnist.test_labels[:50]
    for side, folder in (("before", twin), ("after", out)):  # the attacks' own numbers
        model = load_run(folder).pixel_model()
        numbers = check[side]
        assert (
            numbers["pgd_success_rate"] == pgd(model, images, labels, 0.3).metrics()["success_rate"]
        )
        assert (
            numbers["deepfool_l2_median"] == deepfool(model, images, labels).metrics()["l2_median"]
        )
        assert numbers["test_error_pct"] == load_run(folder).info["metrics"]["test_error_pct"]
    assert (
        "netscope: adversarial training, before (clean twin) → after, on 50 test images: "
        "PGD (L∞, ε = 0.3) fools " in capsys.readouterr().err
    )
    html = write_report(out).read_text()
    assert "clean twin (before)" in html and "PGD success rate" in html


# ---------------------------------------------------------------- attack.json, fool.json, CLI


def test_run_attack_writes_attack_json_and_its_figures(lecture_run, tmp_path):
    config = AttackConfig(method="deepfool", n=16, examples=2, progress=False)
    threads = torch.get_num_threads()
    record = run_attack(lecture_run, tmp_path, config)
    assert torch.get_num_threads() == threads
    saved = json.loads((tmp_path / "attack.json").read_text())
    for key in ["success_rate", "l2_median", "linf_median", "rho_adv", "s_per_image", "l2_mean"]:
        assert saved[key] == record[key] and saved[key] is not None
    assert saved["success_rate"] == 1.0
    for figure in saved["figures"]:
        assert (tmp_path / figure["file"]).stat().st_size > 10_000 and figure["caption"]


def test_cli_attack_pgd_with_target_and_fool(lecture_run, tmp_path, capsys):
    run = str(lecture_run.path)
    assert (
        main(
            [
                "attack",
                run,
                "--method",
                "pgd",
                "--n",
                "12",
                "--eps",
                "0.3",
                "--target",
                "3",
                "--steps",
                "10",
                "--out",
                str(tmp_path / "a"),
                "--no-progress",
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "a" / "attack.json").read_text())
    assert record["method"] == "pgd" and len(record["curve"]["eps"]) == 6
    assert (
        main(["fool", run, "--method", "gradient", "--out", str(tmp_path / "f"), "--no-progress"])
        == 0
    )
    fool = json.loads((tmp_path / "f" / "fool.json").read_text())
    assert fool["results"]["gradient"]["all_reached"]
    assert min(fool["results"]["gradient"]["confidence"]) >= 0.99
    assert main(["attack", run, "--method", "pgd", "--eps", "-1"]) == 2
    assert "--eps -1" in capsys.readouterr().err


def test_uint8_images_get_told_to_divide_by_255(lecture_run, mnist):
    images, labels = mnist.test_images[:2], mnist.test_labels[:2]  # what load_dataset holds
    with pytest.raises(NetscopeError) as caught:
        deepfool(lecture_run.pixel_model(), images, labels)
    assert "uint8 pixels: divide by 255 (or use `dataset.float_images()`)" in str(caught.value)
