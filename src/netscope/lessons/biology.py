"""Lesson `biology`: the lecture's two findings about networks and the visual cortex, replayed
with a trained network standing in for the monkey's recordings.

Yamins et al. (2014, PNAS) predicted IT neurons from the top layer of many networks by ridge
regression and found (1) the better a network categorises, the better it predicts IT, and (2) early
layers predict early areas (V4) best and late layers late areas (IT). Here the "brain" is a
reference lecture CNN trained on MNIST; the candidates are lecture CNNs of other seeds and
training-set sizes, taken at every epoch from random initialisation (epoch 0) on.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from netscope.compare import (
    compare_features,
    gram_cka,
    gram_predictivity,
    layer_features,
    plot_heatmap,
)
from netscope.compare.measures import nanmedian
from netscope.config import recipe_config
from netscope.data import load_dataset
from netscope.evaluate import error_pct, predict
from netscope.lessons import Figure, LessonResult, make_folder
from netscope.png import pyplot, save_png
from netscope.progress import progress_bar
from netscope.run import load_run
from netscope.train import train

AREAS = ["relu1", "relu2", "relu3"]  # the lecture CNN's hidden layers: "V1", "V4", "IT"
DEEP = "relu3"


@dataclass
class Plan:
    """How big the lesson is: the quick default (about a minute on 2 CPU cores) or `full`."""

    reference: dict
    candidates: list[dict]
    n_images: int
    folds: int
    accuracy_images: int = 2000


QUICK = Plan(
    reference=dict(seed=100, train_limit=10_000, epochs=2),
    candidates=[
        dict(seed=s, train_limit=n, epochs=3) for s, n in enumerate([300, 1000, 3000, 10_000], 1)
    ],
    n_images=500,
    folds=3,
)
FULL = Plan(
    reference=dict(seed=100, train_limit=0, epochs=5),
    candidates=[
        dict(seed=s, train_limit=n, epochs=5)
        for s, n in enumerate([300, 1000, 3000, 10_000, 30_000, 0], 1)
    ],
    n_images=1000,
    folds=5,
    accuracy_images=10_000,
)


@dataclass
class Point:
    """One candidate network at one epoch: its accuracy and how well it matches the reference."""

    seed: int
    train_images: int
    epoch: int
    accuracy_pct: float
    predictivity: float
    cka: float


def train_quietly(out: Path, dataset, seed: int, **options):
    """Returns a lecture-recipe Run trained into `out` (the trainer's epoch lines are swallowed)."""
    # the trainer's own per-epoch test error is not used here: keep its evaluation small
    config = recipe_config(
        "lecture", out=str(out), progress=False, seed=seed, test_limit=1000, **options
    )
    with contextlib.redirect_stderr(io.StringIO()):
        return train(config, dataset=dataset)


def accuracy_pct(run, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Returns the run's test accuracy in percent on normalised `inputs`."""
    return 100.0 - error_pct(predict(run.model, inputs), labels)


def score_checkpoints(run, dataset, images, reference, plan: Plan, seed: int, bar) -> list[Point]:
    """Returns a Point for every epoch checkpoint of `run` (epoch 0 = initialisation)."""
    test = dataset.normalize(dataset.test_images[: plan.accuracy_images])
    labels = dataset.test_labels[: plan.accuracy_images]
    points = []
    for epoch, checkpoint in enumerate(run.checkpoints()[:-1]):
        candidate = load_run(run.path, checkpoint)
        feats = layer_features(candidate.pixel_model(), images, [DEEP], seed=seed + 1)[DEEP]
        r2 = gram_predictivity(feats.gram, reference.units, plan.folds, seed)
        points.append(
            Point(
                run.config.seed,
                run.info["data"]["train_size"],
                epoch,
                accuracy_pct(candidate, test, labels),
                nanmedian(r2),
                gram_cka(feats.gram, reference.gram),
            )
        )
        bar.update()
    return points


def plot_accuracy_scatter(points: list[Point]):
    """Returns a figure: test accuracy vs predictivity (left) and vs CKA (right), one line per run."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    runs = sorted({(p.seed, p.train_images) for p in points})
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(runs)))
    for ax, measure, label in [
        (axes[0], "predictivity", f"predictivity of reference {DEEP} (median R²)"),
        (axes[1], "cka", f"linear CKA with reference {DEEP}"),
    ]:
        for colour, (seed, n) in zip(colours, runs):
            mine = [p for p in points if p.seed == seed]
            xs = [p.accuracy_pct for p in mine]
            ys = [getattr(p, measure) for p in mine]
            ax.plot(xs, ys, "-o", color=colour, markersize=8, label=f"seed {seed}, {n:,} images")
            ax.plot(xs[0], ys[0], "o", markersize=13, mfc="white", mec=colour, mew=2)
        ax.set_xlabel("test accuracy of the candidate network (%)", fontsize=12)
        ax.set_ylabel(label, fontsize=12)
        ax.grid(alpha=0.3)
    axes[0].legend(title="candidate (open = random init)", fontsize=10, title_fontsize=10)
    fig.suptitle(
        f"Better-trained networks predict a trained network's deep layer ({DEEP}) better",
        fontsize=14,
    )
    return fig


def spearman(xs: list[float], ys: list[float]) -> float:
    """Returns Spearman's rank correlation of two equally long lists."""
    from scipy.stats import spearmanr

    return float(spearmanr(xs, ys).statistic)


def shifted(spec: dict, seed: int) -> dict:
    """Returns a training spec with its seed moved by 10·`seed` (seed 0 keeps the documented runs)."""
    return {**spec, "seed": spec["seed"] + 10 * seed}


def run(out: Path, full: bool = False, seed: int = 0, progress: bool = True) -> LessonResult:
    """Returns the lesson's findings after training the networks and writing its figures to `out`."""
    out = make_folder(out)
    torch.manual_seed(seed)
    plan = FULL if full else QUICK
    dataset = load_dataset("mnist")
    # images none of the networks trains on, away from those the accuracy is measured on
    images = dataset.test_images[-plan.n_images :].float() / 255
    steps = 1 + sum(c["epochs"] + 1 for c in plan.candidates)
    bar = progress_bar(total=steps, desc="lesson biology", disable=not progress, leave=False)
    with tempfile.TemporaryDirectory(prefix="netscope-biology-") as tmp:
        # `seed` shifts every training seed, so another seed gives a fresh set of networks
        reference = train_quietly(Path(tmp) / "reference", dataset, **shifted(plan.reference, seed))
        bar.update()
        ref_feats = layer_features(reference.pixel_model(), images, AREAS, seed=seed)
        points, final = [], None
        for spec in plan.candidates:
            candidate = train_quietly(
                Path(tmp) / f"seed{spec['seed']}", dataset, **shifted(spec, seed)
            )
            points += score_checkpoints(
                candidate, dataset, images, ref_feats[DEEP], plan, seed, bar
            )
            final = candidate
        final_feats = layer_features(final.pixel_model(), images, AREAS, seed=seed + 1)
    bar.close()
    # rows: the candidate's layers ("model"), columns: the reference's ("brain areas")
    comparison = compare_features(final_feats, ref_feats, plan.folds, seed)
    return report(out, points, comparison, reference, final, plan)


def best_source_phrases(comparison) -> list[str]:
    """Returns "target <- best source (R²; same layer: R²)" for each reference layer."""
    matrix = comparison.predictivity
    phrases = []
    for j, (target, source) in enumerate(zip(AREAS, comparison.best_source("predictivity"))):
        i = AREAS.index(source)
        same = "" if i == j else f"; {target}: {matrix[j, j]:.3f}"
        phrases.append(f"{target} <- {source} ({matrix[i, j]:.3f}{same})")
    return phrases


def report(out: Path, points, comparison, reference, final, plan: Plan) -> LessonResult:
    """Returns the LessonResult: figures written, numbers gathered, findings in words."""
    scatter = save_png(
        plot_accuracy_scatter(points),
        out / "biology_accuracy_vs_predictivity.png",
        tight=False,
        dpi=100,
    )
    figures = [
        Figure(
            scatter,
            "Test accuracy vs similarity to a trained network",
            f"Each point is a candidate network at one epoch (open circle = random init); "
            f"the more accurate it is, the better its {DEEP} predicts the reference's {DEEP}.",
        )
    ]
    for measure, title, label, caption in [
        (
            "predictivity",
            "Predictivity",
            "median held-out R² of the reference's units",
            "Each column is a layer of the reference; the outlined cell is the candidate "
            "layer that predicts it best (on the diagonal when early layers predict early ones "
            "and late layers late ones).",
        ),
        (
            "cka",
            "Linear CKA",
            "linear CKA",
            "The same layer pairs measured without regression; the outlined cell is the most "
            "similar candidate layer for each reference layer.",
        ),
    ]:
        fig = plot_heatmap(
            getattr(comparison, measure),
            AREAS,
            AREAS,
            f"{title}: seed-{final.config.seed} network → reference",
            label,
            row_label=f"layer of the seed-{final.config.seed} network (source)",
            column_label="layer of the reference network (target)",
        )
        path = save_png(fig, out / f"biology_{measure}.png", tight=False, dpi=100)
        figures.append(Figure(path, f"{title} between the layers of two networks", caption))
    init = [p.predictivity for p in points if p.epoch == 0]
    best = max(points, key=lambda p: p.accuracy_pct)
    rho = spearman([p.accuracy_pct for p in points], [p.predictivity for p in points])
    diagonal = {
        m: [comparison.best_source(m)[i] == area for i, area in enumerate(AREAS)]
        for m in ("predictivity", "cka")
    }
    summary = [
        f"(1) {len(points)} candidate networks: Spearman correlation of test accuracy with "
        f"predictivity of the reference's {DEEP}: {rho:+.2f}",
        f"    random init: median R² {np.mean(init):.3f} on average; best-trained "
        f"({best.accuracy_pct:.1f} % accurate): {best.predictivity:.3f}",
        "(2) reference layer <- candidate layer that predicts it best (median R²; same layer):",
        "    " + ", ".join(best_source_phrases(comparison)),
        "    by linear CKA: "
        + ", ".join(f"{t} <- {s}" for t, s in zip(AREAS, comparison.best_source("cka"))),
    ]
    numbers = {
        "reference": {**plan.reference, "seed": reference.config.seed},
        "images": plan.n_images,
        "folds": plan.folds,
        "points": [p.__dict__ for p in points],
        "spearman_accuracy_predictivity": rho,
        "spearman_accuracy_cka": spearman(
            [p.accuracy_pct for p in points], [p.cka for p in points]
        ),
        "mean_predictivity_random_init": float(np.mean(init)),
        "layers": AREAS,
        "heatmap_source": f"seed {final.config.seed}",
        **{k: v for k, v in comparison.as_dict().items() if k in ("predictivity", "cka")},
        "diagonal_is_best": diagonal,
    }
    return LessonResult("biology", summary, numbers, figures)
