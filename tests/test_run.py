"""Run directories: loading, checkpoints, and refusing bad or unsafe files."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import operator
import pickle
import re
import shutil
from pathlib import Path
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from netscope import load_run
from netscope.config import recipe_config
from netscope.errors import NetscopeError
from netscope.evaluate import error_pct, predict
from netscope.models import LectureCNN, Normalized
from netscope.run import claimed, read_metrics, write_atomic
from netscope.train import resume, train


def test_load_run_restores_the_trained_model(lecture_run, mnist):
    run = load_run(lecture_run.path)
    assert isinstance(run.model, LectureCNN) and not run.model.training
    logits = predict(run.model, mnist.normalize(mnist.test_images))
    assert error_pct(logits, mnist.test_labels) == pytest.approx(
        run.info["metrics"]["test_error_pct"]
    )
    assert run.classes == mnist.classes and run.image_shape == (1, 28, 28)
    assert run.config.lr == 0.1 and run.config.epochs == 10


def test_pixel_model_equals_model_on_normalised_input(lecture_run, mnist):
    pixels = mnist.test_images[:64].float() / 255
    wrapped = lecture_run.pixel_model()
    assert isinstance(wrapped, Normalized)
    expected = lecture_run.model(mnist.normalize(mnist.test_images[:64]))
    assert torch.allclose(wrapped(pixels), expected, atol=1e-5)


def test_checkpoints_are_listed_and_loadable(lecture_run):
    names = lecture_run.checkpoints()
    assert names[0] == "checkpoints/epoch_00.safetensors" and names[-1] == "model.safetensors"
    initial = load_run(lecture_run.path, names[0])
    final = load_run(lecture_run.path, "checkpoints/epoch_10.safetensors")
    assert not torch.equal(initial.model.conv1.weight, final.model.conv1.weight)
    assert torch.equal(final.model.conv1.weight, lecture_run.model.conv1.weight)


def test_run_dataset_is_checked_against_recorded_checksum(lecture_run, tmp_path):
    assert lecture_run.load_dataset().checksum == lecture_run.info["data"]["checksum"]
    copy = tmp_path / "copy"
    shutil.copytree(lecture_run.path, copy)
    info = json.loads((copy / "run.json").read_text())
    info["data"]["checksum"] = "sha256:0000"
    (copy / "run.json").write_text(json.dumps(info))
    with pytest.raises(NetscopeError, match="differs from the one the run was trained on"):
        load_run(copy).load_dataset()


def test_bad_run_directories_get_clear_errors(lecture_run, tmp_path):
    with pytest.raises(NetscopeError, match="not a directory"):
        load_run(tmp_path / "nope")
    with pytest.raises(NetscopeError, match="run.json: missing"):
        load_run(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(lecture_run.path, copy)
    with pytest.raises(NetscopeError, match="must lie inside"):
        load_run(copy, "../../etc/passwd")
    (copy / "model.safetensors").write_bytes(b"garbage that is not safetensors")
    with pytest.raises(NetscopeError, match="model.safetensors: not a valid safetensors file"):
        load_run(copy)


def test_pickled_weights_are_never_unpickled(lecture_run, tmp_path):
    """A pickle that would run code on load must be rejected without running it."""
    copy = tmp_path / "copy"
    shutil.copytree(lecture_run.path, copy)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (copy / "model.safetensors").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(NetscopeError):
        load_run(copy)
    assert not marker.exists()


def test_write_atomic_replaces_whole_file(tmp_path):
    path = tmp_path / "f.json"
    write_atomic(path, b"old")
    write_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


LEGACY = Path(__file__).parent / "data" / "run_v0_1"


def test_a_run_written_before_the_redesign_loads_evaluates_and_resumes(tmp_path, mnist):
    """tests/data/run_v0_1 was written by netscope 0.1.0 before the trainer and the run
    directory were untied (`netscope train --model lenet5 --epochs 1 --train-limit 600
    --test-limit 200 --no-checkpoints`): today's code reads it, evaluates it and continues it."""
    copy = tmp_path / "old"
    shutil.copytree(LEGACY, copy)
    run = load_run(copy)
    assert run.config.model == "lenet5" and run.info["epochs_done"] == 1
    logits = predict(run.model, mnist.normalize(mnist.test_images[:200]))
    assert error_pct(logits, mnist.test_labels[:200]) == run.info["metrics"]["test_error_pct"]
    resumed = resume(copy, epochs=2, progress=False)
    assert [m["epoch"] for m in resumed.metrics] == [1, 2]
    assert resumed.metrics[0] == run.metrics[0]


