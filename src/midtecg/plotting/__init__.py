"""Standard 12-lead ECG plots and small report figures (pyplot-free, Agg canvas)."""

from midtecg.plotting.ecg import (
    ecg_page_size_mm,
    expected_pixel_size,
    new_figure,
    plot_ecg12,
    plot_ecg_comparison,
    save_ecg_plots,
    save_figure,
)
from midtecg.plotting.figures import (
    correlation_heatmaps,
    errorbar_lines,
    histogram_comparison,
    interval_histograms,
    lead_correlation,
    privacy_distance_histogram,
)

__all__ = [
    "correlation_heatmaps",
    "errorbar_lines",
    "histogram_comparison",
    "interval_histograms",
    "lead_correlation",
    "privacy_distance_histogram",
    "ecg_page_size_mm",
    "expected_pixel_size",
    "new_figure",
    "plot_ecg12",
    "plot_ecg_comparison",
    "save_ecg_plots",
    "save_figure",
]
