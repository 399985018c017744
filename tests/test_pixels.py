"""`netscope data show`: an image's raw pixel values, printed and drawn beside the picture (seed
001's "this is a horse" slide), for MNIST, CIFAR-10 (binary files) and image folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import write_cifar_tar

from netscope.cli import main
from netscope.errors import NetscopeError
from netscope.pixels import draw_pixels, format_pixels, show


def parse_grid(lines: list[str]) -> torch.Tensor:
    return torch.tensor([[int(v) for v in line.split()] for line in lines], dtype=torch.uint8)


def test_mnist_image_prints_as_28_rows_of_28_three_digit_numbers(mnist):
    lines = show(mnist, 0)
    assert lines[0] == "mnist train image 0, class 5: 784 numbers from 0 to 255 (1×28×28: grey)"
    assert lines[1] == "channel 0 (grey):"
    grid = lines[2:]
    assert len(grid) == 28 and {len(line) for line in grid} == {28 * 4 - 1}
    assert torch.equal(parse_grid(grid), mnist.train_images[0, 0])  # exactly the pixels
    # the first stroke of MNIST's first training image (a 5), as every copy of MNIST has it
    assert "3  18  18  18 126 136 175  26 166 255 247 127" in grid[5]


def test_cli_show_writes_the_picture_beside_its_numbers(tmp_path, capsys):
    out = tmp_path / "figures" / "seven.png"
    assert main(["data", "show", "mnist", "0", "--split", "test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("mnist test image 0, class 7:")  # the test set starts with a 7
    assert printed[-1] == f"netscope: wrote {out}"
    assert out.stat().st_size > 50_000


def test_index_out_of_range_is_one_clear_error(mnist, capsys):
    assert main(["data", "show", "mnist", "10000", "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "netscope: error: index 10000 is out of range: mnist has 10,000 test images "
        "(expected 0 to 9,999)\n"
    )
    assert main(["data", "show", "mnist"]) == 2
    assert "give the image's INDEX" in capsys.readouterr().err
    with pytest.raises(NetscopeError, match="index -1 is out of range"):
        show(mnist, -1)
    with pytest.raises(NetscopeError, match="ending in .png"):
        show("mnist", 0, out="pixels.jpg")


def test_cifar10_prints_every_channel_in_full(tmp_path):
    _, first_batch = write_cifar_tar(tmp_path)
    lines = show("cifar10", 1, root=tmp_path)
    assert lines[0].startswith("cifar10 train image 1, class 1 (automobile): 3,072 numbers")
    headers = ["channel 0 (red):", "channel 1 (green):", "channel 2 (blue):"]
    starts = [lines.index(header) for header in headers]
    for channel, start in enumerate(starts):
        grid = parse_grid(lines[start + 1 : start + 33])
        assert torch.equal(grid, torch.from_numpy(first_batch[1, channel]))
    assert len(lines) == 1 + 3 * 33


def test_large_image_prints_its_central_window_and_says_which():
    image = (torch.arange(40 * 40) % 256).to(torch.uint8).reshape(1, 40, 40)
    lines = format_pixels(image, limit=32)
    assert lines[0] == "channel 0 (grey), rows 4–35 and columns 4–35:"
    assert torch.equal(parse_grid(lines[1:]), image[0, 4:36, 4:36])
    figure = draw_pixels(image.expand(3, -1, -1).contiguous(), "a test pattern")
    titles = [ax.get_title() for ax in figure.axes]
    assert "red values, rows 15–24, columns 15–24" in titles  # RGB: a 10×10 window per channel
    assert sum(len(ax.texts) for ax in figure.axes) == 3 * 10 * 10


def test_image_folder_images_show_as_numbers(tmp_path):
    for name, value in (("dark", 30), ("light", 220)):
        (tmp_path / name).mkdir()
        for i in range(3):
            pixels = np.full((10, 12), value + i, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    lines = show(tmp_path, 0, split="test")  # folders load in a seeded order: either class
    name = "dark" if "(dark)" in lines[0] else "light"
    label = 0 if name == "dark" else 1
    assert f"test image 0, class {label} ({name}): 784 numbers" in lines[0]  # resized to 28×28
    base = 30 if name == "dark" else 220
    assert set(parse_grid(lines[2:]).flatten().tolist()) <= {base, base + 1, base + 2}
