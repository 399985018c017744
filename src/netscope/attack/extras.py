"""Numbers and figures an attack adds beyond its examples figure (an AttackSpec's `extras`)."""

from __future__ import annotations

import dataclasses

from netscope.attack.plots import plot_norm_histogram, plot_success_curve
from netscope.attack.result import AttackResult
from netscope.attack.spec import AttackJob
from netscope.progress import progress_bar
from netscope.record import Figure


def budget_curve(job: AttackJob, result: AttackResult) -> tuple[dict, list[Figure]]:
    """Returns the success rate at six budgets from eps/6 to eps and its figure (nothing when
    the config turns the curve off)."""
    if not job.curve:
        return {}, []
    budgets = [job.eps * k / 6 for k in range(1, 7)]
    shown = progress_bar(
        budgets, desc=f"{job.spec.name} ε curve", disable=not job.progress, unit="budgets"
    )
    rates = [
        job.spec.attack(dataclasses.replace(job, eps=eps)).metrics()["success_rate"]
        for eps in shown
    ]
    path = job.out / f"{job.name}_curve.png"
    plot_success_curve(budgets, rates, path, job.spec.name, job.norm)
    caption = "Share of the correctly classified test images fooled at each budget ε."
    curve = {"eps": budgets, "success_rate": rates}
    return {"curve": curve}, [Figure(path, "Success rate against budget", caption)]


def norm_histogram(job: AttackJob, result: AttackResult) -> tuple[dict, list[Figure]]:
    """Returns no numbers and the histogram of the perturbations' sizes."""
    path = job.out / f"{job.name}_norms.png"
    plot_norm_histogram(result, path, job.norm, job.spec.title)
    caption = "How far each test image is from a wrong decision: the size of its perturbation."
    return {}, [Figure(path, "Perturbation sizes", caption)]