def test_two_trainings_never_share_a_run_directory(mnist, tmp_path):
    """The first training holds RUN/.lock; a second one into the same folder is refused at
    once, and the folder is free again once the first has ended."""
    out = tmp_path / "shared"
    with claimed(out, new=True):
        config = recipe_config(epochs=1, train_limit=300, test_limit=100, progress=False)
        with pytest.raises(NetscopeError, match="another netscope process is training into it"):
            train(dataclasses.replace(config, out=str(out)), dataset=mnist)
        assert not (out / "run.json").exists()
    train(dataclasses.replace(config, out=str(out)), dataset=mnist)
    with pytest.raises(NetscopeError, match="already holds a run"):
        train(dataclasses.replace(config, out=str(out)), dataset=mnist)


# ---------------------------------------------------------------- damaged run directories


def _legacy_copy(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(LEGACY, folder)
    return folder


def _error_of(call) -> str | None:
    """Returns the NetscopeError message `call()` raises (None: it succeeded); any other
    exception fails the test."""
    try:
        call()
    except NetscopeError as err:
        return str(err)
    return None


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda info: [info], r"run.json: expected an object \{…\}, found \[\{"),
        (lambda info: info.pop("model") and info, r"run.json: missing 'model'"),
        (lambda info: info["data"].pop("checksum") and info, r"run.json: missing 'data.checksum'"),
        (lambda info: info["config"].update(lr="0.1") or info,
         r"run.json: config.lr: expected a finite number, found \"0.1\""),
        (lambda info: info["config"].update(lrr=0.1) or info,
         r"run.json: config: unknown field\(s\) lrr"),
        (lambda info: info["config"].update(epochs=0) or info,
         r"run.json: config: --epochs 0: expected an integer >= 1"),
        (lambda info: info["data"].update(std=[0.0]) or info,
         r"run.json: data.std: expected a list of finite numbers > 0, found \[0.0\]"),
        (lambda info: info["data"].update(mean=[float("nan")]) or info,
         r"run.json: data.mean: expected a list of finite numbers, found \[NaN\]"),
        (lambda info: info["data"].update(classes=["a", "b"]) or info,
         r"run.json: data.classes gives 2, but model.num_classes is 10"),
        (lambda info: info["model"].update(image_size=10**12) or info,
         r"run.json: data.image_shape\[1\] gives 28, but model.image_size is 1000000000000"),
        (lambda info: info["model"].update(num_classes=3) or info["data"].update(
            classes=["a", "b", "c"]) or info,
         r"(model|train_state).safetensors: weights do not fit model lenet5: wrong shape: output.codes "
         r"\(10, 84\) \(expected \(3, 84\)\)"),
    ],
    ids=["list", "no model", "no checksum", "lr a string", "unknown field", "epochs 0", "std 0",
         "NaN mean", "2 classes", "huge image", "weights of 10 classes"],
)  # fmt: skip
def test_a_damaged_run_json_is_one_clear_error(damage, message, tmp_path, capsys):
    """Each damage gets one NetscopeError naming the file, the key and what was expected: from
    load_run, and from the command line as one line with exit status 2."""
    from netscope.cli import main

    run_dir = _legacy_copy(tmp_path / "run")
    info = damage(json.loads((LEGACY / "run.json").read_text()))
    (run_dir / "run.json").write_text(json.dumps(info))
    with pytest.raises(NetscopeError, match=message):
        load_run(run_dir)
    capsys.readouterr()
    for command in (["evaluate", str(run_dir)], ["train", "--resume", str(run_dir)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("netscope: error: ") and err.count("\n") == 1, err
        assert re.search(message, err), err


def test_a_garbage_line_in_metrics_is_named(tmp_path):
    run_dir = _legacy_copy(tmp_path / "run")
    good = (LEGACY / "metrics.jsonl").read_text()
    for text, message in [
        (good + "garbage\n", r"metrics.jsonl, line 2: not JSON"),
        (good + '{"epoch": 2, "train_loss": "x"}\n', r"line 2: train_loss: expected a finite"),
        (good + good, r"line 2: epoch 1, expected epoch 2"),
        (good + "[1, 2]\n", r"line 2: expected an object"),
    ]:
        (run_dir / "metrics.jsonl").write_text(text)
        with pytest.raises(NetscopeError, match=message):
            load_run(run_dir)


def _rewrite_tensors(path: Path, change) -> None:
    """Rewrites the safetensors file at `path` with change(tensors, metadata) applied."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    change(tensors, metadata)
    save_file(tensors, str(path), metadata=metadata)


def test_a_damaged_train_state_or_weights_is_named(tmp_path, mnist):
    run_dir = _legacy_copy(tmp_path / "run")
    state = run_dir / "train_state.safetensors"
    cases = [
        (state, lambda t, m: m.update(epoch="one"), r"metadata has no epoch number"),
        (state, lambda t, m: m.update(epoch="5"), r"after epoch 5, but metrics.jsonl records 1"),
        (state, lambda t, m: t.pop("model.c1.weight"), r"train_state.safetensors: weights do not "
         r"fit model lenet5: missing c1.weight"),
        (state, lambda t, m: t.update({"optimizer.99.momentum_buffer": torch.zeros(2)}),
         r"optimizer.99.momentum_buffer \(2,\) does not fit the optimiser"),
        (state, lambda t, m: t.update(extra=torch.zeros(1)), r"unexpected tensor\(s\) extra"),
        (run_dir / "model.safetensors", lambda t, m: t.update({"c1.weight": torch.zeros(3)}),
         r"model.safetensors: weights do not fit model lenet5: wrong shape: c1.weight \(3,\)"),
        (run_dir / "model.safetensors", lambda t, m: t["f6.bias"].fill_(float("nan")),
         r"NaN or infinite values in f6.bias"),
    ]  # fmt: skip
    for path, change, message in cases:
        _legacy_copy(run_dir)
        _rewrite_tensors(path, change)
        with mock.patch("netscope.train.recorded_dataset", lambda *_: mnist):
            with pytest.raises(NetscopeError, match=message):
                resume(run_dir, progress=False) if path == state else load_run(run_dir)


# Fuzzing: a real run directory (the one written before the redesign) damaged at random must
# give one NetscopeError naming the damaged file, or load; never another exception.

LEGACY_INFO = json.loads((LEGACY / "run.json").read_text())
ODD_NUMBERS = st.sampled_from([0, -1, 2**31, 2**63, 10**30, 1e308, float("nan"), float("inf")])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | ODD_NUMBERS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)  # fmt: skip


def _paths(value, prefix=()):
    """Yields the path (a tuple of keys and indices) of every value inside a JSON document."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, inner in items:
        yield prefix + (key,)
        yield from _paths(inner, prefix + (key,))


@st.composite
def damaged_info(draw) -> object:
    """A copy of the legacy run.json with 1 to 3 values dropped, replaced or wrapped in a list."""
    info = copy.deepcopy(LEGACY_INFO)
    for _ in range(draw(st.integers(1, 3))):
        *parents, last = draw(st.sampled_from(list(_paths(LEGACY_INFO))))
        try:
            container = functools.reduce(operator.getitem, parents, info)
            container[last]
        except (KeyError, IndexError, TypeError):  # an earlier change removed it
            continue
        change = draw(st.sampled_from(["drop", "replace", "wrap"]))
        if change == "drop":
            del container[last]
        else:
            container[last] = draw(JSON_VALUES) if change == "replace" else [container[last]]
    return info


@settings(max_examples=150, deadline=None)
@given(info=damaged_info())
def test_fuzzed_run_json_gives_one_clear_error_or_a_working_run(info, tmp_path_factory):
    run_dir = tmp_path_factory.getbasetemp() / "fuzz_run_json"
    if not run_dir.exists():
        _legacy_copy(run_dir)
    (run_dir / "run.json").write_text(json.dumps(info))
    error = _error_of(lambda: load_run(run_dir))
    event("error" if error else "loads")
    if error is not None:
        assert "run.json" in error or "model.safetensors" in error, error
        return
    run = load_run(run_dir)  # what loads must work: one logit per class for a recorded image
    logits = run.pixel_model()(torch.zeros(1, *run.image_shape))
    assert logits.shape == (1, len(run.classes))


METRIC_LINES = st.one_of(
    st.text(max_size=30),
    JSON_VALUES.map(json.dumps),
    st.fixed_dictionaries(
        {"epoch": st.integers(1, 3) | JSON_VALUES, "train_loss": st.floats() | JSON_VALUES,
         "test_error_pct": st.floats() | JSON_VALUES, "epoch_s": st.floats() | JSON_VALUES}
    ).map(json.dumps),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(METRIC_LINES, min_size=1, max_size=3))
def test_fuzzed_metrics_lines_give_one_clear_error_or_valid_rows(lines, tmp_path_factory):
    run_dir = tmp_path_factory.getbasetemp() / "fuzz_metrics"
    if not run_dir.exists():
        _legacy_copy(run_dir)
    text = (LEGACY / "metrics.jsonl").read_text() + "".join(
        line.replace("\n", " ") + "\n" for line in lines
    )
    (run_dir / "metrics.jsonl").write_bytes(text.encode("utf-8", "surrogatepass"))
    error = _error_of(lambda: read_metrics(run_dir))
    event("error" if error else "reads")
    if error is not None:
        assert "metrics.jsonl" in error, error
        return
    rows = read_metrics(run_dir)
    assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))


