"""Data sets as uint8 tensors: MNIST, Fashion-MNIST, CIFAR-10 (binary version) and image folders.

`load_dataset(name_or_path)` looks for the files in this order: the explicit `root`, the
`NETSCOPE_DATA` directory, the copy bundled in the package (MNIST only), the cache directory
(`NETSCOPE_CACHE`, default `~/.cache/netscope`), and finally downloads them from the data set's
canonical location, checking each file against its published checksum before it is used.
Nothing here unpickles anything: CIFAR-10 is read from its binary version.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from netscope.errors import NetscopeError

BUNDLED_DIR = Path(__file__).parent / "_data"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


@dataclass
class Dataset:
    """Train and test images (uint8, N×C×H×W), int64 labels, class names and normalisation."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    checksum: str
    source: str
    # None: the images keep the order of their files (MNIST's files are already shuffled);
    # an int: the seed of the shuffle that mixed the classes of an image folder
    shuffle_seed: int | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Returns (channels, height, width) of one image."""
        return tuple(self.train_images.shape[1:])

    def float_images(self, split: str = "test") -> torch.Tensor:
        """Returns the split's images as float pixels in [0, 1], what every analysis and attack
        takes (the uint8 images divided by 255)."""
        if split not in ("train", "test"):
            raise NetscopeError(f"split {split!r}: expected 'train' or 'test'")
        return getattr(self, f"{split}_images").float() / 255

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Returns uint8 (or [0, 1] float) images as floats normalised by the train mean/std."""
        if images.dtype == torch.uint8:
            images = images.float() / 255
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std


