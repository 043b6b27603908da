"""12-lead printouts and report figures (midtecg.plotting)."""

from __future__ import annotations

import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from midtecg.data.leads import WFDB_LEADS
from midtecg.plotting import (
    correlation_heatmaps,
    ecg_page_size_mm,
    errorbar_lines,
    expected_pixel_size,
    histogram_comparison,
    interval_histograms,
    lead_correlation,
    plot_ecg12,
    plot_ecg_comparison,
    privacy_distance_histogram,
)
from midtecg.plotting.ecg import save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = 127  # exactly 5 pixels per mm
PX_PER_MM = DPI / 25.4


def _beats(fs=100, seconds=10.0, seed=0):
    """A crude ECG-like 12-lead signal: narrow QRS spikes and T waves at 75 bpm plus noise."""
    t = np.arange(int(seconds * fs)) / fs
    phase = (t % 0.8) / 0.8
    qrs = np.exp(-(((phase - 0.3) / 0.012) ** 2))
    twave = 0.25 * np.exp(-(((phase - 0.6) / 0.05) ** 2))
    rng = np.random.default_rng(seed)
    amps = rng.uniform(-1.5, 1.5, size=(12, 1))
    return (amps * qrs + twave + 0.01 * rng.standard_normal((12, t.size))).astype(np.float32)


def _dark(img: np.ndarray) -> np.ndarray:
    rgb = img[..., :3].astype(np.float64)
    return rgb.mean(axis=-1) < 0.3


def test_plot_ecg12_png_physical_size_and_content(tmp_path):
    path = tmp_path / "ecg.png"
    fig = plot_ecg12(
        _beats(), fs=100, path=path, title="synthetic 1", conditions={"labels": ["NORM", "SR"], "age": 65}, dpi=DPI
    )
    assert isinstance(fig, Figure)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    img = mpimg.imread(path)
    # 275 x 184 mm page: 10 mm calibration band + 4 x 62.5 mm (25 mm/s) + 5 mm, 4 rows of 40 mm, margins
    assert ecg_page_size_mm() == (275.0, 184.0)
    assert (img.shape[1], img.shape[0]) == expected_pixel_size(DPI) == (1375, 920)
    # 25 mm/s and 10 mm/mV in data coordinates -> pixels
    ax = fig.axes[0]
    (x0, y0), (x1, y1) = ax.transData.transform([(0.0, 0.0), (25.0, 10.0)])
    assert x1 - x0 == pytest.approx(25 * PX_PER_MM, abs=0.01)
    assert y1 - y0 == pytest.approx(10 * PX_PER_MM, abs=0.01)
    dark = _dark(img)
    assert dark.mean() > 0.003  # traces and labels drawn
    # a flat ECG still shows baselines and calibration pulses, but much less ink
    plot_ecg12(np.zeros((12, 1000)), 100, path=tmp_path / "flat.png", dpi=DPI)
    flat = mpimg.imread(tmp_path / "flat.png")
    assert 0 < _dark(flat).sum() < dark.sum()
    # the grid is pinkish: many pixels with red clearly above green and blue
    rgb = img[..., :3]
    pink = (rgb[..., 0] > 0.8) & (rgb[..., 0] - rgb[..., 1] > 0.1) & (rgb[..., 0] - rgb[..., 2] > 0.1)
    assert pink.mean() > 0.05


def _ink(img, x_mm, y_top_mm, y_bottom_mm, half_width_mm=1.0):
    dark = _dark(img)
    xs = slice(int((x_mm - half_width_mm) * 5), int((x_mm + half_width_mm) * 5))
    ys = slice(int(y_top_mm * 5), int(y_bottom_mm * 5))
    return dark[ys, xs].sum()


def test_plot_ecg12_standard_layout_columns(tmp_path):
    """Column k shows seconds 2.5k..2.5(k+1): a spike in aVR at 3.5 s shows in row 1, column 2; one at 1 s
    does not show (that part of the row is lead I); the rhythm strip is lead II over 10 s."""
    x = np.zeros((12, 1000), dtype=np.float32)
    avr, ii = WFDB_LEADS.index("aVR"), WFDB_LEADS.index("II")
    x[avr, 100] = x[avr, 350] = 2.0  # 1.0 s and 3.5 s
    x[ii, 900] = 2.0  # 9.0 s: shows in the rhythm strip only (row 2, column 4 is V5)
    path = tmp_path / "layout.png"
    plot_ecg12(x, 100, path=path, dpi=DPI)
    img = mpimg.imread(path)
    left = 5.0 + 10.0  # page margin + calibration band, in mm from the left edge
    row_top = [16.0 + 40.0 * r for r in range(4)]  # mm from the top edge
    # spike tops reach 20 mm above the baseline (baseline 23 mm below the row top): look 8-15 mm below the top
    assert _ink(img, left + 3.5 * 25, row_top[0] + 8, row_top[0] + 15) > 0
    assert _ink(img, left + 1.0 * 25, row_top[0] + 8, row_top[0] + 15) == 0
    assert _ink(img, left + 9.0 * 25, row_top[3] + 8, row_top[3] + 15) > 0  # rhythm strip
    assert _ink(img, left + 9.0 * 25, row_top[1] + 8, row_top[1] + 15) == 0  # row 2 column 4 is V5
    # calibration pulse: 1 mV (10 mm) high, 0.2 s (5 mm) wide, at the start of every row
    for top in row_top:
        assert _ink(img, 5.0 + 5.0, top + 12.5, top + 13.5, half_width_mm=1.5) > 0  # top: baseline + 10 mm
        assert _ink(img, 5.0 + 5.0, top + 14.0, top + 22.0, half_width_mm=1.5) == 0  # inside the pulse


