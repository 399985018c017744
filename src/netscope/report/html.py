"""Small HTML builders for the report: every string that reaches the page passes `esc`.

Figures are embedded as base64 data URIs so report.html is one file that opens from disk with no
network access.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def esc(value: object) -> str:
    """Returns `value` as text safe to place in HTML content or a quoted attribute."""
    return html.escape(str(value), quote=True)


def fmt(value: object) -> str:
    """Returns a number with four significant digits (integers in full), anything else as text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def data_uri(path: Path) -> str | None:
    """Returns the image file as a data URI, or None when it is missing or not an image."""
    mime = MIME.get(Path(path).suffix.lower())
    if mime is None or not Path(path).is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def image_width(path: Path) -> int:
    """Returns an image's width in pixels from its header (0 when it cannot be read)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.width
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0


def figure(path: Path, title: str = "", caption: str = "") -> str:
    """Returns a <figure> with the image embedded, or a visible note when the file is missing.
    Images wider than 1000 px get a row of their own (class "wide")."""
    uri = data_uri(path)
    heading = f"<h3>{esc(title)}</h3>" if title else ""
    note = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    if uri is None:
        name = esc(Path(path).name)
        return f'<figure class="missing">{heading}<p>figure {name} is missing or not an image</p></figure>'
    wide = ' class="wide"' if image_width(path) > 1000 else ""
    alt = esc(title or Path(path).name)
    return f'<figure{wide}>{heading}<img src="{uri}" alt="{alt}">{note}</figure>'


def table(header: list, rows: list[list], numeric_from: int = 1) -> str:
    """Returns an HTML table; columns from `numeric_from` on are right-aligned numbers."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            ('<td class="num">' if i >= numeric_from else "<td>") + f"{esc(fmt(cell))}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(pairs: dict) -> str:
    """Returns a two-column table of name → value (values left-aligned: they are often text)."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in pairs.items())
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def settings(pairs: dict) -> str:
    """Returns many short name = value pairs laid out in columns (a config, say)."""
    items = "".join(f"<div><b>{esc(k)}</b> {esc(fmt(v))}</div>" for k, v in pairs.items())
    return f'<div class="settings">{items}</div>'


def section(anchor: str, title: str, body: str, lead: str = "") -> str:
    """Returns a report section with a heading the table of contents links to."""
    intro = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{intro}{body}</section>'


def pre_json(value: object, limit: int = 3000) -> str:
    """Returns `value` as indented JSON in a <pre>, cut to `limit` characters."""
    text = json.dumps(value, indent=1, default=str)
    if len(text) > limit:
        text = text[:limit] + "\n…"
    return f"<pre>{esc(text)}</pre>"


STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:26px} header p{margin:4px 0 0;color:#c6cbd6}
nav{background:#fff;border-bottom:1px solid #dde1e8;padding:8px 32px;position:sticky;top:0;z-index:1}
nav a{margin-right:18px;color:#2457c5;text-decoration:none;font-weight:500;white-space:nowrap;display:inline-block}
main{max-width:1180px;margin:0 auto;padding:12px 24px 48px}
section{scroll-margin-top:52px;background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:8px 24px 20px;margin:20px 0}
h2{font-size:22px;border-bottom:2px solid #e6e9ef;padding-bottom:6px}
h3{font-size:17px;margin:14px 0 6px}
.lead{color:#4a5365;margin-top:-4px}
.grid{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}
.grid>*{flex:1 1 420px;min-width:0} .grid>figure.wide{flex-basis:100%}
details{margin:10px 0} summary{cursor:pointer;color:#2457c5}
figure{margin:12px 0}
figure img{max-width:100%;height:auto;border:1px solid #e6e9ef;border-radius:4px;display:block}
figcaption{color:#4a5365;font-size:14px;margin-top:4px}
figure.missing p{color:#a33}
table{border-collapse:collapse;margin:8px 0 12px;font-size:14px}
th,td{padding:3px 10px;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
td.num{text-align:right;font-variant-numeric:tabular-nums;overflow-wrap:normal}
table.kv th{font-weight:500;color:#4a5365;white-space:nowrap}
.settings{columns:4 200px;font-size:14px;margin:6px 0 10px}
.settings div{break-inside:avoid;padding:1px 0} .settings b{font-weight:500;color:#4a5365}
thead th{background:#f0f2f6}
pre{background:#f6f7f9;padding:8px;border-radius:4px;font-size:13px;overflow:auto;max-height:320px}
.big{font-size:30px;font-weight:600;margin:0} .muted{color:#6b7385;font-size:14px}
.stats{display:flex;gap:40px;flex-wrap:wrap;margin:8px 0 4px} .stats p{margin:0}
"""


def page(title: str, subtitle: str, nav: list[tuple[str, str]], sections: list[str]) -> str:
    """Returns the whole self-contained HTML document."""
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{links}</nav><main>{''.join(sections)}</main></body></html>\n"
    )
