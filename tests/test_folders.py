"""One rule for where analyses write (RUN/ANALYSIS[@CHECKPOINT][/VARIANT]): running several keeps
every result, and the report names each."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

from netscope.attack import AttackConfig
from netscope.attack.pipeline import attack_folder
from netscope.cli import main
from netscope.folders import checkpoint_tag, lesson_folder, output_folder, run_name, variant


def copy_run(run_dir: Path, folder: Path) -> Path:
    """Returns a copy of a run's weights, checkpoints and record, to write analyses into."""
    shutil.copytree(run_dir, folder, ignore=shutil.ignore_patterns(".lock", "train_state*"))
    return folder


def test_folder_names_say_what_ran_and_on_which_weights():
    final = SimpleNamespace(path=Path("runs/a"), checkpoint="model.safetensors")
    early = SimpleNamespace(path=Path("runs/a"), checkpoint="checkpoints/epoch_03.safetensors")
    assert (
        checkpoint_tag(final.checkpoint) == "" and checkpoint_tag(early.checkpoint) == "@epoch_03"
    )
    assert output_folder(final, "inspect") == Path("runs/a/inspect")
    assert output_folder(early, "attack/pgd") == Path("runs/a/attack@epoch_03/pgd")
    assert variant("inspect", "occlusion", "saliency") == "inspect/occlusion+saliency"
    assert variant("fool", None) == "fool"
    assert run_name(early) == "a@epoch_03"
    assert lesson_folder("xor") == Path("lessons/xor")
    assert lesson_folder("xor", full=True, seed=1) == Path("lessons/xor/full-seed-1")
    folders = {
        attack_folder(AttackConfig(method="pgd")),
        attack_folder(AttackConfig(method="pgd", norm="l2")),
        attack_folder(AttackConfig(method="pgd", eps=0.1)),
        attack_folder(AttackConfig(method="pgd", target=3)),
        attack_folder(AttackConfig(method="deepfool")),
    }
    assert folders == {"attack/pgd", "attack/pgd-l2", "attack/pgd-eps0.1", "attack/pgd-target3",
                       "attack/deepfool"}  # fmt: skip


def test_attacks_in_sequence_keep_every_result_and_the_report_names_each(
    lecture_run, tmp_path, capsys
):
    run_dir = copy_run(lecture_run.path, tmp_path / "run")
    small = ["--n", "30", "--no-curve", "--no-progress"]
    for method in ("deepfool", "fgsm", "pgd"):
        assert main(["attack", str(run_dir), "--method", method, *small]) == 0
    assert main(["attack", str(run_dir), "--method", "pgd", "--eps", "0.1", *small]) == 0
    early = ["--checkpoint", "checkpoints/epoch_01.safetensors"]
    assert main(["attack", str(run_dir), "--method", "deepfool", *small, *early]) == 0
    records = sorted(p.relative_to(run_dir) for p in run_dir.rglob("attack.json"))
    assert [r.parent.as_posix() for r in records] == [
        "attack/deepfool",
        "attack/fgsm",
        "attack/pgd",
        "attack/pgd-eps0.1",
        "attack@epoch_01/deepfool",
    ]
    kept = [json.loads((run_dir / r).read_text()) for r in records]
    assert [(r["method"], r["eps"], r["checkpoint"][:11]) for r in kept] == [
        ("deepfool", None, "model.safet"),
        ("fgsm", 0.3, "model.safet"),
        ("pgd", 0.3, "model.safet"),
        ("pgd", 0.1, "model.safet"),
        ("deepfool", None, "checkpoints"),
    ]
    assert main(["report", str(run_dir), "--no-progress"]) == 0
    html = (run_dir / "report.html").read_text()
    nav = re.findall(r'<a href="#[^"]+">([^<]+)</a>', html.split("<main>")[0])
    attacks = [name for name in nav if name.startswith("Attack: ")]
    assert attacks == [
        "Attack: deepfool (L2)",
        "Attack: fgsm (L∞, ε = 0.3)",
        "Attack: pgd (L∞, ε = 0.3)",
        "Attack: pgd (L∞, ε = 0.1)",
        "Attack: deepfool (L2) at epoch_01",
    ]
    assert len(set(nav)) == len(nav)  # no two links read the same
    capsys.readouterr()


def test_inspect_fool_compare_and_evaluate_follow_the_rule(lecture_run, tmp_path, capsys):
    run_dir = copy_run(lecture_run.path, tmp_path / "lecture")
    quiet = "--no-progress"
    assert main(["inspect", str(run_dir), "--stages", "filters", quiet]) == 0
    assert main(["inspect", str(run_dir), "--stages", "filters", "--checkpoint",
                 "checkpoints/epoch_00.safetensors", quiet]) == 0  # fmt: skip
    assert main(["fool", str(run_dir), "--method", "gradient", "--steps", "3", quiet]) == 0
    assert main(["compare", str(run_dir), str(run_dir), "--checkpoint-b",
                 "checkpoints/epoch_00.safetensors", "--n-images", "20", quiet]) == 0  # fmt: skip
    assert main(["evaluate", str(run_dir), quiet]) == 0
    found = sorted(p.relative_to(run_dir).parent.as_posix() for p in run_dir.rglob("*.json")
                   if p.name != "run.json")  # fmt: skip
    assert found == [
        "compare/lecture@epoch_00",
        "evaluate",
        "fool/gradient",
        "inspect/filters",
        "inspect@epoch_00/filters",
    ]
    assert main(["report", str(run_dir), quiet]) == 0
    html = (run_dir / "report.html").read_text()
    for name in ("Inside the network (filters)", "Inside the network (filters) at epoch_00",
                 "Comparing representations: vs lecture@epoch_00",
                 "Fooling images (gradient)"):  # fmt: skip
        assert f">{name}</a>" in html, name
    capsys.readouterr()
