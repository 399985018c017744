"""Data loading: the real MNIST facts, every format's errors, downloads from a local server."""

from __future__ import annotations

import functools
import gzip
import http.server
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from netscope import data
from netscope.data import (
    DatasetSpec,
    RemoteFile,
    array_bytes_with_header,
    load_dataset,
    load_image_folder,
    parse_idx,
    shift_images,
)
from netscope.errors import NetscopeError

# Facts about the real MNIST files, from ../shared/README.md.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bundled_mnist_matches_published_facts(mnist):
    assert mnist.train_images.shape == (60000, 1, 28, 28)
    assert mnist.test_images.shape == (10000, 1, 28, 28)
    assert mnist.train_images.dtype.is_floating_point is False
    assert mnist.train_labels.bincount().tolist() == TRAIN_COUNTS
    assert mnist.test_labels.bincount().tolist() == TEST_COUNTS
    assert mnist.train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert mnist.mean[0] == pytest.approx(0.1307, abs=5e-5)
    assert mnist.std[0] == pytest.approx(0.3081, abs=5e-5)
    assert mnist.classes == [str(d) for d in range(10)]
    assert mnist.shuffle_seed is None  # the files' own order: the lecture recipe's batches


def test_normalize_gives_zero_mean_unit_std_on_train(mnist):
    normalized = mnist.normalize(mnist.train_images[:20000])
    assert normalized.mean().item() == pytest.approx(0.0, abs=0.01)
    assert normalized.std().item() == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------- IDX format


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    raw = array_bytes_with_header(array)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_idx_set(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), np.uint8)
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return folder


def test_idx_round_trip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(array_bytes_with_header(array)), array)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x00\x00", "truncated IDX file"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00", "wrong magic number"),
        (b"\x12\x34\x08\x01\x00\x00\x00\x01\x00", "wrong magic number"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated file"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "IDX body has 2 bytes"),
    ],
)
def test_bad_idx_bytes_name_the_problem(raw, message):
    with pytest.raises(NetscopeError, match=message) as err:
        parse_idx(raw, "some/file.idx")
    assert str(err.value).startswith("some/file.idx: ")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_idx_parser_fuzz_only_raises_netscope_error(raw):
    try:
        parsed = parse_idx(raw, "fuzz")
    except NetscopeError as err:
        assert str(err).startswith("fuzz: ")
    else:
        assert parsed.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=3), st.binary(max_size=8), st.integers(0, 6)
)
def test_idx_parser_fuzz_plausible_headers(shape, tail, cut):
    raw = struct.pack(">HBB", 0, 8, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    raw += bytes(int(np.prod(shape))) + tail
    raw = raw[: len(raw) - cut] if cut else raw
    try:
        parse_idx(raw, "fuzz")
    except NetscopeError as err:
        assert str(err).startswith("fuzz: ")


def test_idx_folder_loads_with_explicit_root(tmp_path):
    folder = write_idx_set(tmp_path / "fm")
    dataset = load_dataset("fashion-mnist", root=folder)
    assert dataset.train_images.shape == (30, 1, 28, 28)
    assert dataset.classes[0] == "T-shirt/top"
    assert dataset.source == str(folder)


def test_idx_count_mismatch_and_label_range(tmp_path):
    folder = write_idx_set(tmp_path / "a")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(NetscopeError, match="10 images but 9 labels"):
        load_dataset("fashion-mnist", root=folder)
    folder = write_idx_set(tmp_path / "b")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(30, 10, np.uint8))
    with pytest.raises(NetscopeError, match="label 10 out of range"):
        load_dataset("fashion-mnist", root=folder)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    folder = write_idx_set(tmp_path / "c")
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(NetscopeError, match="train-images-idx3-ubyte.gz: cannot read"):
        load_dataset("fashion-mnist", root=folder)


