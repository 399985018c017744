"""What the attack pipeline, the CLI, the demo, the report and the web page know of an attack.

Each attack file ends with its `SPEC`; attack/registry.py lists them. Adding an attack is one
file (the attack, an adapter from an AttackJob and its SPEC) plus one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from netscope.attack.result import AttackResult

if TYPE_CHECKING:
    from netscope.record import Figure


@dataclass
class AttackJob:
    """One attack to run on a run's test images, as the pipeline prepared it."""

    spec: AttackSpec  # which attack
    model: nn.Module  # pixels in [0, 1] -> logits
    images: torch.Tensor  # N×C×H×W pixels
    labels: torch.Tensor
    targets: torch.Tensor | None  # one class per image (a targeted attack), or None
    norm: str  # linf | l2
    eps: float | None  # the budget, for attacks that take one
    options: Any  # the attack's options dataclass (None when it has none)
    seed: int = 0
    progress: bool = False
    curve: bool = False  # also measure the success rate at smaller budgets
    out: Path = Path(".")  # where its figures go
    classes: list[str] = field(default_factory=list)
    # images that attacks learning from data (universal) build on, loaded on call
    train_images: Callable[[], torch.Tensor] | None = None

    @property
    def name(self) -> str:
        """Returns METHOD_NORM, the stem of the attack's figure files."""
        return f"{self.spec.name}_{self.norm}"


# extras(job, result) -> (more numbers for attack.json, more figures)
Extras = Callable[[AttackJob, AttackResult], tuple[dict, list["Figure"]]]


@dataclass(frozen=True)
class AttackSpec:
    """One attack as the pipeline runs it."""

    name: str  # the --method name
    title: str  # how figures and the report name it
    attack: Callable[[AttackJob], AttackResult]  # the attack on a job's images
    norms: tuple[str, ...] = ("l2",)  # the norms it works in, its default first
    options: type | None = None  # its options dataclass (None: it has none)
    budget: dict[str, float] | None = None  # default budget --eps per norm (None: takes none)
    targeted: bool = False  # takes --target
    extras: Extras | None = None  # numbers and figures beyond the examples figure
    demo: dict | None = None  # the demo's AttackConfig settings (None: the demo skips it)
    per_image: bool = True  # each image is attacked on its own (the web page's twin)
