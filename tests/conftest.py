"""Shared fixtures: the real MNIST data and one lecture-recipe run trained once per session.

Set NETSCOPE_TEST_RUN=DIR to reuse (or create once) a trained run directory between sessions
while developing; CI leaves it unset and trains the run from scratch.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
import torch

from netscope.config import recipe_config
from netscope.data import Dataset, load_dataset
from netscope.run import Run, load_run, read_json
from netscope.train import train

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    """The real, full MNIST shipped with the package."""
    return load_dataset("mnist")


def _finished(run_dir: Path) -> bool:
    if not (run_dir / "run.json").exists():
        return False
    info = read_json(run_dir / "run.json")
    return info["epochs_done"] == info["config"]["epochs"] == 10


@pytest.fixture(scope="session")
def lecture_run(mnist: Dataset, tmp_path_factory) -> Run:
    """The lecture recipe exactly (10 epochs, full MNIST, seed 0), trained once per session."""
    cached = os.environ.get("NETSCOPE_TEST_RUN")
    run_dir = Path(cached) if cached else tmp_path_factory.mktemp("lecture") / "run"
    if not _finished(run_dir):
        if run_dir.exists() and cached:
            import shutil

            shutil.rmtree(run_dir)
        train(recipe_config("lecture", out=str(run_dir), progress=False), dataset=mnist)
    return load_run(run_dir)


@pytest.fixture(scope="module")
def lecture(lecture_run: Run):
    """The lecture run's CNN on pixels in [0, 1] (`Run.pixel_model`), one per test module."""
    return lecture_run.pixel_model()


@pytest.fixture(scope="module")
def test_pixels(mnist: Dataset):
    """The first 2000 MNIST test images as pixels in [0, 1], and their labels."""
    return mnist.test_images[:2000].float() / 255, mnist.test_labels[:2000]


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory) -> Path:
    """A valid black 1-bit PNG of 20000×20000 pixels, over PIL's decompression-bomb limit
    (48 kB on disk, written in 0.2 s without ever holding the image)."""
    side = 20_000

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    row = bytes(1 + side // 8)  # the filter byte, then one bit a pixel
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(
        signature + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path
