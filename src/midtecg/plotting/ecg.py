"""Standard clinical 12-lead ECG printouts and real-vs-synthetic overlays.

:func:`plot_ecg12` draws the usual 3 x 4 + rhythm-strip layout on ECG paper at a **physical** scale:
the figure size is set in millimetres, so a PNG printed at its dpi (or the PDF at 100 %) shows
25 mm/s and 10 mm/mV exactly, on a 1 mm / 5 mm grid.

Layout (all sizes in mm, see :data:`LAYOUT`)::

    +-------------------------------------------------------------------------+  title band (16 mm)
    | cal |  I (0-2.5 s)  |  aVR (2.5-5 s) |  V1 (5-7.5 s)  |  V4 (7.5-10 s) |  row 1 (40 mm)
    | cal |  II           |  aVL           |  V2            |  V5            |  row 2
    | cal |  III          |  aVF           |  V3            |  V6            |  row 3
    | cal |  II rhythm strip, 0-10 s                                         |  row 4
    +-------------------------------------------------------------------------+  footer band (8 mm)

Column k shows seconds 2.5k to 2.5(k+1) of its three leads (the standard simultaneous layout), each row
starts with a 1 mV x 0.2 s calibration pulse in a 10 mm band, and the rhythm strip shows lead II over the
full 10 s. Signals longer than 10 s are cut to their first 10 s; shorter ones leave the rest blank.

Figures are built with :class:`matplotlib.figure.Figure` on the non-interactive Agg canvas, never through
pyplot, so nothing here touches global matplotlib state or needs a display; they are freed by garbage
collection.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MultipleLocator

from midtecg.data.leads import WFDB_LEADS, canonical_lead_name, wfdb_order
from midtecg.files import check_record_names, path_inside

__all__ = [
    "LAYOUT",
    "LAYOUT_3X4",
    "MM_PER_INCH",
    "ecg_page_size_mm",
    "expected_pixel_size",
    "new_figure",
    "plot_ecg12",
    "plot_ecg_comparison",
    "save_ecg_plots",
    "save_figure",
]

MM_PER_INCH = 25.4
PAPER_SPEED_MM_S = 25.0
GAIN_MM_MV = 10.0

# The standard layout: rows of (lead, lead, lead, lead); column k covers seconds 2.5k .. 2.5(k+1).
LAYOUT_3X4: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
RHYTHM_LEAD = "II"

LAYOUT: dict[str, float] = {
    "cal_band": 10.0,  # calibration pulse band at the start of each row
    "cal_start": 2.5,  # the pulse rises 2.5 mm into the band and lasts 0.2 s = 5 mm
    "seconds": 10.0,  # paper length of the trace: 4 columns of 2.5 s
    "right_pad": 5.0,  # grid after the trace
    "row_pitch": 40.0,  # height of one row of the grid (8 large boxes)
    "baseline": 17.0,  # baseline height above the bottom of its row
    "n_rows": 4.0,  # 3 lead rows + rhythm strip
    "margin_left": 5.0,  # white paper around the grid
    "margin_right": 5.0,
    "title_band": 16.0,
    "footer_band": 8.0,
}

_PAPER = "#fff8f6"
_MINOR = "#f6c4c4"
_MAJOR = "#e48f8f"
_TRACE = "#111111"


def _grid_size_mm() -> tuple[float, float]:
    width = LAYOUT["cal_band"] + LAYOUT["seconds"] * PAPER_SPEED_MM_S + LAYOUT["right_pad"]
    height = LAYOUT["row_pitch"] * LAYOUT["n_rows"]
    return width, height


def ecg_page_size_mm() -> tuple[float, float]:
    """(width, height) of the whole :func:`plot_ecg12` figure in millimetres (275 x 184 by default)."""
    gw, gh = _grid_size_mm()
    return (
        LAYOUT["margin_left"] + gw + LAYOUT["margin_right"],
        LAYOUT["title_band"] + gh + LAYOUT["footer_band"],
    )


def expected_pixel_size(dpi: float) -> tuple[int, int]:
    """Pixel (width, height) of a :func:`plot_ecg12` PNG saved at ``dpi`` (matplotlib truncates)."""
    w, h = ecg_page_size_mm()
    return int(w / MM_PER_INCH * dpi + 1e-6), int(h / MM_PER_INCH * dpi + 1e-6)


def new_figure(width_in: float, height_in: float, dpi: float = 100.0) -> Figure:
    """A pyplot-free Figure on the Agg canvas."""
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: float | None = None) -> Path:
    """Save ``fig`` atomically; the format comes from the suffix (``.png``, ``.pdf``, ``.svg``)."""
    from midtecg.io.arrays import atomic_write_bytes

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"{path}: unsupported figure format {path.suffix!r}; use .png, .pdf or .svg")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi if dpi is not None else fig.dpi)
    return atomic_write_bytes(path, buf.getvalue())


def _as_twelve(signal, lead_names: Sequence[str] | None, what: str = "signal") -> np.ndarray:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2 or x.shape[0] != 12:
        raise ValueError(f"{what}: expected one 12-lead ECG of shape (12, L), got {x.shape}")
    return x[wfdb_order(WFDB_LEADS if lead_names is None else lead_names, what)]


def _condition_text(conditions: Mapping[str, Any] | str | None) -> str:
    if conditions is None:
        return ""
    if isinstance(conditions, str):
        return conditions
    parts = []
    for key, value in conditions.items():
        if isinstance(value, (list, tuple, set, np.ndarray)):
            value = ", ".join(map(str, value))
        parts.append(f"{key}: {value}")
    return "   |   ".join(parts)


def _draw_grid(ax, width: float, height: float) -> None:
    minor_x = [x for x in np.arange(0, width + 1e-9, 1.0) if round(x) % 5]
    minor_y = [y for y in np.arange(0, height + 1e-9, 1.0) if round(y) % 5]
    major_x = np.arange(0, width + 1e-9, 5.0)
    major_y = np.arange(0, height + 1e-9, 5.0)
    minor = [[(x, 0), (x, height)] for x in minor_x] + [[(0, y), (width, y)] for y in minor_y]
    major = [[(x, 0), (x, height)] for x in major_x] + [[(0, y), (width, y)] for y in major_y]
    ax.add_collection(LineCollection(minor, colors=_MINOR, linewidths=0.3, zorder=1))
    ax.add_collection(LineCollection(major, colors=_MAJOR, linewidths=0.7, zorder=2))


def plot_ecg12(
    signal,
    fs: float = 100.0,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    *,
    conditions: Mapping[str, Any] | str | None = None,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    dpi: float = 200.0,
    footer: str | None = None,
) -> Figure:
    """Draw one 12-lead ECG ``(12, L)`` in mV as a standard clinical printout; optionally save it.

    ``title`` is printed bold at the top and ``conditions`` (a dict such as ``{"labels": ["NORM", "SR"],
    "age": 65}``, or a string) on the line below. ``lead_names`` gives the order of the rows of
    ``signal`` (default WFDB order). When ``path`` is given the figure is saved there (format from the
    suffix: ``.png``, ``.pdf`` or ``.svg``) at ``dpi``; see :func:`expected_pixel_size`. Returns the Figure.
    """
    x = _as_twelve(signal, lead_names)
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"sampling rate must be positive, got {fs}")
    lead = {name: x[i] for i, name in enumerate(WFDB_LEADS)}

    page_w, page_h = ecg_page_size_mm()
    grid_w, grid_h = _grid_size_mm()
    fig = new_figure(page_w / MM_PER_INCH, page_h / MM_PER_INCH, dpi=dpi)
    fig.patch.set_facecolor("white")
    ax = fig.add_axes(
        (
            LAYOUT["margin_left"] / page_w,
            LAYOUT["footer_band"] / page_h,
            grid_w / page_w,
            grid_h / page_h,
        )
    )
    ax.set_xlim(0, grid_w)
    ax.set_ylim(0, grid_h)
    ax.set_axis_off()
    ax.add_patch(Rectangle((0, 0), grid_w, grid_h, facecolor=_PAPER, edgecolor=_MAJOR, linewidth=0.9, zorder=0))
    _draw_grid(ax, grid_w, grid_h)

    cal = LAYOUT["cal_band"]
    col_s = LAYOUT["seconds"] / 4.0
    col_mm = col_s * PAPER_SPEED_MM_S
    n = x.shape[1]
    max_n = int(round(LAYOUT["seconds"] * fs))
    segments, labels = [], []

    def trace(values: np.ndarray, start: int, stop: int, base: float) -> None:
        stop = min(stop, n, max_n + 1)
        if stop - start < 1:
            return
        t = np.arange(start, stop) / fs
        xs = cal + t * PAPER_SPEED_MM_S
        ys = base + values[start:stop] * GAIN_MM_MV
        segments.append(np.column_stack([xs, ys]))

    for r in range(int(LAYOUT["n_rows"])):
        top = grid_h - r * LAYOUT["row_pitch"]
        base = top - LAYOUT["row_pitch"] + LAYOUT["baseline"]
        c0 = LAYOUT["cal_start"]
        c1 = c0 + 0.2 * PAPER_SPEED_MM_S
        pulse = [(0.6, base), (c0, base), (c0, base + GAIN_MM_MV), (c1, base + GAIN_MM_MV), (c1, base), (cal, base)]
        segments.append(np.asarray(pulse))
        if r < 3:
            for k, name in enumerate(LAYOUT_3X4[r]):
                start = int(round(k * col_s * fs))
                stop = int(round((k + 1) * col_s * fs)) + 1  # join up with the next column
                trace(lead[name], start, stop, base)
                labels.append((cal + k * col_mm + 1.5, top - 4.0, name))
                if k > 0:  # lead change marker
                    xm = cal + k * col_mm
                    segments.append(np.asarray([(xm, base - 3.0), (xm, base + 3.0)]))
        else:
            trace(lead[RHYTHM_LEAD], 0, max_n + 1, base)
            labels.append((cal + 1.5, top - 4.0, RHYTHM_LEAD))

    ax.add_collection(
        LineCollection(segments, colors=_TRACE, linewidths=0.8, zorder=4, capstyle="round", joinstyle="round")
    )
    for xt, yt, text in labels:
        ax.text(xt, yt, text, fontsize=9, fontweight="bold", ha="left", va="top", zorder=5, color="#000000")

    # title band and footer (positions in figure mm converted to fractions)
    left = LAYOUT["margin_left"] / page_w
    if title:
        fig.text(left, 1 - 3.0 / page_h, title, ha="left", va="top", fontsize=12, fontweight="bold")
    cond_text = _condition_text(conditions)
    if cond_text:
        fig.text(left, 1 - 10.0 / page_h, cond_text, ha="left", va="top", fontsize=8.5, color="#333333")
    scale_text = f"{PAPER_SPEED_MM_S:g} mm/s    {GAIN_MM_MV:g} mm/mV    {fs:g} Hz"
    fig.text(left, 2.5 / page_h, scale_text, ha="left", va="bottom", fontsize=8, color="#333333")
    if footer:
        fig.text(
            1 - LAYOUT["margin_right"] / page_w,
            2.5 / page_h,
            footer,
            ha="right",
            va="bottom",
            fontsize=8,
            color="#333333",
        )
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


def save_ecg_plots(
    folder: str | os.PathLike,
    signals,
    fs: float,
    names: Sequence[str],
    kind: str = "png",
    titles: Sequence[str] | None = None,
    *,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    dpi: float = 200.0,
) -> list[Path]:
    """One :func:`plot_ecg12` page per ECG of ``signals (N, 12, L)``, saved as ``folder/<name>.<kind>``.

    ``names`` are record names (checked by :func:`midtecg.files.check_record_names`, like every other
    writer's: nothing can land outside ``folder``); ``titles`` default to the names. Returns the paths.
    """
    if kind not in ("png", "pdf", "svg"):
        raise ValueError(f"unsupported figure format {kind!r}; use png, pdf or svg")
    names = check_record_names(names, len(signals))
    titles = names if titles is None else list(titles)
    paths = [path_inside(folder, name, f".{kind}") for name in names]
    for path, signal, title in zip(paths, signals, titles):
        plot_ecg12(signal, fs, path=path, title=title, lead_names=lead_names, dpi=dpi)
    return paths


_REAL_COLOR = "#1f1f1f"
_SYNTH_COLOR = "#d62728"


def plot_ecg_comparison(
    real,
    synth,
    fs: float = 100.0,
    leads: Sequence[str] = ("I", "II", "V1", "V2", "V5", "aVF"),
    *,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    labels: tuple[str, str] = ("real", "synthetic"),
    seconds: float | None = None,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    dpi: float = 100.0,
) -> Figure:
    """Overlay a real and a synthetic 12-lead ECG ``(12, L)`` for a few ``leads``, one panel per lead.

    ``seconds`` limits the time shown (default: everything). The y axes are in mV and shared within a
    panel, with a light ECG-style grid (1 s major, 0.2 s minor). Returns the Figure; saves it when ``path``.
    """
    r = _as_twelve(real, lead_names, "real")
    s = _as_twelve(synth, lead_names, "synth")
    leads = [canonical_lead_name(name) for name in leads]
    if not leads:
        raise ValueError("leads: give at least one lead")
    n = min(r.shape[1], s.shape[1]) if seconds is None else int(round(seconds * fs))
    fig = new_figure(10.0, 0.4 + 1.45 * len(leads), dpi=dpi)
    axes = fig.subplots(len(leads), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, leads):
        i = WFDB_LEADS.index(name)
        for values, color, label, lw in ((r[i], _REAL_COLOR, labels[0], 1.0), (s[i], _SYNTH_COLOR, labels[1], 0.9)):
            m = min(n, values.shape[0])
            ax.plot(np.arange(m) / fs, values[:m], color=color, lw=lw, label=label, alpha=0.9)
        ax.set_ylabel(f"{name}\n(mV)", rotation=0, ha="right", va="center", fontsize=9)
        ax.xaxis.set_major_locator(MultipleLocator(1.0))
        ax.xaxis.set_minor_locator(MultipleLocator(0.2))
        ax.grid(True, which="major", color=_MAJOR, lw=0.5, alpha=0.6)
        ax.grid(True, which="minor", color=_MINOR, lw=0.4, alpha=0.6)
        ax.tick_params(labelsize=8)
        ax.margins(x=0)
    axes[0].legend(loc="upper right", fontsize=8, ncol=2, frameon=True)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig
