"""A generic, self-contained HTML report builder (plus JSON output).

::

    report = Report("midtecg evaluation: midt-ecg vs PTB-XL test fold")
    report.add_summary("records", 2158)
    report.add_section("Fidelity", "Paired protocol, one synthetic ECG per test record.")
    report.add_table("Per-lead SNR", frame)
    report.add_figure("Lead correlations", correlation_heatmaps(real, synth), caption="...")
    report.add_note("Heart rates below 40 bpm were excluded.")
    report.write_html("report.html")
    report.write_json("report.json", results)

The HTML is one file with no external resource: inline CSS, figures embedded as base64 PNG, no script.
All text (titles, cells, captions, notes) is HTML-escaped. A summary table (the entries given with
:meth:`Report.add_summary`, then the report's own counts and provenance) and a table of contents open the
page. Items added before the first section go under the summary. Files are written atomically.

:func:`to_jsonable` / :func:`write_json` convert NumPy and pandas values to plain JSON: NaN and
infinities become ``null``, arrays become lists, DataFrames lists of row objects, paths and dates strings.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from midtecg.io.arrays import atomic_write_text

__all__ = ["Report", "to_jsonable", "write_json"]


# ----------------------------------------------------------------------------------------------------
# JSON


def to_jsonable(obj: Any) -> Any:
    """Turn ``obj`` into values ``json.dumps(..., allow_nan=False)`` accepts (see the module docstring)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        if isinstance(obj, (np.datetime64, np.timedelta64)):
            return None if np.isnat(obj) else str(obj)
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(row) for row in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Mapping):
        return {_json_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        items = [to_jsonable(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, complex):
        return {"real": to_jsonable(obj.real), "imag": to_jsonable(obj.imag)}
    for attr in ("to_dict", "tolist", "item"):  # torch tensors, pandas objects, other array types
        method = getattr(obj, attr, None)
        if callable(method):
            try:
                return to_jsonable(method())
            except (TypeError, ValueError):
                pass
    return str(obj)


def _json_key(key: Any) -> str:
    if isinstance(key, np.generic):
        key = key.item()
    return key if isinstance(key, str) else str(key)


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> Path:
    """Write ``to_jsonable(data)`` as UTF-8 JSON atomically; returns the path."""
    text = json.dumps(to_jsonable(data), indent=indent, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


# ----------------------------------------------------------------------------------------------------
# HTML pieces

_CSS = """
:root { --fg: #1d2329; --muted: #5b6670; --line: #d8dde2; --band: #f5f7f9; --accent: #b03a2e; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
       color: var(--fg); background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p { margin: 6px 0 10px; }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 18px; }
nav.toc { font-size: 14px; margin: 14px 0 6px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; }
a { color: #1f5f99; }
.table-wrap { overflow-x: auto; margin: 6px 0 14px; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; vertical-align: top; }
th { background: var(--band); text-align: left; font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.na { color: #9aa3ab; text-align: center; }
table.summary th { white-space: nowrap; padding-right: 24px; }
table.summary td { min-width: 14em; }
table.summary td.num { text-align: left; }
figure { margin: 8px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption, .caption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.note { border-left: 4px solid #4a7fb0; background: #eef4fa; padding: 8px 12px; margin: 10px 0; }
.note.warning { border-left-color: var(--accent); background: #fbeeec; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; border-top: 1px solid var(--line); padding-top: 8px; }
""".strip()


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _paragraphs(text: str | None) -> str:
    if not text:
        return ""
    blocks = [b.strip() for b in str(text).replace("\r\n", "\n").split("\n\n") if b.strip()]
    return "\n".join("<p>" + "<br>".join(_esc(line) for line in b.split("\n")) + "</p>" for b in blocks)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(float(value))
    return False


def _format_cell(value: Any, digits: int) -> tuple[str, str]:
    """(escaped text, css class) for one table cell."""
    if isinstance(value, np.generic):
        value = value.item()
    if _is_missing(value):
        return "n/a", "na"
    if isinstance(value, bool):
        return _esc(value), ""
    if isinstance(value, int):
        return _esc(value), "num"
    if isinstance(value, float):
        if math.isinf(value):
            return ("inf" if value > 0 else "-inf"), "num"
        text = f"{value:.{digits}g}"
        return _esc(text), "num"
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return _esc(", ".join(map(str, value))), ""
    return _esc(value), ""


def _as_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        values = list(data.values())
        if values and all(np.ndim(v) == 0 for v in values):  # one row of scalars -> a two-column table
            return pd.DataFrame({"name": list(map(str, data.keys())), "value": values})
        return pd.DataFrame(data)
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return pd.DataFrame(list(data))
    raise TypeError(f"add_table: expected a DataFrame, a list of dicts or a dict, not {type(data).__name__}")


def _table_html(
    frame: pd.DataFrame, digits: int, max_rows: int | None, css_class: str = "", header: bool = True
) -> str:
    show_index = not (
        isinstance(frame.index, pd.RangeIndex)
        and frame.index.start == 0
        and frame.index.step == 1
        and frame.index.name is None
    )
    shown = frame if max_rows is None or len(frame) <= max_rows else frame.head(max_rows)

    def col_name(c: Any) -> str:
        return " / ".join(map(str, c)) if isinstance(c, tuple) else str(c)

    head = []
    if show_index:
        names = [n for n in (frame.index.names or []) if n is not None]
        head.append(f"<th>{_esc(' / '.join(map(str, names)))}</th>")
    head += [f"<th>{_esc(col_name(c))}</th>" for c in frame.columns]
    rows = []
    for idx, row in zip(shown.index, shown.itertuples(index=False, name=None)):
        cells = []
        if show_index:
            label = " / ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
            cells.append(f"<th>{_esc(label)}</th>")
        for value in row:
            text, cls = _format_cell(value, digits)
            cells.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if len(shown) < len(frame):
        more = f'<p class="caption">First {len(shown)} of {len(frame)} rows shown.</p>'
    cls = f' class="{css_class}"' if css_class else ""
    thead = f"<thead><tr>{''.join(head)}</tr></thead>" if header else ""
    return f'<div class="table-wrap"><table{cls}>{thead}<tbody>{"".join(rows)}</tbody></table></div>{more}'


def _figure_png(fig: Any, dpi: float) -> bytes:
    if isinstance(fig, (bytes, bytearray)):
        data = bytes(fig)
    elif isinstance(fig, (str, os.PathLike)):
        data = Path(fig).read_bytes()
    elif hasattr(fig, "savefig"):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        data = buf.getvalue()
        _close(fig)
    else:
        raise TypeError(f"add_figure: expected a matplotlib Figure, PNG bytes or a PNG path, not {type(fig).__name__}")
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("add_figure: the image is not a PNG")
    return data


def _close(fig: Any) -> None:
    """Release a figure: through pyplot when pyplot manages it, else just drop its artists."""
    manager = getattr(getattr(fig, "canvas", None), "manager", None)
    if manager is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)
    else:
        fig.clear()


# ----------------------------------------------------------------------------------------------------
# the report


@dataclasses.dataclass
class _Item:
    kind: str  # "table" | "figure" | "note" | "text"
    title: str | None = None
    html: str = ""
    json: Any = None


@dataclasses.dataclass
class _Section:
    title: str | None
    text: str | None
    items: list[_Item] = dataclasses.field(default_factory=list)


class Report:
    """Collects sections, tables, figures and notes, then writes one self-contained HTML file.

    Every ``add_*`` method returns the report, so calls can be chained.
    """

    def __init__(self, title: str, subtitle: str | None = None, *, digits: int = 4):
        self.title = str(title)
        self.subtitle = subtitle
        self.digits = int(digits)
        self.summary: dict[str, Any] = {}
        self.created = _dt.datetime.now().astimezone().replace(microsecond=0)
        self._sections: list[_Section] = [_Section(None, None)]
        self._counts = {"table": 0, "figure": 0}

    # -- building ---------------------------------------------------------------------------------------

    def add_summary(self, key: str, value: Any) -> Report:
        """Add (or replace) one row of the summary table at the top of the page."""
        self.summary[str(key)] = value
        return self

    def add_section(self, title: str, text: str | None = None) -> Report:
        """Start a new section; following tables, figures and notes go into it. Blank lines split paragraphs."""
        self._sections.append(_Section(str(title), text))
        return self

    def add_text(self, text: str) -> Report:
        """Add paragraphs to the current section."""
        self._sections[-1].items.append(_Item("text", None, _paragraphs(text), str(text)))
        return self

    def add_table(
        self,
        title: str | None,
        data: Any,
        caption: str | None = None,
        *,
        digits: int | None = None,
        max_rows: int | None = 500,
    ) -> Report:
        """Add a table from a DataFrame, a list of dicts (rows) or a dict (columns; a dict of scalars becomes
        a name/value table). Floats are shown with ``digits`` significant figures, missing values as n/a;
        a non-default DataFrame index is shown as the first column. At most ``max_rows`` rows are shown
        (None: all); the JSON output keeps them all."""
        frame = _as_frame(data)
        body = _table_html(frame, digits or self.digits, max_rows)
        self._counts["table"] += 1
        head = f"<h3>{_esc(title)}</h3>" if title else ""
        cap = f'<p class="caption">{_esc(caption)}</p>' if caption else ""
        index = not isinstance(frame.index, pd.RangeIndex)
        rows = frame.reset_index() if index else frame
        record = {"title": title, "caption": caption, "columns": [str(c) for c in rows.columns], "rows": rows}
        self._sections[-1].items.append(_Item("table", title, head + body + cap, record))
        return self

    def add_figure(
        self, title: str | None, fig: Any, caption: str | None = None, *, dpi: float = 100.0, alt: str | None = None
    ) -> Report:
        """Embed a matplotlib Figure as a base64 PNG (saved at ``dpi``, then closed). PNG bytes or the path
        of a PNG file are accepted too."""
        data = _figure_png(fig, dpi)
        self._counts["figure"] += 1
        src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        alt_text = alt or title or caption or f"figure {self._counts['figure']}"
        parts = []
        if title:
            parts.append(f"<h3>{_esc(title)}</h3>")
        parts.append(f'<figure><img src="{src}" alt="{_esc(alt_text)}">')
        if caption:
            parts.append(f"<figcaption>{_esc(caption)}</figcaption>")
        parts.append("</figure>")
        self._sections[-1].items.append(
            _Item("figure", title, "".join(parts), {"title": title, "caption": caption, "png_bytes": len(data)})
        )
        return self

    def add_note(self, text: str, level: str = "info") -> Report:
        """Add a highlighted note (``level`` ``"info"`` or ``"warning"``)."""
        cls = "note warning" if level == "warning" else "note"
        self._sections[-1].items.append(
            _Item("note", None, f'<div class="{cls}">{_paragraphs(text)}</div>', {"level": level, "text": str(text)})
        )
        return self

    # -- output -----------------------------------------------------------------------------------------

    def _summary_rows(self) -> list[dict[str, Any]]:
        try:
            from midtecg import __version__ as version
        except ImportError:  # pragma: no cover
            version = "unknown"
        rows = [{"name": k, "value": v} for k, v in self.summary.items()]
        sections = [s for s in self._sections if s.title is not None]
        rows += [
            {
                "name": "sections / tables / figures",
                "value": f"{len(sections)} / {self._counts['table']} / {self._counts['figure']}",
            },
            {"name": "generated", "value": self.created.isoformat()},
            {"name": "midtecg version", "value": version},
        ]
        return rows

    def to_html(self) -> str:
        """The whole page as a string."""
        summary = pd.DataFrame(self._summary_rows(), columns=["name", "value"]).set_index("name")
        summary.index.name = None
        summary_html = _table_html(summary, self.digits, None, "summary", header=False)
        titled = [(i, s) for i, s in enumerate(self._sections) if s.title is not None]
        toc = ""
        if titled:
            links = "".join(f'<li><a href="#sec-{i}">{_esc(s.title)}</a></li>' for i, s in titled)
            toc = f'<nav class="toc"><strong>Contents</strong><ol>{links}</ol></nav>'
        body = []
        for i, section in enumerate(self._sections):
            if section.title is not None:
                body.append(f'<section id="sec-{i}"><h2>{_esc(section.title)}</h2>')
            else:
                body.append("<section>")
            body.append(_paragraphs(section.text))
            body.extend(item.html for item in section.items)
            body.append("</section>")
        subtitle = f'<p class="meta">{_esc(self.subtitle)}</p>' if self.subtitle else ""
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(self.title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{_esc(self.title)}</h1>\n{subtitle}\n"
            f'<p class="meta">Generated {_esc(self.created.strftime("%Y-%m-%d %H:%M %Z").strip())} by midtecg.</p>\n'
            f"<h2>Summary</h2>\n{summary_html}\n{toc}\n"
            + "\n".join(b for b in body if b)
            + "\n<footer>Self-contained report: all figures are embedded; no external resources.</footer>\n"
            "</main>\n</body>\n</html>\n"
        )

    def write_html(self, path: str | os.PathLike) -> Path:
        """Write the page to ``path`` (UTF-8, atomic); returns the path."""
        return atomic_write_text(path, self.to_html())

    def to_dict(self) -> dict[str, Any]:
        """The report's content as plain data (tables as row lists, figures as titles and captions)."""
        return {
            "title": self.title,
            "subtitle": self.subtitle,
            "created": self.created.isoformat(),
            "summary": dict(self.summary),
            "sections": [
                {
                    "title": s.title,
                    "text": s.text,
                    "items": [
                        {"type": item.kind, **(item.json if isinstance(item.json, dict) else {"text": item.json})}
                        for item in s.items
                    ],
                }
                for s in self._sections
                if s.title is not None or s.items or s.text
            ],
        }

    def write_json(self, path: str | os.PathLike, data: Any = None) -> Path:
        """Write ``data`` as JSON (NaN/inf -> null, NumPy/pandas converted); without ``data``, the report's
        own content (:meth:`to_dict`). Atomic; returns the path."""
        return write_json(path, self.to_dict() if data is None else data)
