"""Build ``report.html`` from a run folder: one section per stage, with its figures, tables,
images (PNG/GIF, embedded as data URIs so the file stands alone) and wall time.

Every number in the report is read from the stage JSON the stage itself wrote: nothing is typed
in by hand here.
"""
from __future__ import annotations

import base64
import html
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

from robot_irl.core.io import atomic_write_bytes
from robot_irl.errors import InputError

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
section{border-top:1px solid #ddd;padding:1em 0}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td.k{text-align:left;font-family:monospace}
.imgs{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0} figure img{max-width:520px;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555} .time{color:#888;font-size:.9em} pre{background:#f7f7f7;padding:.6em;overflow:auto}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def _figures_table(result: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in result.items()
            if k not in ("title", "images", "tables", "text", "seconds") and isinstance(v, (int, float, str, bool))]
    if not rows:
        return ""
    body = "".join(f"<tr><td class='k'>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in rows)
    return f"<table><tr><th>figure</th><th>value</th></tr>{body}</table>"


def _table(name: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<h4>{html.escape(name)}</h4><table><tr>{head}</tr>{body}</table>"


def _section(out: Path, name: str, result: dict[str, Any]) -> str:
    parts = [f"<section id='{html.escape(name)}'><h2>{html.escape(result.get('title', name))}</h2>",
             f"<div class='time'>stage time: {result.get('seconds', 0):.1f} s</div>"]
    if result.get("text"):
        parts.append(f"<p>{html.escape(result['text'])}</p>")
    parts.append(_figures_table(result))
    for tname, rows in (result.get("tables") or {}).items():
        parts.append(_table(tname, rows))
    images = result.get("images") or {}
    if images:
        parts.append("<div class='imgs'>")
        for caption, rel in images.items():
            p = out / rel
            if p.exists():
                parts.append(f"<figure><img alt='{html.escape(caption)}' src='{_data_uri(p)}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def build_report(out: str | Path, title: str = "robot-irl quickstart") -> Path:
    """Write ``<out>/report.html`` from ``<out>/stages/*.json`` (in the order of
    ``stages/order.json`` when present) and return its path."""
    out = Path(out)
    stages_dir = out / "stages"
    if not stages_dir.is_dir():
        raise InputError("no stage results to report", file=stages_dir, expected="a run folder written by "
                         "`robot-irl quickstart`")
    order_file = stages_dir / "order.json"
    names = json.loads(order_file.read_text()) if order_file.exists() else sorted(
        p.stem for p in stages_dir.glob("*.json") if p.stem != "order")
    results = {n: json.loads((stages_dir / f"{n}.json").read_text()) for n in names
               if (stages_dir / f"{n}.json").exists()}
    if not results:
        raise InputError("no finished stage", file=stages_dir, expected="at least one <stage>.json")
    total = sum(r.get("seconds", 0) for r in results.values())
    toc = "".join(f"<li><a href='#{html.escape(n)}'>{html.escape(r.get('title', n))}</a> "
                  f"<span class='time'>({r.get('seconds', 0):.1f} s)</span></li>" for n, r in results.items())
    missing = [n for n in names if n not in results]
    note = (f"<p><b>Not finished:</b> {html.escape(', '.join(missing))}</p>" if missing else "")
    tb = out / "tb"
    tb_note = (f"<p>TensorBoard logs: <code>tensorboard --logdir {html.escape(str(tb))}</code></p>" if tb.exists() else "")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
           f"<p class='sub'>run folder <code>{html.escape(str(out))}</code>; total stage time {total:.1f} s</p>"
           f"{note}<ol>{toc}</ol>{tb_note}"
           + "".join(_section(out, n, r) for n, r in results.items()) + "</body></html>")
    path = out / "report.html"
    atomic_write_bytes(path, doc.encode())
    _mode_as_created(path)
    return path


def _mode_as_created(path: Path) -> None:
    """Give the file the mode a plain ``open(path, "w")`` would (0666 less the umask, 0644 usually):
    the atomic write's temporary file is private (0600), and a report is made to be opened and shared."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
