"""What adversarial training bought: the same attacks on an adversarially trained run and on its
clean twin (the same config without `--adversarial`), on the same test images.

`netscope train --adversarial pgd` ends with this check (TrainConfig.adversarial_check images;
0 turns it off): PGD at the training budget, the success rate among the images each network
classifies correctly, and DeepFool's median ‖r‖₂, before (the twin) and after (the run).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

from netscope.attack.deepfool import deepfool
from netscope.attack.gradient import pgd
from netscope.config import TrainConfig
from netscope.run import Run, load_run, read_json, write_json


def clean_twin_config(config: TrainConfig, out: str) -> TrainConfig:
    """Returns the config of the run's clean twin: everything the same but the attacked batches
    (and no checkpoints), trained into `out`."""
    return dataclasses.replace(
        config, adversarial=None, adversarial_check=0, checkpoints=False, out=out
    )


def attack_numbers(run: Run, n: int, eps: float) -> dict:
    """Returns a run's recorded test error and, on its first `n` test images, PGD's success rate
    at L∞ budget `eps` and DeepFool's median ‖r‖₂."""
    dataset = run.load_dataset()
    model = run.pixel_model()
    images, labels = dataset.float_images("test")[:n], dataset.test_labels[:n]
    return {
        "test_error_pct": run.info["metrics"]["test_error_pct"],
        "pgd_success_rate": pgd(model, images, labels, eps).metrics()["success_rate"],
        "deepfool_l2_median": deepfool(model, images, labels).metrics()["l2_median"],
    }


def adversarial_check(run: Run, twin: Run) -> dict:
    """Returns the before (clean twin) and after (this run) numbers of the same attacks."""
    n, eps = run.config.adversarial_check, run.config.adversarial_eps
    return {
        "images": n,
        "pgd_eps": eps,
        "clean_twin": str(twin.path),
        "before": attack_numbers(twin, n, eps),
        "after": attack_numbers(run, n, eps),
    }


def check_line(check: dict) -> str:
    """Returns the check as one line for the terminal."""
    before, after = check["before"], check["after"]

    def both(key: str, scale: float, unit: str) -> str:
        values = [before[key], after[key]]
        return " → ".join("n/a" if v is None else f"{scale * v:.2f}{unit}" for v in values)

    return (
        f"adversarial training, before (clean twin) → after, on {check['images']} test images: "
        f"PGD (L∞, ε = {check['pgd_eps']:g}) fools {both('pgd_success_rate', 100, ' %')}, "
        f"DeepFool median ‖r‖₂ {both('deepfool_l2_median', 1, '')}, "
        f"test error {both('test_error_pct', 1, ' %')}"
    )


def check_adversarial_training(run: Run, dataset, train: Callable, resume: Callable) -> dict:
    """Returns the check of an adversarially trained run after training its clean twin into
    RUN/clean_twin (with the trainer's `train`, or `resume` for a twin left unfinished),
    recording the check in run.json and printing its line on stderr."""
    twin_dir = run.path / "clean_twin"
    if not (twin_dir / "run.json").exists():
        twin = train(clean_twin_config(run.config, str(twin_dir)), dataset=dataset)
    elif read_json(twin_dir / "run.json")["epochs_done"] < run.config.epochs:
        twin = resume(twin_dir, epochs=run.config.epochs)
    else:
        twin = load_run(twin_dir)
    check = adversarial_check(run, twin)
    run.info["adversarial_check"] = check
    write_json(run.path / "run.json", run.info)
    print(f"netscope: {check_line(check)}", file=sys.stderr, flush=True)
    return check
