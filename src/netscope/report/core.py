"""The report sections every run has: the run itself, training curves, errors on the test set."""

from __future__ import annotations

from pathlib import Path

from netscope.curves import save_curves_png
from netscope.data import Dataset
from netscope.evaluate import current_evaluation
from netscope.models import summary
from netscope.report.html import esc, figure, fmt, key_values, section, settings, table
from netscope.run import Run


def _stat(value: str, label: str) -> str:
    return f'<div><p class="big">{esc(value)}</p><p class="muted">{esc(label)}</p></div>'


def _epochs_stat(info: dict) -> str:
    """Returns the epochs-trained figure, saying "3 of 10 … unfinished" for an unfinished run."""
    done, planned = info.get("epochs_done", "?"), info.get("config", {}).get("epochs")
    if planned is None or done == planned:
        return _stat(f"{done}", "epochs trained")
    return _stat(f"{done} of {planned}", "epochs trained: an unfinished run")


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
            _epochs_stat(info),
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
        + adversarial_check_html(info.get("adversarial_check"))
    )
    return section("run", "The run", body, lead=f"Run directory: {run.path.resolve()}")


CHECKED = [("pgd_success_rate", "PGD success rate"), ("deepfool_l2_median", "DeepFool median ‖r‖₂"),
           ("test_error_pct", "test error %")]  # fmt: skip


def adversarial_check_html(check: dict | None) -> str:
    """Returns the before (clean twin) / after table of an adversarially trained run."""
    if not check:
        return ""
    rows = [[label, check["before"][key], check["after"][key]] for key, label in CHECKED]
    heading = (
        f"Adversarial training: the same attacks on {check['images']:,} test images "
        f"(PGD at ε = {check['pgd_eps']:g}), clean twin vs this run"
    )
    return f"<h3>{esc(heading)}</h3>" + table(["", "clean twin (before)", "this run (after)"], rows)


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


def errors_section(run: Run, dataset: Dataset | None = None) -> str:
    """Returns the confusion matrix, the most confused pairs and example mistakes, read from the
    run's evaluation.json (written first when missing or older than the weights)."""
    record, folder = current_evaluation(run, dataset)
    figures = {entry["file"]: entry for entry in record["figures"]}
    confusion, mistakes = figures["confusion.png"], figures["mistakes.png"]
    pairs = [list(pair) for pair in record["most_confused"][:8]]
    per_class = [[c, f"{e:.2f}"] for c, e in record["per_class_error_pct"].items()]
    n, wrong = record["test_size"], record["mistakes"]["total"]
    error = _stat(f"{record['test_error_pct']:.2f} %", "test error")
    body = (
        f'<div class="stats">{error}{_stat(f"{wrong:,} / {n:,}", "test images misclassified")}</div>'
        '<div class="grid"><div style="flex:2 1 560px">'
        + figure(folder / confusion["file"], caption=confusion["caption"])
        + "</div><div style='flex:1 1 260px'><h3>Most confused pairs</h3>"
        + table(["true", "predicted", "count"], pairs, numeric_from=2)
        + "<h3>Error per class</h3>"
        + table(["class", "error %"], per_class)
        + "</div></div>"
        + figure(folder / mistakes["file"], title=mistakes["title"], caption=mistakes["caption"])
    )
    return section(
        "errors",
        "Errors on the test set",
        body,
        lead=f"{fmt(n)} test images never seen during training.",
    )
