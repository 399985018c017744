"""XOR with one hidden layer: the lecture's hand-set weights, which g makes them work, and training.

The lecture's net is y = w₂ · g(W x + b) + b₂ with W = [[+1, −1], [−1, +1]], b = [−½, −½],
w₂ = [4, 4], b₂ = −1, read as class 1 when y > 0. Whether it computes XOR depends on g: it needs
g(−½) and g(−1½) to be (nearly) zero, which holds for the step and the ReLU but not for the
sigmoid or tanh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure as Canvas

from netscope.lessons import Figure, LessonResult, make_folder
from netscope.threads import one_cpu_thread

XOR_INPUTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = torch.tensor([0, 1, 1, 0])
LECTURE_W = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
LECTURE_B = torch.tensor([-0.5, -0.5])
LECTURE_W2 = torch.tensor([4.0, 4.0])
LECTURE_B2 = -1.0
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "step": lambda a: (a > 0).to(a.dtype),
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}
FONT = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}


def lecture_net(inputs: torch.Tensor, g: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Returns y = w₂ · g(W x + b) + b₂ of the lecture's weights for each row x of `inputs`."""
    hidden = g(inputs @ LECTURE_W.T + LECTURE_B)
    return hidden @ LECTURE_W2 + LECTURE_B2


def solves_xor(outputs: torch.Tensor) -> bool:
    """Returns whether `outputs` (one per XOR input, class 1 when > 0) equal XOR on all four."""
    return bool(((outputs > 0).long() == XOR_TARGETS).all())


def lecture_outputs() -> dict[str, torch.Tensor]:
    """Returns the lecture net's outputs on the four XOR inputs for each choice of g."""
    return {name: lecture_net(XOR_INPUTS, g) for name, g in ACTIVATIONS.items()}


@dataclass
class TrainedNets:
    """Many 2-2-1 nets trained at once from independent random inits (leading dim = net)."""

    w1: torch.Tensor  # nets×2×2
    b1: torch.Tensor  # nets×2
    w2: torch.Tensor  # nets×2
    b2: torch.Tensor  # nets
    activation: str
    losses: torch.Tensor  # steps×nets

    def outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Returns each net's output y for each input row (nets×N)."""
        g = ACTIVATIONS[self.activation]
        hidden = g(torch.einsum("nd,khd->knh", inputs, self.w1) + self.b1[:, None])
        return torch.einsum("knh,kh->kn", hidden, self.w2) + self.b2[:, None]

    def solved(self) -> torch.Tensor:
        """Returns a bool per net: does it classify all four XOR inputs right?"""
        predictions = (self.outputs(XOR_INPUTS) > 0).long()
        return (predictions == XOR_TARGETS).all(1)


def train_xor(
    nets: int = 20, activation: str = "tanh", steps: int = 1000, lr: float = 0.1, seed: int = 0
) -> TrainedNets:
    """Returns `nets` 2-2-1 nets trained with Adam on the logistic loss from independent random
    inits (PyTorch's default uniform ±1/√fan_in), all in one batched computation."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(*shape, fan_in):
        return ((torch.rand(*shape, generator=generator) * 2 - 1) / fan_in**0.5).requires_grad_()

    params = [uniform(nets, 2, 2, fan_in=2), uniform(nets, 2, fan_in=2)]
    params += [uniform(nets, 2, fan_in=2), uniform(nets, fan_in=2)]
    optimizer = torch.optim.Adam(params, lr=lr)
    targets = XOR_TARGETS.float().expand(nets, 4)
    losses = []
    with one_cpu_thread():  # tiny tensors: a second CPU thread only adds waiting
        for _ in range(steps):
            trained = TrainedNets(*params, activation=activation, losses=torch.empty(0))
            per_net = F.binary_cross_entropy_with_logits(
                trained.outputs(XOR_INPUTS), targets, reduction="none"
            ).mean(1)
            optimizer.zero_grad()
            per_net.sum().backward()  # nets are independent, so each gets its own gradient
            optimizer.step()
            losses.append(per_net.detach())
    detached = [p.detach() for p in params]
    return TrainedNets(*detached, activation=activation, losses=torch.stack(losses))


def _grid(resolution: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    axis = torch.linspace(-0.5, 1.5, resolution)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return xs, ys, torch.stack([xs.flatten(), ys.flatten()], 1)


def _regions(ax, outputs: torch.Tensor, xs, ys, title: str) -> None:
    """Draws class-1 regions (output > 0), the boundary and the four XOR points."""
    field, xs, ys = outputs.reshape(xs.shape).numpy(), xs.numpy(), ys.numpy()
    ax.contourf(
        xs, ys, (field > 0).astype(float), levels=[-0.5, 0.5, 1.5], colors=["#f4cccc", "#cfe2f3"]
    )
    if field.min() < 0 < field.max():
        ax.contour(xs, ys, field, levels=[0], colors="black", linewidths=2)
    for label, marker, color, name in [
        (0, "o", "#cc0000", "XOR = 0"),
        (1, "s", "#0b5394", "XOR = 1"),
    ]:
        points = XOR_INPUTS[XOR_TARGETS == label].numpy()
        ax.scatter(points[:, 0], points[:, 1], s=160, marker=marker, c=color, label=name, zorder=3)
    ax.set_title(title)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_aspect("equal")


def save_lecture_regions(outputs: dict[str, torch.Tensor], path: Path) -> Path:
    """Writes one panel per g: where the lecture's weights output class 1 (blue) or 0 (red)."""
    xs, ys, points = _grid()
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(18, 5.4), layout="constrained")
        axes = fig.subplots(1, len(ACTIVATIONS))
        for ax, (name, g) in zip(axes, ACTIVATIONS.items()):
            verdict = "solves XOR" if solves_xor(outputs[name]) else "fails"
            values = ", ".join(f"{v:.2f}" for v in outputs[name].tolist())
            _regions(ax, lecture_net(points, g), xs, ys, f"g = {name}: {verdict}\ny = {values}")
        axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=11)
        fig.suptitle(
            "The lecture's weights W=[[1,−1],[−1,1]], b=[−½,−½], w₂=[4,4], b₂=−1 "
            "(blue: y > 0 → class 1)"
        )
        fig.savefig(path, dpi=100)
    return path


