"""Tests for netscope.compare (ridge predictivity, linear CKA, layer features, run_compare, CLI)
and the `biology` lesson: known answers on synthetic data, then the real lecture network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from user_models import FunctionalCNN, sequential_twin, tiny_resnet

from netscope.cli import main
from netscope.compare import (
    CompareConfig,
    compare_models,
    default_layers,
    gram_cka,
    layer_features,
    linear_cka,
    response_features,
    ridge_predictivity,
    run_compare,
)
from netscope.compare.features import gram_of
from netscope.compare.measures import (
    RELATIVE_ALPHAS,
    cka_matrix,
    explained_variance,
    nanmedian,
    ridge_predictions,
)
from netscope.compare.pipeline import load_responses
from netscope.errors import NetscopeError
from netscope.inspect import activations
from netscope.lessons import biology, run_lesson
from netscope.run import load_run


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Test machines are shared: with one BLAS thread OpenBLAS does not busy-wait for busy cores
    (measured here under load: a 257×257 eigh took 1.5 s with 2 threads, 0.07 s with 1)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def gaussian(n: int, p: int, seed: int) -> torch.Tensor:
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed))


def cka_by_definition(x: torch.Tensor, y: torch.Tensor) -> float:
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with K = XXᵀ, L = YYᵀ and the centring matrix H,
    written as in Kornblith et al. (2019), eq. 2-4."""
    n = len(x)
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l = x.double() @ x.double().T, y.double() @ y.double().T

    def hsic(a, b):
        return torch.trace(a @ h @ b @ h)

    return (hsic(k, l) / (hsic(k, k) * hsic(l, l)).sqrt()).item()


# ---------------------------------------------------------------- linear CKA


def test_cka_of_a_layer_with_itself_is_one_and_invariant_to_rotation_and_scale():
    x = gaussian(200, 30, 0)
    rotation, _ = torch.linalg.qr(gaussian(30, 30, 1))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("shape", [(300, 20, 10), (40, 100, 70)])  # feature and Gram branches
def test_cka_matches_the_papers_hsic_formula(shape):
    n, p, q = shape
    x = gaussian(n, p, 2)
    y = x[:, :q] + 0.5 * gaussian(n, q, 3)
    assert linear_cka(x, y) == pytest.approx(cka_by_definition(x, y), abs=1e-9)


def test_cka_of_independent_noise_is_near_zero():
    assert linear_cka(gaussian(2000, 10, 4), gaussian(2000, 10, 5)) < 0.03


# ---------------------------------------------------------------- ridge predictivity


def test_a_layer_predicts_itself_and_invertible_transforms_of_itself_almost_perfectly():
    x = gaussian(400, 20, 6)
    mixing = gaussian(20, 20, 7) + 3 * torch.eye(20)  # well conditioned, invertible
    assert nanmedian(ridge_predictivity(x, x)) > 0.99
    assert nanmedian(ridge_predictivity(x, x @ mixing)) > 0.99


def test_independent_noise_is_not_predicted():
    score = nanmedian(ridge_predictivity(gaussian(400, 20, 8), gaussian(400, 30, 9)))
    assert abs(score) < 0.05


def test_score_uses_held_out_images_only():
    # 300 noise features for 120 images: any in-sample fit would be perfect; held out, it is not
    x, y = gaussian(120, 300, 10), gaussian(120, 5, 11)
    assert nanmedian(ridge_predictivity(x, y)) < 0.05


def test_half_explained_variance_is_found():
    # y = x·w + noise with var(x·w) = var(noise): the true R² of the best predictor is 0.5
    x = gaussian(1500, 10, 12)
    weights = gaussian(10, 8, 13) / np.sqrt(10)
    signal = x @ weights
    y = signal + gaussian(1500, 8, 14) * signal.std(0)
    assert nanmedian(ridge_predictivity(x, y)) == pytest.approx(0.5, abs=0.06)


def test_constant_units_are_left_out_of_the_median():
    target = np.stack([np.arange(10.0), np.full(10, 3.0)], axis=1)
    r2 = explained_variance(target, target)
    assert r2[0] == 1.0 and np.isnan(r2[1])
    assert nanmedian(r2) == 1.0