def shift_images(images: torch.Tensor, offsets: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Returns each image of `images` (N×C×H×W) moved down by offsets[i, 0] and right by
    offsets[i, 1] pixels (negative: up/left); the uncovered border takes `fill` (one value per
    channel, e.g. the normalised value of a black pixel). Keeps the input's memory format.
    `offsets` may stay on the CPU (then reading its largest value costs no device sync)."""
    n, c, h, w = images.shape
    pad = int(offsets.abs().max()) if n else 0
    channels_last = images.is_contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    size = (n, c, h + 2 * pad, w + 2 * pad)
    padded = fill.to(images).view(1, c, 1, 1).expand(size).contiguous(memory_format=layout)
    padded[:, :, pad : pad + h, pad : pad + w] = images
    # every H×W window of the padded image, as a view: n, c, 2·pad+1, 2·pad+1, h, w; the image
    # moved by (dy, dx) is the window that starts at (pad - dy, pad - dx)
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    starts = (pad - offsets).to(images.device)
    moved = windows[torch.arange(n, device=images.device), :, starts[:, 0], starts[:, 1]]
    return moved.contiguous(memory_format=layout)


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its name, where to fetch it and the md5 it must have."""

    name: str
    url: str
    md5: str


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, check and read one named data set."""

    name: str
    files: tuple[RemoteFile, ...]
    classes: tuple[str, ...]
    fmt: str  # "idx" or "cifar10-bin"
    idx_md5: tuple[str, ...] = ()  # md5 of the uncompressed IDX files, when published
    sizes: tuple[int, int] | None = None  # published (train, test) image counts
    image_shape: tuple[int, int, int] | None = None  # channels, height, width


MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_NAMES += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_files(base_url: str, md5s: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f"{n}.gz", f"{base_url}{n}.gz", m) for n, m in zip(IDX_NAMES, md5s))


# Checksums: the md5 of each .gz file as published with the data set (the Fashion-MNIST README,
# the CIFAR-10 page) and, for MNIST, the md5 of the uncompressed IDX files, which also hold for
# the re-compressed copy bundled with netscope.
SPECS = {
    "mnist": DatasetSpec(
        "mnist",
        _idx_files(
            MNIST_URL,
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        ),
        tuple(str(d) for d in range(10)),
        "idx",
        idx_md5=(
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        ),
        sizes=(60_000, 10_000),
        image_shape=(1, 28, 28),
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        _idx_files(
            FASHION_URL,
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        ),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")
        + ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "idx",
        sizes=(60_000, 10_000),
        image_shape=(1, 28, 28),
    ),
    "cifar10": DatasetSpec(
        "cifar10",
        (
            RemoteFile(
                "cifar-10-binary.tar.gz",
                f"{CIFAR10_URL}cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
            ),
        ),
        ("airplane", "automobile", "bird", "cat", "deer")
        + ("dog", "frog", "horse", "ship", "truck"),
        "cifar10-bin",
        sizes=(50_000, 10_000),
        image_shape=(3, 32, 32),
    ),
}


# ---------------------------------------------------------------- file formats


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Returns the uint8 array stored in IDX bytes; raises NetscopeError naming `source` if bad."""
    if len(data) < 4:
        raise NetscopeError(f"{source}: truncated IDX file ({len(data)} bytes, header needs 4)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise NetscopeError(
            f"{source}: wrong magic number 0x{data[:4].hex()} (expected 0x0000 08 NN: unsigned bytes)"
        )
    if not 1 <= ndim <= 4:
        raise NetscopeError(f"{source}: IDX file claims {ndim} dimensions (expected 1 to 4)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise NetscopeError(f"{source}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise NetscopeError(
            f"{source}: IDX body has {len(data) - header} bytes, shape {shape} needs {expected}"
            + (" (truncated file)" if len(data) - header < expected else "")
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx(path: Path) -> np.ndarray:
    """Returns the array in an IDX file (gzipped or not)."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise NetscopeError(f"{path}: cannot read ({err})") from None
    return parse_idx(raw, str(path))


def _check_pair(images: np.ndarray, labels: np.ndarray, n_classes: int, source: str) -> None:
    if images.ndim != 3:
        raise NetscopeError(f"{source}: images must be N×H×W, got shape {images.shape}")
    if labels.ndim != 1:
        raise NetscopeError(f"{source}: labels must be a vector, got shape {labels.shape}")
    if len(images) != len(labels):
        raise NetscopeError(f"{source}: {len(images)} images but {len(labels)} labels")
    if len(labels) and labels.max() >= n_classes:
        raise NetscopeError(
            f"{source}: label {labels.max()} out of range (expected 0..{n_classes - 1})"
        )


def _find_file(folder: Path, name: str) -> Path:
    for candidate in (
        name,
        name.removesuffix(".gz"),
        name.removesuffix(".gz").replace("-idx", ".idx"),
    ):
        if (folder / candidate).is_file():
            return folder / candidate
    raise NetscopeError(f"{folder}: missing {name}")


def read_idx_dataset(folder: Path, spec: DatasetSpec) -> tuple[np.ndarray, ...]:
    """Returns (train_images, train_labels, test_images, test_labels) read from IDX files."""
    arrays = []
    for remote, idx_md5 in zip(spec.files, spec.idx_md5 or (None,) * 4):
        path = _find_file(folder, remote.name)
        array = read_idx(path)
        if idx_md5 and hashlib.md5(array_bytes_with_header(array)).hexdigest() != idx_md5:
            raise NetscopeError(f"{path}: content does not match the published {spec.name} md5")
        arrays.append(array)
    train_x, train_y, test_x, test_y = arrays
    n_classes = len(spec.classes)
    _check_pair(train_x, train_y, n_classes, str(folder / spec.files[0].name))
    _check_pair(test_x, test_y, n_classes, str(folder / spec.files[2].name))
    return train_x, train_y, test_x, test_y


def array_bytes_with_header(array: np.ndarray) -> bytes:
    """Returns the IDX encoding of a uint8 array (the inverse of `parse_idx`)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images N×3×32×32, labels) from one CIFAR-10 binary batch file."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise NetscopeError(f"{path}: cannot read ({err})") from None
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        raise NetscopeError(
            f"{path}: {len(raw)} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD).copy()
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise NetscopeError(f"{path}: label {labels.max()} out of range (expected 0..9)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def read_cifar10_dataset(folder: Path) -> tuple[np.ndarray, ...]:
    """Returns (train_images, train_labels, test_images, test_labels) from the binary version."""
    if (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    elif (
        not (folder / "test_batch.bin").is_file() and (folder / "cifar-10-binary.tar.gz").is_file()
    ):
        _extract_tar(folder / "cifar-10-binary.tar.gz", folder)
        folder = folder / "cifar-10-batches-bin"
    train = [read_cifar10_batch(_find_file(folder, f"data_batch_{i}.bin")) for i in range(1, 6)]
    test_x, test_y = read_cifar10_batch(_find_file(folder, "test_batch.bin"))
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return train_x, train_y, test_x, test_y


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".bin")]
            for member in members:
                target = (dest / member.name).resolve()
                if dest.resolve() not in target.parents:
                    raise NetscopeError(f"{archive}: unsafe path {member.name} in archive")
                tar.extract(member, dest, filter="data")
    except tarfile.TarError:  # its message lists every compression tried, on several lines
        raise NetscopeError(
            f"{archive}: cannot read (not a tar archive, or a corrupt one)"
        ) from None
    except (OSError, EOFError, zlib.error) as err:
        raise NetscopeError(f"{archive}: cannot read ({err})") from None


# ---------------------------------------------------------------- finding and downloading


def cache_dir() -> Path:
    """Returns the directory where downloaded data sets are kept."""
    return Path(os.environ.get("NETSCOPE_CACHE", Path.home() / ".cache" / "netscope"))


def file_md5(path: Path) -> str:
    """Returns the hex md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(remote: RemoteFile, dest_dir: Path, url: str | None = None) -> Path:
    """Returns the path of `remote` in `dest_dir`, downloaded atomically and md5-checked."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / remote.name
    if dest.is_file() and file_md5(dest) == remote.md5:
        return dest
    url = url or remote.url
    print(f"netscope: downloading {url} -> {dest}", file=sys.stderr)
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{remote.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
        actual = file_md5(Path(tmp_name))
        if actual != remote.md5:
            raise NetscopeError(f"{url}: md5 {actual} does not match the published {remote.md5}")
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, dest)
    except OSError as err:
        raise NetscopeError(f"{url}: download failed ({err})") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return dest


def fetch(name: str, dest_dir: Path | None = None, base_url: str | None = None) -> Path:
    """Returns the folder holding data set `name` after downloading any missing file into it.

    `base_url` replaces the canonical location (a mirror, or a local server in tests)."""
    spec = _spec(name)
    folder = dest_dir or cache_dir() / spec.name
    for remote in spec.files:
        download_file(remote, folder, base_url and base_url.rstrip("/") + "/" + remote.name)
    return folder


def _has_files(folder: Path, spec: DatasetSpec) -> bool:
    if spec.fmt == "cifar10-bin":
        names = ("cifar-10-batches-bin", "test_batch.bin", spec.files[0].name)
        return any((folder / name).exists() for name in names)
    try:
        [_find_file(folder, f.name) for f in spec.files]
    except NetscopeError:
        return False
    return True


def search_folders(spec: DatasetSpec, root: str | Path | None = None) -> list[Path]:
    """Returns the folders where data set files are looked for, in order: `root` (or its
    sub-folder NAME), else $NETSCOPE_DATA, the copy bundled with the package and the cache."""
    if root is not None:
        return [Path(root), Path(root) / spec.name]
    candidates = []
    if os.environ.get("NETSCOPE_DATA"):
        env = Path(os.environ["NETSCOPE_DATA"])
        candidates += [env / spec.name, env]
    return candidates + [BUNDLED_DIR / spec.name, cache_dir() / spec.name]


def locate(name: str, root: str | Path | None = None, download: bool = True) -> Path:
    """Returns the folder that holds data set `name`, searched in the documented order."""
    spec = _spec(name)
    candidates = search_folders(spec, root)
    for candidate in candidates:
        if _has_files(candidate, spec):
            return candidate
    if root is not None:
        raise NetscopeError(f"{root}: no {spec.name} files there (expected {_expected(spec)})")
    if not download:
        raise NetscopeError(f"{spec.name}: not found offline (looked in {candidates})")
    return fetch(name)


def _expected(spec: DatasetSpec) -> str:
    return ", ".join(f.name for f in spec.files)


def _spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise NetscopeError(
            f"unknown data set {name!r} (expected one of {sorted(SPECS)} or a folder)"
        )
    return SPECS[name]


# ---------------------------------------------------------------- building a Dataset


def _as_dataset(
    name: str,
    arrays: tuple[np.ndarray, ...],
    classes: list[str],
    source: str,
    shuffle_seed: int | None = None,
) -> Dataset:
    train_x, train_y, test_x, test_y = arrays
    if len(train_x) == 0 or len(test_x) == 0:
        raise NetscopeError(
            f"{source}: {len(train_x)} training and {len(test_x)} test images "
            "(training and testing need at least one image each)"
        )
    if train_x.ndim == 3:
        train_x, test_x = train_x[:, None], test_x[:, None]
    train_images = torch.from_numpy(np.ascontiguousarray(train_x))
    scaled = train_images.double() / 255
    mean = tuple(scaled.mean(dim=(0, 2, 3)).tolist())
    std = tuple(scaled.std(dim=(0, 2, 3)).tolist())
    return Dataset(
        name=name,
        train_images=train_images,
        train_labels=torch.from_numpy(train_y.astype(np.int64)),
        test_images=torch.from_numpy(np.ascontiguousarray(test_x)),
        test_labels=torch.from_numpy(test_y.astype(np.int64)),
        classes=list(classes),
        mean=mean,
        std=std,
        checksum=_checksum(arrays),
        source=source,
        shuffle_seed=shuffle_seed,
    )


def _checksum(arrays: tuple[np.ndarray, ...]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return "sha256:" + digest.hexdigest()


def load_dataset(
    name: str | Path = "mnist", root: str | Path | None = None, download: bool = True
) -> Dataset:
    """Returns the named data set (`mnist`, `fashion-mnist`, `cifar10`) or an image folder."""
    if str(name) not in SPECS:
        path = Path(name)
        if path.is_dir():
            return load_image_folder(path)
        raise NetscopeError(
            f"unknown data set {str(name)!r} (expected one of {sorted(SPECS)} or a folder)"
        )
    spec = SPECS[str(name)]
    folder = locate(spec.name, root, download)
    if spec.fmt == "idx":
        arrays = read_idx_dataset(folder, spec)
    else:
        arrays = read_cifar10_dataset(folder)
    return _as_dataset(spec.name, arrays, list(spec.classes), str(folder))


def dataset_info(name: str | Path, root: str | Path | None = None) -> dict:
    """Returns what is known of a data set without downloading anything: its classes, sizes,
    files (URL, published md5), the folders searched and the one holding it (None when absent:
    `netscope data fetch NAME` downloads it); when present, also the facts read from its files."""
    if str(name) not in SPECS:
        return loaded_facts(load_dataset(name, root))
    spec = SPECS[str(name)]
    folders = search_folders(spec, root)
    found = next((f for f in folders if _has_files(f, spec)), None)
    info = {
        "name": spec.name,
        "classes": list(spec.classes),
        "image_shape": list(spec.image_shape or ()),
        "train": spec.sizes[0] if spec.sizes else None,
        "test": spec.sizes[1] if spec.sizes else None,
        "files": [{"name": f.name, "url": f.url, "md5": f.md5} for f in spec.files],
        "searched": [str(f) for f in folders],
        "present": found is not None,
        "found": str(found) if found else None,
    }
    if found is None:
        info["fetch"] = (
            f"netscope data fetch {spec.name} (downloads into {cache_dir() / spec.name})"
        )
        return info
    return info | loaded_facts(load_dataset(spec.name, found, download=False))


def loaded_facts(dataset: Dataset) -> dict:
    """Returns the facts read from a loaded data set: sizes, checksum, class counts, mean/std."""
    return {
        "name": dataset.name,
        "source": dataset.source,
        "checksum": dataset.checksum,
        "image_shape": list(dataset.image_shape),
        "train": len(dataset.train_images),
        "test": len(dataset.test_images),
        "classes": dataset.classes,
        "train_class_counts": dataset.train_labels.bincount(
            minlength=len(dataset.classes)
        ).tolist(),
        "mean": dataset.mean,
        "std": dataset.std,
    }


def load_image_folder(
    folder: str | Path,
    *,
    size: tuple[int, int] = (28, 28),
    grayscale: bool = True,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Returns a Dataset from `folder/<class>/*.png|jpg`, resized, split per class into train
    and test images and then shuffled, both by `seed`: a file system lists a folder class by
    class, and batches taken in that order would each hold one class."""
    folder = Path(folder)
    if not 0 < test_fraction < 1:
        raise NetscopeError(f"test_fraction {test_fraction}: expected a fraction in (0, 1)")
    class_dirs = _class_dirs(folder)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, class_dir in enumerate(class_dirs):
        files = _image_files(class_dir)
        files = [files[i] for i in rng.permutation(len(files))]
        n_test = min(len(files) - 1, max(1, round(len(files) * test_fraction)))
        images = [(read_image(path, size, grayscale), label) for path in files]
        test += images[:n_test]
        train += images[n_test:]
    arrays = _shuffled(train, rng) + _shuffled(test, rng)
    names = [d.name for d in class_dirs]
    return _as_dataset(folder.name, arrays, names, str(folder), shuffle_seed=seed)


def _class_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise NetscopeError(f"{folder}: not a directory (expected {folder}/<class>/<image>.png)")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise NetscopeError(
            f"{folder}: no class sub-folders (expected {folder}/<class>/<image>.png)"
        )
    return class_dirs


def _image_files(class_dir: Path) -> list[Path]:
    files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise NetscopeError(
            f"{class_dir}: holds {len(files)} image(s) ({' '.join(sorted(IMAGE_SUFFIXES))}); "
            "each class needs at least 2: 1 for training, 1 for testing"
        )
    return files


def read_image(path: Path, size: tuple[int, int], grayscale: bool = True) -> np.ndarray:
    """Returns the image file at `path` as uint8 C×H×W pixels resized to `size` (height, width);
    raises NetscopeError naming the file when it cannot be read, or is too large to read safely."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB").resize(size[::-1])
            pixels = np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as err:
        raise NetscopeError(f"{path}: image too large to read safely ({err})") from None
    except (UnidentifiedImageError, OSError) as err:
        raise NetscopeError(f"{path}: not a readable image ({err})") from None
    return pixels[None] if grayscale else pixels.transpose(2, 0, 1)


def _shuffled(
    pairs: list[tuple[np.ndarray, int]], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images, labels) of the (image, label) pairs in an order drawn from `rng`."""
    order = rng.permutation(len(pairs))
    images = np.stack([pairs[i][0] for i in order])
    return images, np.array([pairs[i][1] for i in order], dtype=np.int64)


# ---------------------------------------------------------------- the lectures' data-set table


@dataclass(frozen=True)
class DatasetFact:
    """One row of the lectures' table of image data sets, as the data set's own paper gives it."""

    name: str
    year: int
    images: str
    resolution: str
    classes: str
    source: str  # the paper that introduced the data set
    key: str | None = None  # the name netscope loads it by, when it can


DATASET_FACTS = (
    DatasetFact("MNIST", 1998, "70,000", "28×28", "10", "LeCun et al., Proc. IEEE 1998", "mnist"),
    DatasetFact("NORB (small)", 2004, "48,600 pairs", "96×96 stereo", "5",
                "LeCun, Huang & Bottou, CVPR 2004"),
    DatasetFact("Caltech 101", 2004, "9,146", "~300×200", "101 + 1",
                "Fei-Fei, Fergus & Perona, CVPRW 2004"),
    DatasetFact("Caltech 256", 2007, "30,607", "varies", "256 + 1",
                "Griffin, Holub & Perona, Caltech TR 2007"),
    DatasetFact("LFW", 2007, "13,233", "250×250", "5,749 people",
                "Huang et al., UMass TR 07-49, 2007"),
    DatasetFact("CIFAR-10", 2009, "60,000", "32×32", "10", "Krizhevsky, U. Toronto TR 2009",
                "cifar10"),
    DatasetFact("PASCAL VOC 2012", 2012, "11,530", "~500×375", "20",
                "Everingham et al., IJCV 2010"),
    DatasetFact("MS-COCO", 2014, "328,000", "~640×480", "91 (80 used)", "Lin et al., ECCV 2014"),
    DatasetFact("ImageNet ILSVRC", 2012, "1.43 million", "varies", "1,000",
                "Deng et al. 2009; Russakovsky et al. 2015"),
    DatasetFact("Cityscapes", 2016, "25,000", "2048×1024", "30 (19 used)",
                "Cordts et al., CVPR 2016"),
)  # fmt: skip

DATASET_NOTES = (  # what the short table cells leave out
    "MNIST 60k train + 10k test; CIFAR-10 50k + 10k; NORB: 24,300 stereo pairs each for train "
    "and test; Caltech '+ 1' = background/clutter class; LFW counts people, not classes; VOC: "
    "train+val images of the classification/detection task; COCO: 91 object types, 80 annotated "
    "for detection; ILSVRC-2012: 1.28 M train + 50k val + 100k test, networks see 224×224 crops; "
    "Cityscapes: 5,000 finely + 20,000 coarsely annotated frames, 19 classes evaluated."
)


def format_dataset_table(facts: tuple[DatasetFact, ...] = DATASET_FACTS) -> str:
    """Returns the lectures' data-set table as fixed-width text, marking what netscope loads,
    followed by the notes on how each data set counts its images and classes."""
    import textwrap

    header = ("data set", "year", "images", "resolution", "classes", "netscope", "source")
    rows = [header] + [
        (f.name, str(f.year), f.images, f.resolution, f.classes,
         f.key if f.key in SPECS else "-", f.source)
        for f in facts
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n\n" + textwrap.fill(DATASET_NOTES, width=len(lines[1]))
