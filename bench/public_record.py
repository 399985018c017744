"""Run a public MNIST speed record (tuomaso/train_mnist_fast, notebook 8_Final_00s76) on this
machine, fed netscope's MNIST files, beside our `fast` recipe. Its code stays outside this repo.

    # bring the repository next to (not into) this one, e.g. /work/.mirror/…/repo, then:
    python bench/public_record.py --repo /work/.mirror/tuomaso+train_mnist_fast/repo --seeds 5

Why it is not run unchanged: the record is a Jupyter notebook (`%%time`/`%%timeit` cell magics,
no Jupyter here), and its data step (data_saver.py) needs torchvision and a download. This script
does what data_saver.py does with our files (pixels/255 normalised by 0.1307/0.3081, training set
shuffled once, saved as data/*.pt), then executes the notebook's code cells as written, with the
magic lines dropped, and times its `train(...)` call (and `main()`, which also tests) per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from memory import peak_memory_mb, reset_peak_memory
from setups import limit_dataset

from netscope.config import recipe_config
from netscope.data import load_dataset
from netscope.train import train

NOTEBOOK = "8_Final_00s76.ipynb"
# the record's notebook trains on the GPU when there is one (as our `fast` recipe does), else CPU
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def read_notebook(repo: Path) -> dict:
    """Returns the notebook from a checkout or from a bare git directory (its HEAD)."""
    if (repo / NOTEBOOK).exists():
        return json.loads((repo / NOTEBOOK).read_text())
    shown = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{NOTEBOOK}"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(shown.stdout)


def code_cells(notebook: dict) -> list[str]:
    """Returns the code cells with IPython magic lines (%, !) removed and the timing cells left
    out (this script times instead)."""
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "%%timeit" in source or "test_accs" in source:
            continue
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        cells.append("\n".join(lines))
    return cells


def save_data(folder: Path, dataset, seed: int = 0) -> None:
    """Writes data/*.pt as the record's data_saver.py would, from netscope's MNIST files."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    order = torch.randperm(len(dataset.train_images), generator=torch.Generator().manual_seed(seed))
    normalise = lambda x: (x.float() / 255 - 0.1307) / 0.3081  # noqa: E731 (its constants)
    torch.save(normalise(dataset.train_images[order]), folder / "data/train_data.pt")
    torch.save(dataset.train_labels[order], folder / "data/train_labels.pt")
    torch.save(normalise(dataset.test_images), folder / "data/test_data.pt")
    torch.save(dataset.test_labels, folder / "data/test_labels.pt")


def load_record(repo: Path, dataset) -> dict:
    """Returns the namespace the record's notebook cells leave behind, its `train` timed."""
    folder = Path(tempfile.mkdtemp(prefix="train-mnist-fast-"))
    save_data(folder, dataset)
    os.chdir(folder)  # its cells read data/*.pt relative to the working directory
    scope: dict = {"__name__": "record", "timed_train_s": 0.0, "data_folder": folder}
    for source in code_cells(read_notebook(repo)):
        exec(compile(source, NOTEBOOK, "exec"), scope)  # noqa: S102 (the public code, as written)
    original_train = scope["train"]

    def train_timed(*args, **kwargs):
        start = time.perf_counter()
        original_train(*args, **kwargs)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()  # its last kernels belong to its training time
        scope["timed_train_s"] = time.perf_counter() - start

    scope["train"] = train_timed
    return scope


def run_record(scope: dict, seed: int) -> dict:
    """Returns one run of the record: training seconds, main() seconds (with its test), error."""
    torch.manual_seed(seed)
    reset_peak_memory(DEVICE)
    start = time.perf_counter()
    accuracy = scope["main"]()
    main_s = time.perf_counter() - start
    return {"setup": "train_mnist_fast", "seed": seed, "train_s": round(scope["timed_train_s"], 3),
            "main_s": round(main_s, 3), "test_error_pct": round(100 - accuracy, 2),
            "peak_mb": round(peak_memory_mb(DEVICE), 1)}  # fmt: skip


def run_ours(dataset, seed: int) -> dict:
    """Returns one run of our fast recipe: training seconds and test error."""
    out = tempfile.mkdtemp(prefix="netscope-fast-")
    config = recipe_config("fast", seed=seed, out=out, progress=False, checkpoints=False)
    reset_peak_memory(DEVICE)
    run = train(config, dataset=dataset)
    shutil.rmtree(out)
    return {"setup": "netscope fast", "seed": seed, "train_s": round(run.info["train_seconds"], 3),
            "test_error_pct": round(run.metrics[-1]["test_error_pct"], 2),
            "peak_mb": round(peak_memory_mb(DEVICE), 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repo", type=Path, required=True, help="checkout or git dir of the record"
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument(
        "--limit", type=int, default=0, help="first N train/test images (smoke test)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = limit_dataset(load_dataset("mnist"), args.limit)
    scope = load_record(args.repo.resolve(), dataset)
    rows = []
    for seed in range(args.seeds):  # interleaved, so a burst of load hits both alike
        for row in (run_ours(dataset, seed), run_record(scope, seed)):
            rows.append(row)
            print(json.dumps(row), flush=True)
    shutil.rmtree(scope["data_folder"])  # 220 MB of tensors
    for name in ("netscope fast", "train_mnist_fast"):
        mine = [r for r in rows if r["setup"] == name]
        times = sorted(r["train_s"] for r in mine)
        errors = [r["test_error_pct"] for r in mine]
        print(json.dumps({"setup": name, "median_train_s": times[len(times) // 2],
                          "mean_test_error_pct": round(sum(errors) / len(errors), 3),
                          "seeds_at_or_below_1pct": sum(e <= 1.0 for e in errors)}))  # fmt: skip


if __name__ == "__main__":
    main()