TENSOR_NAMES = st.sampled_from(
    ["model.c1.weight", "model.f6.bias", "model.output.codes", "optimizer.0.momentum_buffer",
     "optimizer.1.momentum_buffer", "optimizer.7.momentum_buffer", "optimizer.x.y", "c1.weight"]
) | st.text(min_size=1, max_size=12)  # fmt: skip
SHAPES = st.lists(st.integers(0, 6), max_size=3) | st.sampled_from([[6, 1, 5, 5], [6], [10, 84]])


@st.composite
def damaged_state(draw):
    """A change to train_state.safetensors: its epoch, a tensor dropped, added, reshaped or NaN."""
    change = draw(st.sampled_from(["epoch", "drop", "add", "nan"]))
    name = draw(TENSOR_NAMES)
    epoch = draw(
        st.sampled_from(["", "0", "1", "2", "-1", "1.0", "١", "9" * 12]) | st.text(max_size=4)
    )
    shape = draw(SHAPES)
    value = draw(st.sampled_from([0.0, float("nan"), float("inf"), 1e30]))

    def apply(tensors: dict, metadata: dict) -> None:
        if change == "epoch":
            metadata["epoch"] = epoch
        elif change == "drop":
            tensors.pop(name, None)
        elif change == "add":
            tensors[name] = torch.full(shape, value)
        elif name in tensors and tensors[name].is_floating_point():
            tensors[name] = tensors[name].clone().fill_(value)

    return apply


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change=damaged_state())
def test_fuzzed_train_state_gives_one_clear_error_or_resumes(change, mnist, tmp_path_factory):
    run_dir = _legacy_copy(tmp_path_factory.getbasetemp() / "fuzz_state")
    _rewrite_tensors(run_dir / "train_state.safetensors", change)
    with mock.patch("netscope.train.recorded_dataset", lambda *_: mnist):
        error = _error_of(lambda: resume(run_dir, progress=False))
    event("error" if error else "resumes")
    assert error is None or "train_state.safetensors" in error, error
