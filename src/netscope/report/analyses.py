"""Report sections for the analyses found in a run directory (inspect, attack, fool, compare,
lessons), drawn generically from their JSON: prose, figures, then numbers as tables.

Each JSON lists its figures as `"figures": [{"file", "title", "caption"}]` (plain file names are
accepted too); a section appears only when its JSON exists.
"""

from __future__ import annotations

import json
from pathlib import Path

from netscope.folders import FINAL, checkpoint_tag
from netscope.report.html import esc, figure, fmt, key_values, pre_json, section, settings, table

# file name, anchor, section title, one line saying what the section shows
ANALYSES = [
    (
        "inspect.json",
        "inspect",
        "Inside the network",
        "Filters, what excites units, and which pixels decide.",
    ),
    (
        "attack.json",
        "attack",
        "Adversarial examples",
        "Small pixel changes that flip the prediction.",
    ),
    (
        "fool.json",
        "fool",
        "Fooling images",
        "Images that look like nothing to us but get a confident label.",
    ),
    (
        "compare.json",
        "compare",
        "Comparing representations",
        "How similar the layers of two networks are.",
    ),
    ("lesson.json", "lesson", "Lesson", ""),
]
PROSE_KEYS = ("title", "name", "summary", "description", "figures")


def find_records(run_dir: Path, file_name: str, depth: int = 2) -> list[Path]:
    """Returns the paths of `file_name` in the run directory and its sub-folders up to `depth`."""
    found = []
    for level in range(depth + 1):
        found += sorted(Path(run_dir).glob("/".join(["*"] * level + [file_name])))
    return found


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_simple(value: object) -> bool:
    """Returns True for a scalar or a short list of scalars (shown inline in a table cell)."""
    if isinstance(value, list):
        return len(value) <= 12 and all(_is_scalar(v) for v in value)
    return _is_scalar(value)


def _is_matrix(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(r, list) and r and all(isinstance(x, (int, float)) for x in r) for r in value
        )
    )


def value_html(value: object, rows: list | None = None, columns: list | None = None) -> str:
    """Returns a table (or a short text, or a JSON excerpt) showing one entry of a record; a
    matrix gets `rows`/`columns` as labels when their lengths fit."""
    if isinstance(value, dict) and all(_is_simple(v) for v in value.values()):
        return key_values(value) if len(value) <= 8 else settings(value)
    if isinstance(value, dict) and all(
        isinstance(v, dict) and all(_is_simple(x) for x in v.values()) for v in value.values()
    ):
        columns = list(dict.fromkeys(k for v in value.values() for k in v))
        rows = [[name] + [v.get(c, "") for c in columns] for name, v in value.items()]
        return table([""] + columns, rows)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and all(_is_scalar(x) for x in v.values()) for v in value)
    ):
        columns = list(dict.fromkeys(k for v in value for k in v))
        return table(columns, [[v.get(c, "") for c in columns] for v in value], numeric_from=0)
    if isinstance(value, list) and all(_is_scalar(v) for v in value) and len(value) <= 32:
        return f"<p>{esc(', '.join(map(str, value)))}</p>"
    if _is_matrix(value) and len(value) <= 16 and len(value[0]) <= 16:
        rows = rows if rows and len(rows) == len(value) else list(range(len(value)))
        fits = columns and len(columns) == len(value[0])
        columns = columns if fits else list(range(len(value[0])))
        return table([""] + list(columns), [[name] + r for name, r in zip(rows, value)])
    return pre_json(value)


def figures_html(record: dict, folder: Path) -> str:
    """Returns the record's figures, embedded, two per row on a wide screen."""
    items = []
    for entry in record.get("figures", []):
        entry = {"file": entry} if isinstance(entry, str) else entry
        file = str(entry.get("file", ""))
        items.append(
            figure(folder / Path(file).name, entry.get("title", ""), entry.get("caption", ""))
        )
    return f'<div class="grid">{"".join(items)}</div>' if items else ""


def prose_html(record: dict) -> str:
    """Returns the record's summary or description as paragraphs or a list."""
    parts = []
    for key in ("description", "summary"):
        text = record.get(key)
        if isinstance(text, str):
            parts.append(f"<p>{esc(text)}</p>")
        elif isinstance(text, list):
            parts.append("<ul>" + "".join(f"<li>{esc(t)}</li>" for t in text) + "</ul>")
    return "".join(parts)


