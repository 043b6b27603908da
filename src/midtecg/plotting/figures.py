"""Small figures for the evaluation report: lead-correlation heatmaps, distribution histograms, and line
plots with error bars. Every function returns a pyplot-free :class:`matplotlib.figure.Figure` (Agg
canvas); pass it to :meth:`midtecg.evaluation.report.Report.add_figure` or
:func:`midtecg.plotting.ecg.save_figure`. NaN values are ignored everywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from midtecg.data.leads import WFDB_LEADS
from midtecg.plotting.ecg import new_figure

__all__ = [
    "correlation_heatmaps",
    "errorbar_lines",
    "histogram_comparison",
    "interval_histograms",
    "lead_correlation",
    "privacy_distance_histogram",
]

REAL_COLOR = "#4c72b0"
SYNTH_COLOR = "#dd8452"
_SERIES_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def lead_correlation(signals) -> np.ndarray:
    """Mean over ECGs of the per-ECG Pearson correlation between leads: ``(N, C, L)`` or ``(C, L)`` -> ``(C, C)``.

    Flat leads (zero variance) give NaN for that ECG and are left out of the mean.
    """
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"expected (N, leads, L) or (leads, L), got shape {x.shape}")
    xc = x - x.mean(axis=2, keepdims=True)
    cov = np.einsum("ncl,ndl->ncd", xc, xc)
    norm = np.sqrt(np.einsum("ncc->nc", cov))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells (a lead flat everywhere) stay NaN
        corr = cov / (norm[:, :, None] * norm[:, None, :])
        return np.nanmean(np.clip(corr, -1.0, 1.0), axis=0)


def _as_corr(m, what: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim == 3 or (m.ndim == 2 and m.shape[0] != m.shape[1]):
        m = lead_correlation(m)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{what}: expected a square correlation matrix or signals, got shape {m.shape}")
    return m


def correlation_heatmaps(
    real,
    synth,
    lead_names: Sequence[str] = WFDB_LEADS,
    *,
    title: str | None = None,
    labels: tuple[str, str] = ("real", "synthetic"),
    annotate_diff: bool = True,
) -> Figure:
    """Three heatmaps: real, synthetic and |real - synthetic| lead-correlation matrices.

    ``real`` / ``synth`` are ``(C, C)`` correlation matrices, or signals ``(N, C, L)`` whose
    :func:`lead_correlation` is taken. The difference panel's title gives the mean absolute difference
    over the off-diagonal entries; with ``annotate_diff`` each cell prints its value (x100).
    """
    a = _as_corr(real, "real")
    b = _as_corr(synth, "synth")
    if a.shape != b.shape:
        raise ValueError(f"real {a.shape} and synth {b.shape} correlation matrices differ in shape")
    names = list(lead_names)
    if len(names) != a.shape[0]:
        names = [str(i) for i in range(a.shape[0])]
    diff = np.abs(a - b)
    off = ~np.eye(a.shape[0], dtype=bool)
    mad = float(np.nanmean(diff[off])) if off.any() else float("nan")
    fig = new_figure(15.0, 5.0)
    axes = fig.subplots(1, 3)
    vmax_diff = max(0.2, float(np.nanmax(diff))) if np.isfinite(diff).any() else 1.0
    panels = (
        (a, f"{labels[0]}", "RdBu_r", -1.0, 1.0),
        (b, f"{labels[1]}", "RdBu_r", -1.0, 1.0),
        (diff, f"|{labels[0]} - {labels[1]}|  (mean off-diag {mad:.3f})", "Reds", 0.0, vmax_diff),
    )
    for ax, (m, name, cmap, lo, hi) in zip(axes, panels):
        im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(name, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if annotate_diff and a.shape[0] <= 16:
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                if np.isfinite(diff[i, j]):
                    axes[2].text(
                        j,
                        i,
                        f"{100 * diff[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=5.5,
                        color="white" if diff[i, j] > 0.6 * vmax_diff else "black",
                    )
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def _hist_pair(ax, a, b, labels, bins, value_range, density):
    a, b = _finite(a), _finite(b)
    both = np.concatenate([a, b])
    if value_range is None and both.size:
        lo, hi = float(both.min()), float(both.max())
        value_range = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    edges = np.histogram_bin_edges(both if both.size else [0.0, 1.0], bins=bins, range=value_range)
    for v, color, label in ((a, REAL_COLOR, labels[0]), (b, SYNTH_COLOR, labels[1])):
        if v.size:
            ax.hist(
                v,
                bins=edges,
                density=density,
                alpha=0.55,
                color=color,
                label=f"{label} (n={v.size})",
                edgecolor=color,
                linewidth=0.6,
            )
            ax.axvline(float(np.median(v)), color=color, lw=1.2, ls="--")
        else:
            ax.plot([], [], color=color, label=f"{label} (no values)")
    ax.set_ylabel("density" if density else "count")
    ax.legend(fontsize=8)


def histogram_comparison(
    a,
    b,
    *,
    labels: tuple[str, str] = ("real", "synthetic"),
    bins: int | str = 40,
    value_range: tuple[float, float] | None = None,
    xlabel: str | None = None,
    title: str | None = None,
    density: bool = True,
    vlines: Mapping[str, float] | None = None,
) -> Figure:
    """Overlaid histograms of two samples on shared bins, medians dashed; ``vlines`` adds labelled
    vertical lines (e.g. thresholds)."""
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    _hist_pair(ax, a, b, labels, bins, value_range, density)
    for k, (name, value) in enumerate((vlines or {}).items()):
        ax.axvline(float(value), color="#333333", lw=1.0, ls=":" if k % 2 else "-.", label=name)
    if vlines:
        ax.legend(fontsize=8)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def interval_histograms(
    real: Mapping[str, Sequence[float]],
    synth: Mapping[str, Sequence[float]],
    *,
    units: str = "ms",
    labels: tuple[str, str] = ("real", "synthetic"),
    bins: int = 30,
    title: str | None = None,
) -> Figure:
    """One histogram panel per interval present in both mappings (e.g. ``RR``, ``PR``, ``QRS``, ``QT``)."""
    keys = [k for k in real if k in synth]
    if not keys:
        raise ValueError("interval_histograms: no interval name in common")
    ncols = min(len(keys), 4)
    nrows = int(np.ceil(len(keys) / ncols))
    fig = new_figure(3.6 * ncols, 3.0 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, key in zip(axes, keys):
        _hist_pair(ax, real[key], synth[key], labels, bins, None, True)
        ax.set_xlabel(f"{key} ({units})" if units else key)
        ax.set_title(key, fontsize=10)
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def privacy_distance_histogram(
    synth_to_train,
    reference_to_train,
    *,
    labels: tuple[str, str] = ("synthetic to train", "holdout to train"),
    xlabel: str = "nearest-neighbour distance to the training set",
    title: str | None = "Distance to closest record",
    bins: int = 40,
    vlines: Mapping[str, float] | None = None,
) -> Figure:
    """Histogram of nearest-neighbour distances: synthetic-to-train against a reference (holdout-to-train).

    Synthetic distances piling up below the reference's suggest memorised training records.
    """
    return histogram_comparison(
        reference_to_train,
        synth_to_train,
        labels=(labels[1], labels[0]),
        bins=bins,
        xlabel=xlabel,
        title=title,
        vlines=vlines,
    )


def errorbar_lines(
    series,
    x: Sequence[float] | str | None = None,
    *,
    y: str | None = None,
    yerr: str | None = None,
    group: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    logx: bool = False,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Lines with error bars, e.g. low-data utility curves (score against the amount of real data).

    ``series`` is either a mapping ``name -> (y, yerr)`` sharing the x values ``x``, or
    ``name -> (x, y, yerr)``; or a long DataFrame with the column names given by ``x``, ``y``, ``yerr``
    (optional) and ``group`` (optional: one line per group value). ``yerr`` may be None.
    """
    lines: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]] = []
    if hasattr(series, "columns"):
        if not isinstance(x, str) or not isinstance(y, str):
            raise ValueError("errorbar_lines with a DataFrame needs the column names x=... and y=...")
        groups = series.groupby(group, sort=False) if group else [(y, series)]
        for name, frame in groups:
            frame = frame.sort_values(x)
            err = frame[yerr].to_numpy(dtype=float) if yerr else None
            lines.append((str(name), frame[x].to_numpy(dtype=float), frame[y].to_numpy(dtype=float), err))
    else:
        for name, value in series.items():
            value = tuple(value)
            if len(value) == 3:
                xs, ys, errs = value
            elif len(value) == 2:
                if x is None or isinstance(x, str):
                    raise ValueError(f"series {name!r}: (y, yerr) pairs need the shared x values")
                xs, (ys, errs) = x, value
            else:
                raise ValueError(f"series {name!r}: expected (y, yerr) or (x, y, yerr)")
            lines.append(
                (
                    str(name),
                    np.asarray(xs, dtype=float),
                    np.asarray(ys, dtype=float),
                    None if errs is None else np.asarray(errs, dtype=float),
                )
            )
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for k, (name, xs, ys, errs) in enumerate(lines):
        if xs.shape != ys.shape or (errs is not None and errs.shape != ys.shape):
            raise ValueError(f"series {name!r}: x, y and yerr lengths differ")
        color = _SERIES_COLORS[k % len(_SERIES_COLORS)]
        ax.errorbar(xs, ys, yerr=errs, label=name, color=color, marker="o", ms=4, lw=1.5, capsize=3)
    if logx:
        ax.set_xscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    if xlabel or isinstance(x, str):
        ax.set_xlabel(xlabel or str(x))
    if ylabel or isinstance(y, str):
        ax.set_ylabel(ylabel or str(y))
    if title:
        ax.set_title(title, fontsize=11)
    if lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
