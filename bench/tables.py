"""Markdown tables from the JSON lines that bench/analyses.py and bench/scaling.py print."""

from __future__ import annotations

import json

FIXED = ("variant", "seconds", "images_per_s", "speed_vs_netscope", "peak_mb")


def cell(value) -> str:
    """Returns a number with about four significant digits, anything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def row_table(line: dict) -> str:
    """Returns one row's variants as a markdown table (agreement columns after the timings)."""
    extra = []
    for result in line["variants"]:
        extra += [k for k in result if k not in FIXED and k not in extra]
    head = list(FIXED) + extra
    out = [f"**{line['row']}** on {line['model']} (n = {line['n']}; "
           f"{json.dumps(line['settings'])})", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # fmt: skip
    for result in line["variants"]:
        out.append("| " + " | ".join(cell(result.get(k)) for k in head) + " |")
    return "\n".join(out) + "\n"


def summary_table(lines: list[dict]) -> str:
    """Returns one line per (row, model): netscope's images/s and its ratio to the fastest peer."""
    out = ["| row | model | netscope images/s | fastest peer | its images/s | netscope vs it |",
           "|---|---|---:|---|---:|---:|"]  # fmt: skip
    for line in lines:
        ours = next(r for r in line["variants"] if r["variant"] == "netscope")
        peer = next((r for r in line["variants"] if r["variant"] == line.get("fastest_peer")), {})
        out.append(f"| {line['row']} | {line['model']} | {cell(ours.get('images_per_s'))} | "
                   f"{line.get('fastest_peer', '—')} | {cell(peer.get('images_per_s'))} | "
                   f"{cell(line.get('netscope_vs_fastest_peer'))}× |")  # fmt: skip
    return "\n".join(out) + "\n"


def markdown(context: dict, lines: list[dict]) -> str:
    """Returns the context, the summary and one table per row."""
    head = [f"`{context['command']}`", "",
            f"device: {context['device']} ({context['cpu']}, {context['threads']} threads); "
            f"versions: {json.dumps(context['versions'])}", ""]  # fmt: skip
    tables = [row_table(line) for line in lines]
    return "\n".join(head + [summary_table(lines)] + tables)


def json_lines(path: str) -> list[dict]:
    """Returns the JSON objects of a file, one a line (other lines skipped)."""
    lines = []
    with open(path) as text:
        for raw in text:
            if raw.startswith("{"):
                lines.append(json.loads(raw))
    return lines


def plain_table(rows: list[dict], keys: list[str]) -> str:
    """Returns rows as a markdown table with the given columns."""
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(out) + "\n"


def gpu_results(recipe: str, record: str, analyses: str) -> str:
    """Returns bench/RESULTS_gpu.md's sections from the three steps' outputs (missing: said)."""
    parts = []
    for title, path, keys in (
        ("Lecture recipe, slide vs netscope (`bench/recipe.py`)", recipe,
         ["variant", "us_per_step", "train_s", "first_epoch_extra_s", "test_error_pct",
          "peak_mb", "vs_slide", "failed"]),
        ("Time to ≤ 1 % test error vs tuomaso/train_mnist_fast (`bench/public_record.py`)", record,
         ["setup", "seed", "train_s", "main_s", "test_error_pct", "peak_mb", "median_train_s",
          "mean_test_error_pct", "seeds_at_or_below_1pct"]),
    ):  # fmt: skip
        try:
            rows = [r for r in json_lines(path) if "variant" in r or "setup" in r]
            parts.append(f"## {title}\n\n{plain_table(rows, keys)}")
        except (OSError, json.JSONDecodeError) as err:
            parts.append(f"## {title}\n\nno result ({err})\n")
    try:  # the rows printed so far, so that a step stopped by its time limit still shows them
        printed = json_lines(analyses)
        context = next(line["context"] for line in printed if "context" in line)
        rows = [line for line in printed if "row" in line]
        parts.append(f"## Analyses vs peers (`bench/analyses.py`)\n\n{markdown(context, rows)}")
    except (OSError, StopIteration, json.JSONDecodeError) as err:
        parts.append(f"## Analyses vs peers (`bench/analyses.py`)\n\nno result ({err!r})\n")
    return "\n".join(parts)


if __name__ == "__main__":
    import sys

    print(gpu_results(*sys.argv[1:4]))