def numbers_html(record: dict) -> str:
    """Returns the record's numbers: its scalars in one table, every entry that makes a table
    below it, and the rest as JSON folded away under "all other numbers"."""
    scalars = {k: v for k, v in record.items() if k not in PROSE_KEYS and _is_simple(v)}
    listing = key_values(scalars) if len(scalars) <= 10 else settings(scalars)
    parts = [f"<h3>Numbers</h3>{listing}"] if scalars else []
    raw = {}
    labels = record.get("layers_a"), record.get("layers_b")  # compare.json's matrices
    for key, value in record.items():
        if key in PROSE_KEYS or _is_simple(value):
            continue
        html = value_html(value, *labels)
        if html.startswith("<pre>"):
            raw[key] = value
        else:
            parts.append(f"<h3>{esc(key)}</h3>{html}")
    if raw:
        parts.append(
            f"<details><summary>All other numbers ({esc(', '.join(raw))})</summary>"
            f"{pre_json(raw, limit=20000)}</details>"
        )
    return "".join(parts)


def read_record(path: Path) -> dict | str:
    """Returns the JSON object at `path`, or a sentence saying why it cannot be shown."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{path} could not be read: {err}"
    return record if isinstance(record, dict) else f"{path} holds no JSON object"


def record_section(record: dict, folder: Path, anchor: str, title: str, lead: str) -> str:
    """Returns one analysis section: prose, figures (from `folder`), then numbers."""
    body = prose_html(record) + figures_html(record, folder) + numbers_html(record)
    return section(anchor, title, body, lead=lead)


ATTACK_COLUMNS = ["method", "norm", "eps", "n_attacked", "success_rate", "l2_median",
                  "linf_median", "rho_adv", "s_per_image"]  # fmt: skip


def attack_summary(records: list[dict], names: list[str]) -> str:
    """Returns the section comparing every attack found: one row per attack.json, named as
    its own section is."""
    named = [name.removeprefix("Attack: ") for name in names]
    rows = [[name] + [r.get(c, "") for c in ATTACK_COLUMNS] for name, r in zip(named, records)]
    body = table(["attack"] + ATTACK_COLUMNS, rows, numeric_from=3) + (
        '<p class="muted">success_rate counts the images the network classified correctly '
        "before the attack; the norms are those of the perturbation in pixel units [0, 1]; "
        "rho_adv = mean ‖r‖₂ / ‖x‖₂ over the fooled images (Moosavi-Dezfooli et al. 2016).</p>"
    )
    return section("attacks", "Adversarial examples: all attacks", body)


NORMS = {"l2": "L2", "linf": "L∞"}


def section_title(anchor: str, title: str, record: dict, path: Path) -> str:
    """Returns a record's section title, naming what ran: the lesson; the attack, its norm and
    budget; the compared run; the inspection stages or fooling methods; and the weights when
    they are not the run's final ones."""
    name = str(record.get("title") or title)
    if anchor == "lesson":
        name = f"Lesson: {record.get('name', path.parent.name)}"
    elif anchor == "attack" and record.get("method"):
        norm = NORMS.get(record.get("norm"), record.get("norm", ""))
        budget = f", ε = {fmt(record['eps'])}" if record.get("eps") else ""
        name = f"Attack: {record['method']} ({norm}{budget})"
    elif anchor == "compare" and record.get("b"):
        b = (record.get("weights_b") or {}).get("checkpoint", "model.safetensors")
        name = f"{title}: vs {Path(record['b']).name}{checkpoint_tag(b)}"
    elif anchor == "fool" and isinstance(record.get("results"), dict):
        name = f"{title} ({', '.join(record['results'])})"
    elif anchor == "inspect" and (record.get("config") or {}).get("stages"):
        name = f"{title} ({', '.join(record['config']['stages'])})"
    checkpoint = record.get("checkpoint") or (record.get("weights_a") or {}).get("checkpoint")
    if isinstance(checkpoint, str) and checkpoint != FINAL:
        name += f" at {Path(checkpoint).stem}"
    return name


def analysis_sections(run_dir: Path) -> list[tuple[str, str, str]]:
    """Returns (anchor, nav title, html) for every analysis JSON found in the run directory;
    two sections that would carry the same name also name their folders."""
    run_dir = Path(run_dir).resolve()
    sections = []
    for file_name, anchor, title, lead in ANALYSES:
        paths = find_records(run_dir, file_name)
        records = [read_record(path) for path in paths]
        names = [
            section_title(anchor, title, r, p) if isinstance(r, dict) else title
            for p, r in zip(paths, records)
        ]
        names = [
            f"{name} ({path.parent.relative_to(run_dir)})" if names.count(name) > 1 else name
            for name, path in zip(names, paths)
        ]
        found = [(r, n) for r, n in zip(records, names) if isinstance(r, dict)]
        if anchor == "attack" and found:
            sections.append(("attacks", "Attacks", attack_summary(*map(list, zip(*found)))))
        for i, (path, record, name) in enumerate(zip(paths, records, names)):
            key = anchor if i == 0 else f"{anchor}-{i + 1}"
            if isinstance(record, str):
                sections.append((key, name, section(key, name, f"<p>{esc(record)}</p>")))
                continue
            where = f"(from {path.relative_to(run_dir)})"
            html = record_section(record, path.parent, key, name, f"{lead} {where}".lstrip())
            sections.append((key, name, html))
    return sections
