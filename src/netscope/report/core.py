"""The report sections every run has: the run itself, training curves, errors on the test set."""

from __future__ import annotations

from pathlib import Path

import torch

from netscope.data import Dataset
from netscope.evaluate import evaluate, save_confusion_png
from netscope.models import summary
from netscope.report.figures import find_mistakes, save_curves_png, save_mistakes_png
from netscope.report.html import esc, figure, fmt, key_values, section, settings, table
from netscope.run import Run


def _stat(value: str, label: str) -> str:
    return f'<div><p class="big">{esc(value)}</p><p class="muted">{esc(label)}</p></div>'


def run_section(run: Run) -> str:
    """Returns the section describing the data, the model, the config and the training."""
    info, data = run.info, run.info["data"]
    rows = summary(run.model, run.image_shape)
    n_params = sum(r.parameters for r in rows)
    error = info.get("metrics", {}).get("test_error_pct")
    stats = "".join(
        [
            _stat(f"{error:.2f} %" if error is not None else "–", "test error (final epoch)"),
            _stat(f"{n_params:,}", f"parameters ({info['model']['name']})"),
            _stat(f"{info.get('epochs_done', '?')}", "epochs trained"),
            _stat(
                f"{info.get('train_seconds', 0):.0f} s", f"training time on {info.get('device')}"
            ),
        ]
    )
    layer_rows = [[r.name, r.kind, "×".join(map(str, r.output_shape)), r.parameters] for r in rows]
    layer_rows.append(["total", "", "", n_params])
    data_rows = {
        "data set": data["name"],
        "source": data.get("source", ""),
        "checksum": data.get("checksum", ""),
        "train / test images": f"{data.get('train_size', '?'):,} / {data.get('test_size', '?'):,}",
        "image shape (C×H×W)": "×".join(map(str, data["image_shape"])),
        "classes": ", ".join(map(str, data["classes"])),
        "created": info.get("created", ""),
        "versions": ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items()),
        "seed": info.get("seed", ""),
    }
    body = (
        f'<div class="stats">{stats}</div><div class="grid">'
        f"<div><h3>Data and provenance</h3>{key_values(data_rows)}</div>"
        f"<div><h3>Model: {esc(info['model']['name'])}</h3>"
        f"{table(['layer', 'type', 'output', 'parameters'], layer_rows, numeric_from=3)}</div>"
        f"</div><h3>Training config</h3>{settings(info.get('config', {}))}"
    )
    return section("run", "The run", body, lead=f"Run directory: {run.path.resolve()}")


def curves_section(run: Run, out: Path) -> str:
    """Returns the training-curves section (empty string before the first epoch ends)."""
    if not run.metrics:
        return ""
    png = save_curves_png(run.metrics, out / "curves.png")
    rows = [
        [
            m["epoch"],
            f"{m['train_loss']:.4f}",
            f"{m['test_error_pct']:.2f}",
            f"{m.get('epoch_s', 0):.1f}",
        ]
        for m in run.metrics
    ]
    body = (
        '<div class="grid"><div style="flex:2 1 600px">'
        + figure(
            png,
            caption="Loss on the training batches (left) and error on the whole test set (right) after each epoch.",
        )
        + "</div><div style='flex:1 1 280px'>"
        + table(["epoch", "train loss", "test error %", "seconds"], rows)
        + "</div></div>"
    )
    return section("curves", "Training curves", body)


def errors_section(
    run: Run, out: Path, n_mistakes: int = 24, dataset: Dataset | None = None
) -> str:
    """Returns the confusion matrix, the most confused pairs and example mistakes."""
    dataset = dataset or run.load_dataset()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = run.pixel_model().to(device)
    pixels = dataset.test_images.to(device).float() / 255
    labels = dataset.test_labels.to(device)
    evaluation = evaluate(model, pixels, labels, run.classes)
    confusion_png = save_confusion_png(evaluation, out / "confusion.png")
    mistakes = find_mistakes(model, pixels, labels, k=n_mistakes)
    mistakes_png = save_mistakes_png(mistakes, pixels, run.classes, out / "mistakes.png")
    pairs = [[t, p, c] for t, p, c in evaluation.most_confused(8)]
    per_class = [[c, f"{e:.2f}"] for c, e in zip(run.classes, evaluation.per_class_error_pct)]
    body = (
        f'<div class="stats">{_stat(f"{evaluation.test_error_pct:.2f} %", "test error")}'
        f"{_stat(f'{mistakes.total:,} / {len(pixels):,}', 'test images misclassified')}</div>"
        '<div class="grid"><div style="flex:2 1 560px">'
        + figure(
            confusion_png,
            caption="Rows are true classes, columns predicted ones; everything off the diagonal is a mistake.",
        )
        + "</div><div style='flex:1 1 260px'><h3>Most confused pairs</h3>"
        + table(["true", "predicted", "count"], pairs, numeric_from=2)
        + "<h3>Error per class</h3>"
        + table(["class", "error %"], per_class)
        + "</div></div>"
        + figure(
            mistakes_png,
            title="Example mistakes",
            caption="The misclassified test images the network was most sure about: often badly "
            "written digits or doubtful labels.",
        )
    )
    return section(
        "errors",
        "Errors on the test set",
        body,
        lead=f"{fmt(len(pixels))} test images never seen during training.",
    )
