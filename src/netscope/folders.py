"""Where each analysis writes inside a run directory, by one rule, so that no result overwrites
another:

    RUN/ANALYSIS[@CHECKPOINT][/VARIANT]

ANALYSIS is the command (evaluate, inspect, attack, fool, compare); @CHECKPOINT names the
weights when they are not the final ones (`inspect@epoch_03`); VARIANT names what ran when the
command can run several things: the attack and its norm/budget (`attack/pgd-l2`), the compared
run (`compare/fast@epoch_00`), the inspection stages (`inspect/occlusion+saliency`), the fooling
method (`fool/gradient`). Other settings (how many images, how many steps) change the size of
the same analysis, whose folder they then replace. Lessons follow the same rule under
`lessons/NAME[/VARIANT]` (`lessons/xor/full-seed-1`).
"""

from __future__ import annotations

from pathlib import Path

FINAL = "model.safetensors"


def checkpoint_tag(checkpoint: str) -> str:
    """Returns "" for the final weights, else "@" and the checkpoint's stem ("@epoch_03")."""
    return "" if checkpoint == FINAL else "@" + Path(checkpoint).stem


def output_folder(run, folder: str) -> Path:
    """Returns RUN/ANALYSIS[@CHECKPOINT][/VARIANT] for `folder` = "ANALYSIS[/VARIANT]" and the
    run's checkpoint."""
    analysis, *variant = Path(folder).parts
    return Path(run.path, analysis + checkpoint_tag(run.checkpoint), *variant)


def run_name(run) -> str:
    """Returns a run's name as another run's folders use it: its directory name, with the
    checkpoint when it is not the final one ("lecture@epoch_00")."""
    return Path(run.path).resolve().name + checkpoint_tag(run.checkpoint)


def variant(analysis: str, *parts: str | None) -> str:
    """Returns "ANALYSIS/PART1+PART2…" (just ANALYSIS when no part is given)."""
    named = "+".join(str(p) for p in parts if p)
    return f"{analysis}/{named}" if named else analysis


def lesson_folder(name: str, full: bool = False, seed: int = 0) -> Path:
    """Returns lessons/NAME for the default settings, lessons/NAME/full, …/seed-1 or
    …/full-seed-1 otherwise."""
    tags = (["full"] if full else []) + ([f"seed-{seed}"] if seed else [])
    return Path("lessons", name, *(["-".join(tags)] if tags else []))