def save_training(trained: TrainedNets, path: Path) -> Path:
    """Writes the boundary one trained net learned and the loss of every random init."""
    xs, ys, points = _grid()
    solved = trained.solved()
    first = int(solved.nonzero()[0]) if solved.any() else 0
    with matplotlib.rc_context(FONT):
        fig = Canvas(figsize=(13, 5.4), layout="constrained")
        left, right = fig.subplots(1, 2)
        boundary = trained.outputs(points)[first]
        state = "solves XOR" if solved[first] else "does not solve XOR"
        _regions(left, boundary, xs, ys, f"learned boundary, init #{first} ({state})")
        left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=11)
        steps = range(1, len(trained.losses) + 1)
        for index in range(trained.losses.shape[1]):
            color = "#0b5394" if solved[index] else "#cc0000"
            right.plot(steps, trained.losses[:, index].numpy(), color=color, alpha=0.6, lw=1.5)
        right.plot([], [], color="#0b5394", label=f"solved ({int(solved.sum())})")
        right.plot([], [], color="#cc0000", label=f"stuck ({int((~solved).sum())})")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("Adam step")
        right.set_ylabel("logistic loss on the 4 points")
        right.set_title(f"{len(solved)} random inits, g = {trained.activation}")
        right.legend()
        fig.suptitle("The same 2-2-1 architecture trained from random weights")
        fig.savefig(path, dpi=100)
    return path


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after writing its two figures into `out`."""
    out = make_folder(out)
    outputs = lecture_outputs()
    verdicts = {name: solves_xor(values) for name, values in outputs.items()}
    nets = 100 if full else 20
    trained = {g: train_xor(nets, g, seed=seed) for g in ("tanh", "relu")}
    rates = {g: float(t.solved().float().mean()) for g, t in trained.items()}
    summary = [
        f"g = {name:<7} y = {', '.join(f'{v:+.2f}' for v in outputs[name].tolist())} → "
        + ("solves XOR" if verdicts[name] else "fails")
        for name in ACTIVATIONS
    ]
    summary += [
        f"trained 2-2-1 net from random init, g = {g}: {rates[g]:.0%} of {nets} inits solve XOR "
        "(the rest stall on a plateau: loss ln2/2, 0.48 or ln2)"
        for g in trained
    ]
    figures = [
        Figure(
            save_lecture_regions(outputs, out / "xor_lecture_weights.png"),
            "The lecture's XOR weights with four choices of g",
            "Only where the blue region holds exactly the two squares does the net compute XOR.",
        ),
        Figure(
            save_training(trained["tanh"], out / "xor_trained.png"),
            "XOR learned from random weights",
            "A trained net bends its boundary around the two squares; some inits get stuck.",
        ),
    ]
    numbers = {
        "lecture_outputs": {name: values.tolist() for name, values in outputs.items()},
        "solves_xor": verdicts,
        "trained_solved_fraction": rates,
        "trained_nets": nets,
    }
    return LessonResult("xor", summary, numbers, figures)