@pytest.fixture(scope="module")
def small_gz(mnist, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A gzipped IDX file of the first 40 real MNIST test digits, and the digits."""
    digits = mnist.test_images[:40, 0].numpy()
    path = tmp_path_factory.mktemp("gz") / "digits-idx3-ubyte.gz"
    return write_idx(path, digits), digits


def test_corrupt_deflate_stream_is_a_clear_error(small_gz, tmp_path):
    raw = small_gz[0].read_bytes()
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    messages = []
    for middle in range(len(raw) * 3 // 10, len(raw) * 7 // 10, len(raw) // 20):
        path.write_bytes(raw[:middle] + b"\xff" * 64 + raw[middle + 64 :])
        with pytest.raises(NetscopeError, match="t10k-images-idx3-ubyte.gz: cannot read") as err:
            data.read_idx(path)
        messages.append(str(err.value))
    # some damage is found by the CRC-32 at the end, some by zlib in the middle of the stream
    assert any("CRC check failed" in m for m in messages)
    assert any("while decompressing data" in m for m in messages)


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=3),
    keep=st.floats(0, 1),
)
def test_gzip_layer_fuzz_gives_the_digits_or_one_clear_error(
    small_gz, tmp_path_factory, flips, keep
):
    path, digits = small_gz
    raw = bytearray(path.read_bytes())
    for where, xor in flips:
        raw[int(where * len(raw))] ^= xor
    damaged = tmp_path_factory.getbasetemp() / "damaged-idx3-ubyte.gz"
    damaged.write_bytes(bytes(raw[: max(1, round(keep * len(raw)))]))
    try:
        parsed = data.read_idx(damaged)
    except NetscopeError as err:
        assert str(err).startswith(f"{damaged}: ")
    else:  # only bytes the CRC-32 does not cover (the header's time stamp, its OS byte) changed
        assert np.array_equal(parsed, digits)


def test_no_test_images_is_a_clear_error(tmp_path):
    folder = write_idx_set(tmp_path / "e", n_test=0)
    with pytest.raises(NetscopeError, match="30 training and 0 test images"):
        load_dataset("fashion-mnist", root=folder)


def test_mnist_content_is_checked_against_published_md5(tmp_path):
    folder = write_idx_set(tmp_path / "fake-mnist")
    with pytest.raises(NetscopeError, match="does not match the published mnist md5"):
        load_dataset("mnist", root=folder)


def test_missing_files_and_unknown_names(tmp_path):
    with pytest.raises(NetscopeError, match="no fashion-mnist files there"):
        load_dataset("fashion-mnist", root=tmp_path)
    with pytest.raises(NetscopeError, match="unknown data set 'imagenet'"):
        load_dataset("imagenet")


def test_search_order_prefers_netscope_data_then_cache(tmp_path, monkeypatch):
    env_dir = write_idx_set(tmp_path / "env" / "fashion-mnist", n_train=20)
    cache_dir = write_idx_set(tmp_path / "cache" / "fashion-mnist", n_train=40)
    monkeypatch.setenv("NETSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NETSCOPE_DATA", str(tmp_path / "env"))
    assert load_dataset("fashion-mnist").source == str(env_dir)
    monkeypatch.delenv("NETSCOPE_DATA")
    assert load_dataset("fashion-mnist").source == str(cache_dir)
    monkeypatch.setenv("NETSCOPE_CACHE", str(tmp_path / "empty"))
    with pytest.raises(NetscopeError, match="not found offline"):
        load_dataset("fashion-mnist", download=False)


def test_info_reports_what_is_known_and_never_downloads(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("data info must not download")

    monkeypatch.setattr(data, "download_file", no_download)
    monkeypatch.setenv("NETSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NETSCOPE_DATA", raising=False)
    info = data.dataset_info("fashion-mnist")
    assert info["present"] is False and info["found"] is None
    assert (info["train"], info["test"], info["image_shape"]) == (60_000, 10_000, [1, 28, 28])
    assert info["classes"][-1] == "Ankle boot"
    assert info["files"][0]["md5"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert info["searched"][-1] == str(tmp_path / "cache" / "fashion-mnist")
    assert "netscope data fetch fashion-mnist" in info["fetch"]
    assert not (tmp_path / "cache").exists()
    folder = write_idx_set(tmp_path / "cache" / "fashion-mnist", n_train=20)
    present = data.dataset_info("fashion-mnist")  # the facts read from the files join in
    assert present["present"] and present["found"] == str(folder)
    assert present["train"] == 20 and len(present["train_class_counts"]) == 10


def test_float_images_are_the_pixels_in_0_1(mnist):
    pixels = mnist.float_images("test")
    assert pixels.dtype == torch.float32 and pixels.shape == mnist.test_images.shape
    assert torch.equal(pixels * 255, mnist.test_images.float())
    assert mnist.float_images("train").shape[0] == 60_000
    with pytest.raises(NetscopeError, match="split 'val'"):
        mnist.float_images("val")


# ---------------------------------------------------------------- CIFAR-10 binary version


def write_cifar_batch(path: Path, labels: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (len(labels), 3 * 32 * 32), np.uint8)
    path.write_bytes(np.concatenate([labels[:, None].astype(np.uint8), pixels], 1).tobytes())
    return pixels.reshape(-1, 3, 32, 32)


def write_cifar_tar(folder: Path) -> tuple[Path, np.ndarray]:
    batches = folder / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    first = None
    for i in range(1, 6):
        pixels = write_cifar_batch(batches / f"data_batch_{i}.bin", np.arange(4) % 10, i)
        first = pixels if first is None else first
    write_cifar_batch(batches / "test_batch.bin", np.array([3, 8]), 9)
    archive = folder / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-bin")
    return archive, first


def test_cifar10_binary_batches_load(tmp_path):
    _, first = write_cifar_tar(tmp_path)
    dataset = load_dataset("cifar10", root=tmp_path)
    assert dataset.train_images.shape == (20, 3, 32, 32)
    assert np.array_equal(dataset.train_images[:4].numpy(), first)
    assert dataset.test_labels.tolist() == [3, 8]
    assert len(dataset.mean) == 3 and dataset.classes[3] == "cat"


def test_cifar10_corrupt_archive_is_a_clear_error(tmp_path):
    archive, _ = write_cifar_tar(tmp_path / "src")
    raw = archive.read_bytes()
    deflate = raw.index(b"\0", 10) + 1  # after the gzip header and the file name it holds
    cut = raw[: len(raw) // 2]
    for damaged in (raw[:deflate] + b"\xff" * 4 + raw[deflate + 4 :], cut):
        (tmp_path / archive.name).write_bytes(damaged)
        with pytest.raises(NetscopeError, match="cifar-10-binary.tar.gz: cannot read") as err:
            load_dataset("cifar10", root=tmp_path)
        assert "\n" not in str(err.value)


def test_cifar10_bad_record_size(tmp_path):
    write_cifar_tar(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(NetscopeError, match="test_batch.bin: 100 bytes is not a whole number"):
        load_dataset("cifar10", root=tmp_path)


# ---------------------------------------------------------------- image folders


def test_image_folder_split_is_reproducible_and_resized(tmp_path):
    for name, shade in (("cats", 40), ("dogs", 200)):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.new("RGB", (50 + i, 40), (shade, shade, shade)).save(tmp_path / name / f"{i}.png")
    first = load_image_folder(tmp_path, size=(16, 16), test_fraction=0.4, seed=3)
    again = load_dataset(tmp_path)
    assert first.classes == ["cats", "dogs"]
    assert first.train_images.shape == (6, 1, 16, 16) and first.test_images.shape[0] == 4
    assert first.train_images[first.train_labels == 1].float().mean() == pytest.approx(200, abs=1)
    rgb = load_image_folder(tmp_path, size=(8, 8), grayscale=False, test_fraction=0.4, seed=3)
    assert rgb.train_images.shape[1] == 3
    assert again.train_images.shape == (8, 1, 28, 28)
    assert (
        load_image_folder(tmp_path, test_fraction=0.4, seed=3).checksum
        == load_image_folder(tmp_path, test_fraction=0.4, seed=3).checksum
    )


def write_shades(folder: Path, shades: dict[str, int], per_class: int) -> Path:
    """Writes `per_class` images of one grey shade into folder/<class>/ for each class."""
    for name, shade in shades.items():
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (20, 20), shade).save(folder / name / f"{i:03}.png")
    return folder


def test_image_folder_order_is_a_seeded_shuffle_of_the_classes(tmp_path):
    shades = {"a": 10, "b": 100, "c": 200}
    folder = write_shades(tmp_path, shades, per_class=10)
    dataset = load_image_folder(folder, seed=5)
    assert dataset.shuffle_seed == 5
    for images, labels in (
        (dataset.train_images, dataset.train_labels),
        (dataset.test_images, dataset.test_labels),
    ):
        assert labels.bincount().tolist() == ([8, 8, 8] if len(labels) == 24 else [2, 2, 2])
        assert labels.tolist() != sorted(labels.tolist())  # file order is class order: mixed
        shade_of_label = torch.tensor(list(shades.values()))[labels]
        assert torch.equal(images[:, 0, 0, 0].long(), shade_of_label)  # pairs kept together
    again = load_image_folder(folder, seed=5)
    assert torch.equal(again.train_labels, dataset.train_labels)
    assert again.checksum == dataset.checksum
    other = load_image_folder(folder, seed=6)
    assert not torch.equal(other.train_labels, dataset.train_labels)


def test_image_folder_with_two_images_a_class_keeps_one_for_testing(tmp_path):
    dataset = load_image_folder(write_shades(tmp_path, {"a": 0, "b": 255}, per_class=2))
    assert dataset.train_labels.bincount().tolist() == [1, 1]
    assert dataset.test_labels.bincount().tolist() == [1, 1]


def test_image_folder_errors(tmp_path):
    with pytest.raises(NetscopeError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    with pytest.raises(NetscopeError, match="missing: not a directory"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NetscopeError, match="empty: holds 0 image"):
        load_image_folder(tmp_path)
    Image.new("L", (5, 5)).save(tmp_path / "empty" / "one.png")
    with pytest.raises(
        NetscopeError, match="empty: holds 1 image.*at least 2: 1 for training, 1 for testing"
    ):
        load_image_folder(tmp_path)
    (tmp_path / "empty" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(NetscopeError, match="broken.png: not a readable image"):
        load_image_folder(tmp_path)
    with pytest.raises(NetscopeError, match="test_fraction 1: expected a fraction in"):
        load_image_folder(tmp_path, test_fraction=1)


def test_huge_image_is_refused_with_one_clear_error(tmp_path, huge_png):
    for name in ("big", "small"):
        (tmp_path / name).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / name / "a.png")
    Image.new("L", (8, 8)).save(tmp_path / "small" / "b.png")
    huge = tmp_path / "big" / "huge.png"
    huge.write_bytes(huge_png.read_bytes())
    limit = 2 * Image.MAX_IMAGE_PIXELS  # where PIL stops treating it as a warning
    with pytest.raises(NetscopeError) as err:
        load_image_folder(tmp_path)
    assert str(err.value).startswith(f"{huge}: image too large to read safely")
    assert f"{limit} pixels" in str(err.value) and "400000000 pixels" in str(err.value)


# ---------------------------------------------------------------- downloads (local server only)


@pytest.fixture
def local_server(tmp_path):
    """Serves tmp_path/'www' over HTTP on 127.0.0.1; yields (folder, base_url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_downloads_checks_and_loads(local_server, tmp_path, monkeypatch):
    root, base_url = local_server
    write_idx_set(root)
    files = tuple(
        RemoteFile(f.name, f"{base_url}/{f.name}", data.file_md5(root / f.name))
        for f in data.SPECS["fashion-mnist"].files
    )
    spec = DatasetSpec("fashion-mnist", files, data.SPECS["fashion-mnist"].classes, "idx")
    monkeypatch.setitem(data.SPECS, "fashion-mnist", spec)
    monkeypatch.setenv("NETSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NETSCOPE_DATA", raising=False)
    dataset = load_dataset("fashion-mnist")  # nothing local: downloads into the cache
    assert dataset.source == str(tmp_path / "cache" / "fashion-mnist")
    assert dataset.train_images.shape == (30, 1, 28, 28)
    assert not list((tmp_path / "cache" / "fashion-mnist").glob(".*part"))


def test_download_with_wrong_checksum_leaves_nothing(local_server, tmp_path):
    root, base_url = local_server
    (root / "file.gz").write_bytes(b"tampered")
    remote = RemoteFile("file.gz", f"{base_url}/file.gz", "0" * 32)
    with pytest.raises(NetscopeError, match="does not match the published"):
        data.download_file(remote, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_download_errors_name_the_url(local_server, tmp_path):
    _, base_url = local_server
    remote = RemoteFile("missing.gz", f"{base_url}/missing.gz", "0" * 32)
    with pytest.raises(NetscopeError, match="missing.gz: download failed"):
        data.download_file(remote, tmp_path / "dest")


def test_fetch_cifar10_from_mirror_uses_published_name(local_server, tmp_path, monkeypatch):
    root, base_url = local_server
    archive, _ = write_cifar_tar(tmp_path / "src")
    (root / archive.name).write_bytes(archive.read_bytes())
    spec = data.SPECS["cifar10"]
    remote = RemoteFile(archive.name, spec.files[0].url, data.file_md5(archive))
    monkeypatch.setitem(
        data.SPECS, "cifar10", DatasetSpec("cifar10", (remote,), spec.classes, spec.fmt)
    )
    folder = data.fetch("cifar10", tmp_path / "dl", base_url=base_url)
    assert load_dataset("cifar10", root=folder).train_images.shape == (20, 3, 32, 32)


def test_shift_images_moves_real_digits_and_fills_the_border(mnist):
    images = mnist.normalize(mnist.train_images[:3])
    black = mnist.normalize(torch.zeros(1, 1, 1, 1)).flatten()
    offsets = torch.tensor([[2, -3], [0, 0], [-1, 1]])
    moved = shift_images(images, offsets, black)
    assert torch.equal(moved[0, :, 2:, :-3], images[0, :, :-2, 3:])  # down 2, left 3
    assert (moved[0, :, :2] == black).all() and (moved[0, :, :, -3:] == black).all()
    assert torch.equal(moved[1], images[1])
    assert torch.equal(moved[2, :, :-1, 1:], images[2, :, 1:, :-1])  # up 1, right 1
    # MNIST centres 20x20 digits in 28x28, so these small moves keep all of the ink
    ink = (mnist.train_images[:3].float() / 255).sum()
    assert (moved * mnist.std[0] + mnist.mean[0]).sum().item() == pytest.approx(
        ink.item(), rel=1e-5
    )


@settings(max_examples=25, deadline=None)
@given(
    offsets=st.lists(st.tuples(st.integers(-4, 4), st.integers(-4, 4)), min_size=1, max_size=4),
    channels_last=st.booleans(),
)
def test_shift_images_matches_a_pixel_by_pixel_shift(offsets, channels_last):
    # three channels with different fill values, as a normalised CIFAR-10 black pixel has
    n, c, h, w = len(offsets), 3, 6, 5
    images = torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    moved = shift_images(images, torch.tensor(offsets), fill)
    expected = fill.view(1, c, 1, 1).repeat(n, 1, h, w)
    for i, (dy, dx) in enumerate(offsets):
        for y in range(max(0, dy), min(h, h + dy)):
            for x in range(max(0, dx), min(w, w + dx)):
                expected[i, :, y, x] = images[i, :, y - dy, x - dx]
    assert torch.equal(moved, expected)
    assert moved.is_contiguous(memory_format=torch.channels_last) == channels_last
