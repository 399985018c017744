"""The trainer's fast paths compute the same numbers as the plain path; torchrun's processes
together compute what one process computes with the same global batch, and only rank 0 writes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from netscope.batches import epoch_shifts
from netscope.config import TrainConfig, recipe_config
from netscope.device import Processes, shard, uses_bf16
from netscope.errors import NetscopeError
from netscope.run import load_run
from netscope.train import (
    GraphUpdate,
    _move_optimizer_state,
    eager_update,
    make_optimizer,
    resume,
    set_lr,
    train,
)

PLAIN = dict(channels_last=False, fused=False, compile=False, cuda_graphs=False, tf32=False)


def _max_weight_difference(a, b) -> float:
    first, second = a.model.state_dict(), b.model.state_dict()
    return max((first[k] - second[k]).abs().max().item() for k in first)


def _losses(run) -> list[float]:
    return [m["train_loss"] for m in run.metrics]


def test_optimised_path_gives_the_plain_path_loss_curve(mnist, tmp_path):
    """channels_last (the CPU default) reorders float sums only: over these 40 steps of the
    lecture recipe the losses agree to ~1e-7 and the weights to ~1e-5. Early training is chaotic
    (with 1500 images the second epoch's losses already differ by 1 %), so the test stays short;
    both paths are deterministic, so this is a fixed, repeatable comparison."""
    small = dict(epochs=2, train_limit=2000, test_limit=500, progress=False)
    fast = train(recipe_config("lecture", out=str(tmp_path / "fast"), **small), dataset=mnist)
    plain = train(
        recipe_config("lecture", out=str(tmp_path / "plain"), **small, **PLAIN), dataset=mnist
    )
    assert fast.config.channels_last and not plain.config.channels_last
    assert _losses(fast) == pytest.approx(_losses(plain), rel=1e-5)
    assert _losses(fast)[1] < _losses(fast)[0]  # it did learn
    assert _max_weight_difference(fast, plain) < 1e-4
    errors = [
        (m["test_error_pct"], n["test_error_pct"]) for m, n in zip(fast.metrics, plain.metrics)
    ]
    assert all(abs(a - b) <= 0.4 for a, b in errors)  # at most two of 500 test images flip


def test_resume_on_the_fast_path_ends_with_the_uninterrupted_weights(mnist, tmp_path):
    """Resuming on the default path (channels_last, momentum, shift augmentation) continues
    bitwise where it stopped."""
    small = dict(
        train_limit=1000, test_limit=200, momentum=0.9, shuffle=True, shift=2, progress=False
    )
    straight = train(recipe_config(epochs=2, out=str(tmp_path / "a"), **small), dataset=mnist)
    train(recipe_config(epochs=1, out=str(tmp_path / "b"), **small), dataset=mnist)
    resumed = resume(tmp_path / "b", epochs=2)
    assert _max_weight_difference(straight, resumed) == 0.0
    assert _losses(straight) == _losses(resumed)


def test_loaded_momentum_takes_its_parameters_memory_layout():
    """Buffers come back from disk contiguous; the fused SGD kernel (CUDA) reads a contiguous buffer
    of a channels_last parameter in the wrong element order, so resume restores the layout."""
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(conv.parameters(), lr=0.1, momentum=0.9)
    buffer = torch.randn(conv.weight.shape)
    optimizer.state[conv.weight]["momentum_buffer"] = buffer
    _move_optimizer_state(optimizer, torch.device("cpu"))
    moved = optimizer.state[conv.weight]["momentum_buffer"]
    assert moved.stride() == conv.weight.stride() != buffer.stride()
    assert torch.equal(moved, buffer)


def test_bf16_autocast_trains_close_to_float32(mnist, tmp_path):
    small = dict(epochs=1, train_limit=2000, test_limit=500, progress=False)
    exact = train(recipe_config(out=str(tmp_path / "f32"), **small), dataset=mnist)
    mixed = train(
        recipe_config(out=str(tmp_path / "bf16"), autocast="bf16", **small), dataset=mnist
    )
    assert _losses(mixed) == pytest.approx(_losses(exact), rel=0.03)
    assert _losses(mixed) != _losses(exact)  # bf16 really ran: not the same math
    with pytest.raises(NetscopeError, match="--autocast fp8: expected off, bf16 or auto"):
        TrainConfig(autocast="fp8")


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected", [(True, False, True), (False, True, True), (False, False, False)]
)
def test_auto_autocast_uses_bf16_only_on_a_cpu_with_bf16_instructions(
    monkeypatch, avx512_bf16, amx, expected
):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    auto = TrainConfig(autocast="auto")
    assert uses_bf16(auto, torch.device("cpu")) is expected
    assert uses_bf16(auto, torch.device("cuda")) is False  # not measured on a GPU yet
    assert uses_bf16(TrainConfig(autocast="bf16"), torch.device("cpu")) is True
    assert uses_bf16(TrainConfig(), torch.device("cpu")) is False  # the lecture's float32
    assert recipe_config("fast").autocast == "auto"


def test_shard_splits_a_global_batch_without_loss_or_overlap():
    batch = torch.arange(33)
    parts = [shard(batch, Processes(rank=r, world=2, local_world=2)) for r in range(2)]
    assert [len(p) for p in parts] == [17, 16]
    assert torch.equal(torch.cat(parts), batch)
    assert shard(batch, Processes()) is batch


def test_set_lr_writes_into_the_tensor_a_cuda_graph_reads():
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, TrainConfig())
    set_lr(optimizer, 0.5)
    assert optimizer.param_groups[0]["lr"] == 0.5
    cell = torch.tensor(0.1)
    optimizer.param_groups[0]["lr"] = cell
    set_lr(optimizer, 0.25)
    assert optimizer.param_groups[0]["lr"] is cell and cell.item() == 0.25


def test_torchrun_with_two_gloo_processes_matches_one_process(mnist, tmp_path):
    """Same global batch (100, split 50/50; the last batch of 33 splits 17/16), same seed, shuffled
    and shifted: the DDP run ends with the one-process weights up to float rounding; rank 0 alone
    prints and writes the run directory."""
    flags = dict(epochs=2, train_limit=1033, test_limit=500, shuffle=True, shift=2, progress=False)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "2", "-m", "netscope", "train", "--out", str(tmp_path / "ddp"), "--epochs", "2",
               "--train-limit", "1033", "--test-limit", "500", "--shuffle", "--shift", "2",
               "--no-progress"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = load_run(tmp_path / "ddp")
    single = train(recipe_config(out=str(tmp_path / "one"), **flags), dataset=mnist)
    assert ddp.info["processes"] == 2 and single.info["processes"] == 1
    assert _losses(ddp) == pytest.approx(_losses(single), rel=1e-5)
    assert _max_weight_difference(ddp, single) < 1e-5
    assert [m["epoch"] for m in ddp.metrics] == [1, 2]
    for epoch in (1, 2):
        assert done.stderr.count(f"epoch {epoch:>3}/2  train_loss") == 1, done.stderr
    names = sorted(p.name for p in ddp.path.rglob("*"))
    expected = [".lock", "checkpoints", "epoch_00.safetensors", "epoch_01.safetensors",
                "epoch_02.safetensors", "metrics.jsonl", "model.safetensors", "run.json",
                "train_state.safetensors"]  # fmt: skip
    assert names == expected  # no stray temporary files from a second writer


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_step_matches_the_eager_step(mnist):
    config = recipe_config(momentum=0.9, nesterov=True, tf32=False)
    device = torch.device("cuda")
    inputs = mnist.normalize(mnist.train_images[:1050].to(device))
    labels = mnist.train_labels[:1050].to(device)
    losses, weights = [], []
    for graphs in (False, True):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(),
                                    torch.nn.Linear(64, 10)).to(device)  # fmt: skip
        optimizer = make_optimizer(model, config, device)
        update = eager_update(model, optimizer, config, Processes())
        update = GraphUpdate(update, optimizer) if graphs else update
        step_losses = []
        for i in range(0, 1050, 100):  # 10 full batches, then one of 50 that runs eagerly
            set_lr(optimizer, 0.1 / (1 + i / 100))  # the graph must see every new value
            x, y = inputs[i : i + 100], labels[i : i + 100]
            step_losses.append(update(x, y, len(y)))
        losses.append(torch.stack(step_losses))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    assert torch.allclose(weights[0], weights[1], rtol=1e-5, atol=1e-6)


def test_epoch_shifts_cover_the_range_and_repeat_per_epoch():
    config = TrainConfig(shift=2, seed=3)
    first = epoch_shifts(config, 0, 5000)
    assert first.shape == (5000, 2)
    assert sorted(first.unique().tolist()) == [-2, -1, 0, 1, 2]
    assert torch.equal(first, epoch_shifts(config, 0, 5000))
    assert not torch.equal(first, epoch_shifts(config, 1, 5000))