def test_plot_ecg12_pdf_and_lead_order(tmp_path):
    path = tmp_path / "ecg.pdf"
    sig = _beats()
    plot_ecg12(sig[::-1], fs=100, path=path, lead_names=list(reversed(WFDB_LEADS)))
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and len(data) > 5_000
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert box is not None
    assert float(box.group(1)) == pytest.approx(275 / 25.4 * 72, abs=0.5)  # physical page size in points
    assert float(box.group(2)) == pytest.approx(184 / 25.4 * 72, abs=0.5)
    with pytest.raises(ValueError):
        plot_ecg12(sig[:8], fs=100)
    with pytest.raises(ValueError):
        plot_ecg12(sig, fs=100, path=tmp_path / "ecg.jpg")


def test_plot_ecg12_does_not_touch_pyplot_and_other_dpi(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_ecg12(_beats(fs=500), fs=500, path=tmp_path / "ecg100.png", dpi=100)
    assert plt.get_fignums() == before
    data = (tmp_path / "ecg100.png").read_bytes()
    assert b"pHYs" in data  # the PNG carries its dpi, so it prints at physical scale
    img = mpimg.imread(tmp_path / "ecg100.png")
    assert (img.shape[1], img.shape[0]) == expected_pixel_size(100) == (1082, 724)  # 275 x 184 mm at 100 dpi


def test_comparison_and_report_figures(tmp_path):
    real, synth = _beats(seed=1), _beats(seed=2)
    fig = plot_ecg_comparison(real, synth, fs=100, leads=("I", "avr", "V1"), path=tmp_path / "cmp.png", seconds=5)
    assert len(fig.axes) == 3 and (tmp_path / "cmp.png").read_bytes()[:8] == PNG_MAGIC
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((5, 12, 300))
    signals[:, 1] = 2 * signals[:, 0]
    corr = lead_correlation(signals)
    assert corr.shape == (12, 12) and corr[0, 1] == pytest.approx(1.0) and np.allclose(np.diag(corr), 1.0)
    figs = [
        correlation_heatmaps(signals, signals[::-1] + 0.1 * rng.standard_normal(signals.shape)),
        histogram_comparison(rng.normal(size=100), np.r_[rng.normal(size=100), np.nan], xlabel="x"),
        interval_histograms({"RR": rng.normal(800, 50, 50), "QT": [400.0]}, {"RR": rng.normal(820, 60, 50), "QT": []}),
        privacy_distance_histogram(rng.gamma(3, size=80), rng.gamma(3, size=80), vlines={"5%": 1.0}),
        errorbar_lines(
            {"real": ([0.6, 0.7], [0.02, 0.01]), "mixed": ([0.1, 1.0], [0.7, 0.75], None)}, x=[0.1, 1.0], logx=True
        ),
    ]
    import pandas as pd

    frame = pd.DataFrame(
        {"n": [10, 100, 10, 100], "auc": [0.6, 0.8, 0.7, 0.82], "sd": [0.05] * 4, "s": ["a", "a", "b", "b"]}
    )
    figs.append(errorbar_lines(frame, x="n", y="auc", yerr="sd", group="s"))
    for i, f in enumerate(figs):
        assert isinstance(f, Figure)
        out = save_figure(f, tmp_path / f"fig{i}.png", dpi=50)
        img = mpimg.imread(out)
        assert img[..., :3].std() > 0.05  # not a blank canvas
    with pytest.raises(ValueError):
        errorbar_lines({"a": ([1.0], [0.1])})
    assert len(correlation_heatmaps(corr, np.eye(12), title="t").axes) == 6  # matrices in, 3 panels + colorbars


def test_save_ecg_plots_keeps_every_file_inside_its_folder(tmp_path):
    from midtecg.data.errors import DataError
    from midtecg.plotting.ecg import save_ecg_plots

    signals = np.stack([_beats(), _beats(seed=1)])
    folder = tmp_path / "out" / "plots"
    paths = save_ecg_plots(folder, signals, 100, ["a", "b"], "png", dpi=20)
    assert paths == [folder / "a.png", folder / "b.png"] and all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    for names in (["/elsewhere/x", "b"], ["../../x", "b"], ["a/b", "c"], ["x" * 300, "b"], ["c", "c"], ["", "b"]):
        with pytest.raises(DataError, match="record name"):
            save_ecg_plots(tmp_path / "out" / "other", signals, 100, names, "png", dpi=20)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        "out/plots/a.png",
        "out/plots/b.png",
    ]
    with pytest.raises(ValueError, match="jpg"):
        save_ecg_plots(folder, signals, 100, ["a", "b"], "jpg")