@pytest.mark.parametrize("shape", [(150, 40, 6), (90, 300, 4)])  # more images / more units
def test_ridge_from_the_gram_matrix_equals_scikit_learns_ridgecv(shape):
    """The dual solver against RidgeCV on the features: same folds, same penalties, same
    per-target choice by leave-one-out error, so the same held-out predictions."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    n, p, q = shape
    x = (gaussian(n, p, 20) @ gaussian(p, p, 21) / p**0.5 + 2.0).double().numpy()
    y = x[:, :q] @ gaussian(q, q, 22).double().numpy() + 3 * gaussian(n, q, 23).double().numpy()
    expected = np.empty_like(y)
    for train, test in KFold(5, shuffle=True, random_state=0).split(x):
        spread = ((x[train] - x[train].mean(0)) ** 2).sum()
        ridge = RidgeCV(alphas=RELATIVE_ALPHAS * spread, alpha_per_target=True)
        expected[test] = ridge.fit(x[train], y[train]).predict(x[test])
    ours = ridge_predictions(gram_of(torch.from_numpy(x)).numpy(), y, folds=5, seed=0)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-8 * np.abs(expected).max())


def test_too_few_images_for_the_folds_is_a_clear_error():
    with pytest.raises(NetscopeError, match="too few"):
        ridge_predictivity(gaussian(6, 3, 0), gaussian(6, 3, 1), folds=5)


# ---------------------------------------------------------------- layer features (real network)


@pytest.fixture(scope="module")
def images(mnist) -> torch.Tensor:
    return mnist.test_images[:300].float() / 255


def test_default_layers_of_the_lecture_cnn(lecture_run):
    assert default_layers(lecture_run.pixel_model()) == ["relu1", "relu2", "relu3", "fc2"]


def test_default_layers_of_user_models_and_a_user_model_compared_with_itself():
    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    )
    assert default_layers(mlp) == ["2", "3"]
    assert default_layers(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))) == [
        "0",
        "1",
    ]
    inputs = gaussian(60, 4, 16).view(60, 1, 2, 2)
    comparison = compare_models(mlp, mlp, inputs, config=CompareConfig(folds=2, progress=False))
    assert comparison.layers_a == ["2", "3"] and comparison.units_b == {"2": 8, "3": 3}
    assert torch.allclose(comparison.cka.diagonal(), torch.ones(2, dtype=torch.float64))


def test_default_layers_follow_the_forward_pass_with_each_call_of_a_shared_relu():
    model = tiny_resnet()
    assert default_layers(model, (3, 32, 32)) == [
        "relu",
        "layer1.0.relu",
        "layer1.0.relu#1",
        "layer2.0.relu",
        "layer2.0.relu#1",
        "fc",
    ]
    assert default_layers(FunctionalCNN(), (1, 28, 28)) == ["conv1", "conv2", "fc"]  # no modules


def test_gram_matrices_are_exact_in_any_number_of_passes(lecture_run, images):
    """relu1 (2048 units) and relu3 (200) read in slices (3 passes over the images) equal one
    pass, and the Gram matrix of the full responses."""
    model = lecture_run.pixel_model()
    layers = ["relu1", "relu3"]
    sliced = layer_features(model, images, layers, max_units=1000, max_targets=50)
    whole = layer_features(model, images, layers)
    full = activations(model, images, layers)
    for name in layers:
        torch.testing.assert_close(sliced[name].gram, gram_of(full[name]), rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(whole[name].gram, gram_of(full[name]), rtol=1e-12, atol=1e-9)
    assert sliced["relu1"].total_units == 2048 and sliced["relu1"].units.shape == (300, 50)
    assert whole["relu3"].units.shape == (300, 200)
    columns = {tuple(c) for c in full["relu1"].flatten(1).T.tolist()}
    assert all(tuple(c) in columns for c in sliced["relu1"].units.T.tolist())  # real units
    pooled = layer_features(model, images, ["relu1"], spatial="pool")["relu1"]
    assert pooled.total_units == 32 and pooled.units.shape == (300, 32)
    assert all(not m._forward_hooks for m in model.modules())


def test_features_are_deterministic_given_the_seed(lecture_run, images):
    model = lecture_run.pixel_model()
    first = layer_features(model, images[:50], ["relu1"], max_targets=10, seed=3)
    again = layer_features(model, images[:50], ["relu1"], max_targets=10, seed=3)
    assert torch.equal(first["relu1"].gram, again["relu1"].gram)
    assert torch.equal(first["relu1"].units, again["relu1"].units)


def test_unknown_layer_lists_the_valid_names(lecture_run, images):
    with pytest.raises(NetscopeError, match=r"unknown layer.*'conv9'.*relu3"):
        layer_features(lecture_run.pixel_model(), images, ["conv9"])


def test_a_network_compared_with_itself_is_exact(lecture_run, mnist):
    images = mnist.test_images[:600].float() / 255
    model = lecture_run.pixel_model()
    layers = ["relu2", "relu3", "fc2"]
    config = CompareConfig(folds=3, progress=False)
    comparison = compare_models(model, model, images, layers, layers, config)
    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(comparison.cka.diagonal(), ones, rtol=0, atol=1e-12)
    assert (comparison.predictivity.diagonal() > 0.98).all()
    # the 10 logits cannot rebuild the 200 units of relu3
    assert comparison.predictivity[2, 1] < comparison.predictivity[1, 1] - 0.1


def test_cka_of_wide_layers_is_the_papers_formula_on_all_their_units(lecture_run, images):
    """conv1 has 18,432 units (read in two passes here): no projection, no sampling."""
    model = lecture_run.pixel_model()
    layers = ["conv1", "relu1", "fc2"]
    matrix = cka_matrix(*[layer_features(model, images, layers, max_units=15_000)] * 2)
    responses = activations(model, images, layers, batch_size=250)  # the same batches
    full = {name: value.flatten(1) for name, value in responses.items()}
    expected = [[cka_by_definition(full[a], full[b]) for b in layers] for a in layers]
    torch.testing.assert_close(
        matrix, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12
    )
    assert matrix.diagonal().tolist() == pytest.approx([1, 1, 1], abs=1e-12)


def test_the_same_weights_as_sequential_and_as_functions_compare_as_identical(mnist):
    functional = FunctionalCNN().eval()
    sequential = sequential_twin(functional)
    images = mnist.test_images[:200].float() / 255
    config = CompareConfig(folds=2, progress=False)
    comparison = compare_models(
        sequential, functional, images, ["0", "3", "7"], ["conv1", "conv2", "fc"], config
    )
    torch.testing.assert_close(
        comparison.cka.diagonal(), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12
    )
    assert default_layers(sequential, (1, 28, 28)) == ["1", "4", "7"]  # its ReLU modules


# ---------------------------------------------------------------- run_compare, --responses, CLI


def test_run_compare_writes_matrices_layer_names_and_heatmaps(lecture_run, tmp_path):
    init = load_run(lecture_run.path, "checkpoints/epoch_00.safetensors")
    config = CompareConfig(layers=["relu3", "fc2"], n_images=150, folds=3, progress=False)
    record = run_compare(lecture_run, init, tmp_path, config)
    saved = json.loads((tmp_path / "compare.json").read_text(), parse_constant=pytest.fail)
    assert saved["layers_a"] == saved["layers_b"] == ["relu3", "fc2"]
    assert np.array(saved["cka"]).shape == np.array(saved["predictivity"]).shape == (2, 2)
    assert saved["cka"] == record["cka"] and saved["n_images"] == 150
    for figure in saved["figures"]:
        assert (tmp_path / figure["file"]).stat().st_size > 10_000 and figure["caption"]


def test_responses_equal_to_a_layer_are_predicted_perfectly(lecture_run, mnist, tmp_path):
    images = mnist.test_images[:400].float() / 255
    relu3 = layer_features(lecture_run.pixel_model(), images, ["relu3"])["relu3"].units
    path = tmp_path / "recordings.npy"
    np.save(path, relu3.numpy().astype(np.float64))
    config = CompareConfig(layers=["relu3"], responses=str(path), folds=2, progress=False)
    record = run_compare(lecture_run, None, tmp_path / "out", config)
    assert record["layers_b"] == ["responses"] and record["n_images"] == 400
    assert record["cka"][0][0] == pytest.approx(1.0, abs=1e-5)
    assert record["predictivity"][0][0] > 0.98


def test_response_features_sample_real_units_as_targets():
    responses = gaussian(30, 1000, 15)
    features = response_features(responses, max_targets=40)
    assert features.gram.shape == (30, 30) and features.units.shape == (30, 40)
    assert gram_cka(features.gram, gram_of(responses)) == pytest.approx(1.0, abs=1e-12)
    columns = {tuple(c) for c in responses.T.tolist()}
    assert all(tuple(c) in columns for c in features.units.T.tolist())


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros(20), "2-D array images × units.*reshape"),
        (np.zeros((20, 3, 2)), "2-D array"),
        (np.array([["a"]] * 20), "numeric"),
        (np.full((20, 3), np.nan), "NaN"),
        (np.zeros((19, 3)), "19 rows but 20 images"),
    ],
)
def test_bad_response_files_are_clear_errors(tmp_path, array, message):
    path = tmp_path / "r.npy"
    np.save(path, array)
    with pytest.raises(NetscopeError, match=message):
        load_responses(path, n_images=20)


def test_pickled_response_files_are_refused(tmp_path):
    path = tmp_path / "r.npy"
    np.save(path, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(NetscopeError, match="not a numeric .npy"):
        load_responses(path)
    with pytest.raises(NetscopeError, match="no such file"):
        load_responses(tmp_path / "missing.npy")


def test_cli_compare_on_own_images_prints_the_matrices(lecture_run, mnist, tmp_path, capsys):
    np.save(tmp_path / "digits.npy", mnist.test_images[:60, 0].numpy())  # N×H×W uint8
    argv = ["compare", str(lecture_run.path), str(lecture_run.path), "--layers", "fc2"]
    argv += ["--images", str(tmp_path / "digits.npy"), "--folds", "2", "--no-progress"]
    assert main(argv + ["--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "predictivity" in printed and "cka" in printed and "1.000" in printed
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["n_images"] == 60 and saved["images"].endswith("digits.npy")
    np.save(tmp_path / "wrong.npy", np.zeros((60, 3, 28, 28), dtype=np.uint8))
    argv[argv.index("--images") + 1] = str(tmp_path / "wrong.npy")
    assert main(argv) == 2
    assert "expected shape N×1×28×28, got (60, 3, 28, 28)" in capsys.readouterr().err


def test_cli_compare_errors_name_the_argument(lecture_run, tmp_path, capsys):
    assert main(["compare", str(lecture_run.path), "--out", str(tmp_path)]) == 2
    assert "RUN_B or --responses" in capsys.readouterr().err
    bad = ["compare", str(lecture_run.path), str(lecture_run.path), "--layers", "nope"]
    assert main(bad + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--layers: unknown layer 'nope' (valid layers: conv1, pool1, relu1," in err
    assert main(bad[:3] + ["--spatial", "mean"]) == 2
    assert "--spatial mean: expected flatten or pool" in capsys.readouterr().err


# ---------------------------------------------------------------- lesson biology


def test_biology_lesson_runs_end_to_end_on_a_tiny_plan(tmp_path, monkeypatch):
    tiny = biology.Plan(
        reference=dict(seed=100, train_limit=300, epochs=1),
        candidates=[dict(seed=1, train_limit=200, epochs=2)],
        n_images=100,
        folds=2,
        accuracy_images=300,
    )
    monkeypatch.setattr(biology, "QUICK", tiny)
    result = run_lesson("biology", tmp_path, seed=1)
    points = result.numbers["points"]
    assert [(p["seed"], p["epoch"]) for p in points] == [(11, 0), (11, 1), (11, 2)]
    assert result.numbers["reference"]["seed"] == 110
    assert all(0 <= p["accuracy_pct"] <= 100 and np.isfinite(p["predictivity"]) for p in points)
    assert np.array(result.numbers["predictivity"]).shape == (3, 3)
    saved = json.loads((tmp_path / "lesson.json").read_text())
    assert [f["file"] for f in saved["figures"]] == [
        "biology_accuracy_vs_predictivity.png",
        "biology_predictivity.png",
        "biology_cka.png",
    ]
    assert all((tmp_path / f["file"]).exists() for f in saved["figures"])
