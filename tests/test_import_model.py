"""netscope import: a model trained outside netscope becomes a run directory every command reads,
and a run directory that names user code runs it only when the user allows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from netscope.cli import main
from netscope.errors import NetscopeError
from netscope.evaluate import error_pct
from netscope.import_model import import_model
from netscope.run import load_run
from netscope.train import resume
from netscope.usercode import TRUST_ENV

MEAN, STD = 0.1307, 0.3081  # the normalisation the user trained with

# A user's model file: a small CNN with BatchNorm, written with nn.Sequential (layer names "0",
# "1", ...), and a line that records every time the file is executed.
MODULE = """
from pathlib import Path

from torch import nn

with open(Path(__file__).with_name("executed.log"), "a") as log:
    log.write("executed\\n")


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )


def five_classes():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 5))


def not_a_model():
    return "a string"


WEIGHTS = 3
"""


def _executions(folder: Path) -> int:
    log = folder / "executed.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _train_elsewhere(model: torch.nn.Module, mnist, steps: int = 150) -> None:
    """Trains `model` as a user would, outside netscope: Adam, batches of 64, normalised input."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    inputs = (mnist.train_images[: steps * 64].float() / 255 - MEAN) / STD
    for i in range(0, len(inputs), 64):
        loss = F.cross_entropy(model(inputs[i : i + 64]), mnist.train_labels[i : i + 64])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def user(tmp_path_factory, mnist):
    """The user's folder: tiny_cnn.py, the weights they trained, and the run `netscope import`
    wrote for them (through the command line)."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "tiny_cnn.py").write_text(MODULE)
    namespace: dict = {"__file__": str(folder / "trainer_copy.py")}
    exec(MODULE, namespace)  # the user's own training script builds the same model
    model = namespace["make_model"]()
    _train_elsewhere(model, mnist)
    save_file(model.state_dict(), str(folder / "weights.safetensors"))
    argv = ["import", f"{folder / 'tiny_cnn.py'}:make_model", "--weights",
            str(folder / "weights.safetensors"), "--mean", str(MEAN), "--std", str(STD),
            "--out", str(folder / "run")]  # fmt: skip
    assert main(argv) == 0
    return folder, model


def test_import_records_the_factory_data_and_weights(user, mnist):
    folder, model = user
    info = json.loads((folder / "run" / "run.json").read_text())
    assert info["model"]["factory"] == f"{folder / 'tiny_cnn.py'}:make_model"
    assert info["model"]["name"] == "tiny_cnn.py:make_model"
    assert info["data"]["checksum"] == mnist.checksum
    assert (info["data"]["mean"], info["data"]["std"]) == ([MEAN], [STD])
    assert info["imported"]["weights"] == str(folder / "weights.safetensors")
    run = load_run(folder / "run", trust_code=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(run.model.state_dict()[name], tensor), name
    pixels = mnist.test_images.float() / 255
    with torch.no_grad():
        theirs = model((pixels - MEAN) / STD)
        ours = run.pixel_model()(pixels)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert info["metrics"]["test_error_pct"] == error_pct(theirs, mnist.test_labels) < 20


def test_commands_work_unchanged_on_an_imported_run(user, monkeypatch, capsys):
    """evaluate, inspect, attack and report read the imported run as any other."""
    folder, _ = user
    run_dir = folder / "run"
    monkeypatch.setenv(TRUST_ENV, "1")
    recorded = json.loads((run_dir / "run.json").read_text())["metrics"]["test_error_pct"]
    assert main(["evaluate", str(run_dir)]) == 0
    evaluation = json.loads((run_dir / "evaluate" / "evaluation.json").read_text())
    assert evaluation["test_error_pct"] == recorded
    stages = ["inspect", str(run_dir), "--stages", "filters", "saliency", "--no-progress"]
    assert main(stages) == 0
    inspected = json.loads((run_dir / "inspect" / "filters+saliency" / "inspect.json").read_text())
    assert {f["file"] for f in inspected["figures"]} == {"filters.png", "saliency.png"}
    attack = ["attack", str(run_dir), "--method", "deepfool", "--n", "20", "--no-progress"]
    assert main(attack) == 0
    attacked = json.loads((run_dir / "attack" / "deepfool" / "attack.json").read_text())
    assert attacked["success_rate"] == 1.0  # DeepFool crosses every boundary it aims at
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert "tiny_cnn.py:make_model" in html and "deepfool" in html.lower()
    capsys.readouterr()


def _python(args: list[str], trust: bool) -> subprocess.CompletedProcess:
    """Runs `python ARGS` in a fresh interpreter (no module imported yet), trusting user code
    or not."""
    env = {k: v for k, v in os.environ.items() if k != TRUST_ENV}
    env |= {TRUST_ENV: "1"} if trust else {}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_a_run_naming_user_code_runs_it_only_when_allowed(user, monkeypatch):
    """Without NETSCOPE_TRUST_CODE=1 (or trust_code=True) loading refuses before the file is
    executed, saying what it would import and how to allow it."""
    folder, _ = user
    run_dir = folder / "run"
    before = _executions(folder)
    refused = _python(["-m", "netscope", "inspect", str(run_dir), "--stages", "filters"], False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"would import the file {folder / 'tiny_cnn.py'} and call make_model()" in refused.stderr
    assert "NETSCOPE_TRUST_CODE=1" in refused.stderr and "Traceback" not in refused.stderr
    assert _executions(folder) == before  # never executed
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(NetscopeError, match="the model is user code"):
        load_run(run_dir)
    monkeypatch.setenv(TRUST_ENV, "1")
    with pytest.raises(NetscopeError, match="the model is user code"):
        load_run(run_dir, trust_code=False)  # the caller's explicit word wins
    allowed = _python(
        ["-c", f"import netscope; print(netscope.load_run({str(run_dir)!r}).model)"], True
    )
    assert allowed.returncode == 0 and "BatchNorm2d" in allowed.stdout, allowed.stderr
    assert _executions(folder) == before + 1


def _three_class_folder(root: Path, mnist) -> Path:
    for index in range(12):
        label = index % 3
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(mnist.train_images[index, 0].numpy()).save(
            root / str(label) / f"{index}.png"
        )
    return root


@pytest.mark.parametrize(
    "factory, change, message",
    [
        ("tiny_cnn.py", {}, r"tiny_cnn.py': expected MODULE:FACTORY \(a module name or a .py file"),
        ("missing.py:make_model", {}, r"missing.py: no such file"),
        ("no_such_module_here:make", {}, r"no_such_module_here: no such module on the Python path"),
        ("tiny_cnn.py:WEIGHTS", {}, r"has no function or class 'WEIGHTS'"),
        ("tiny_cnn.py:not_a_model", {}, r"not_a_model\(\) returned a str, expected a torch.nn.Module"),
        ("tiny_cnn.py:five_classes", {}, r"weights.safetensors: weights do not fit model "
         r".*five_classes: unexpected 0.bias, 0.weight, 1.num_batches_tracked and 6 more; wrong "
         r"shape: 1.weight \(8,\) \(expected \(5, 784\)\)"),
        ("tiny_cnn.py:make_model", {"mean": (0.1, 0.2)}, r"--mean 0.1 0.2: expected 1 or 1 finite"),
        ("tiny_cnn.py:make_model", {"std": (0.0,)}, r"--std 0.0: expected numbers > 0"),
        ("tiny_cnn.py:make_model", {"data": "FOLDER"}, r"returns \(2, 10\) for 2 images, expected "
         r"logits of shape \(2, 3\) \(3 classes in digits\)"),
    ],
    ids=["no colon", "no file", "no module", "not callable", "not a module", "other model",
         "two means", "std 0", "3-class folder"],
)  # fmt: skip
def test_import_errors_name_what_is_wrong(factory, change, message, user, mnist, tmp_path):
    folder, _ = user
    arguments = {"mean": (MEAN,), "std": (STD,), "out": tmp_path / "run"} | change
    if arguments.get("data") == "FOLDER":
        arguments["data"] = str(_three_class_folder(tmp_path / "digits", mnist))
    if factory.startswith("tiny_cnn") or factory.startswith("missing"):
        factory = str(folder / factory)
    with pytest.raises(NetscopeError, match=message):
        import_model(factory, folder / "weights.safetensors", **arguments)
    assert not (tmp_path / "run").exists()  # nothing written for a failed import


def test_an_imported_run_cannot_be_resumed(user):
    with pytest.raises(NetscopeError, match="imported model .*: no training to resume"):
        resume(user[0] / "run")


def test_an_imported_run_on_an_image_folder_finds_its_data_again(user, mnist, tmp_path):
    """With --data FOLDER the run records the folder (absolute) and its checksum, and loads the
    same images again; the test error is the model's on the folder's test split."""
    folder, model = user
    digits = tmp_path / "digits"
    for index in range(40):
        label = str(int(mnist.train_labels[index]))
        (digits / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(mnist.train_images[index, 0].numpy()).save(digits / label / f"{index}.png")
    run = import_model(str(folder / "tiny_cnn.py:make_model"), folder / "weights.safetensors",
                       mean=(MEAN,), std=(STD,), data=str(digits), out=tmp_path / "run")  # fmt: skip
    assert run.info["config"]["data"] == str(digits.resolve())
    dataset = run.load_dataset()
    assert dataset.checksum == run.info["data"]["checksum"]
    with torch.no_grad():
        logits = model((dataset.test_images.float() / 255 - MEAN) / STD)
    assert run.info["metrics"]["test_error_pct"] == error_pct(logits, dataset.test_labels)
