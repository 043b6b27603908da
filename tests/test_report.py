"""Self-contained HTML report and JSON output (midtecg.evaluation.report)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from midtecg.evaluation.report import Report, to_jsonable, write_json
from midtecg.plotting.ecg import new_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _solid_figure(color: str, label: str):
    """A figure that is one big coloured block: easy to find in a screenshot."""
    fig = new_figure(6.0, 2.0, dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.axvspan(0, 1, color=color)
    ax.set_xlim(0, 1)
    ax.text(0.5, 0.5, label, ha="center", va="center", fontsize=20, color="white")
    return fig


def _line_figure():
    fig = new_figure(5.0, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.sin(np.linspace(0, 10, 200)))
    return fig


def _build(tmp_path: Path) -> tuple[Report, Path]:
    report = Report("Evaluation <script>alert('x')</script> & co", subtitle="subtitle <i>")
    report.add_summary("records", np.int64(100)).add_summary("mean SNR (dB)", np.float32(3.25))
    report.add_summary("FID", float("nan"))
    report.add_table("before any section", {"a": 1, "b": 2.5})
    report.add_section("Fidelity <1>", "First paragraph.\n\nSecond <b>not bold</b>.")
    report.add_table(
        "Per lead",
        pd.DataFrame({"lead": ["I", "II"], "snr": [1.234567, np.nan], "n": [10, 20]}),
        caption="caption <x>",
    )
    report.add_figure("Red block", _solid_figure("#e00000", "RED"), caption="a red <figure>")
    report.add_note("careful: <none>", level="warning")
    report.add_section("Utility")
    report.add_table("rows", [{"metric": "auroc", "value": 0.91}, {"metric": "f1", "value": None}])
    report.add_figure("Blue block", _solid_figure("#0000e0", "BLUE"))
    report.add_figure("Line", _line_figure())
    report.add_note("plain note")
    path = report.write_html(tmp_path / "out" / "report.html")
    return report, path


def test_html_is_self_contained_escaped_and_parses(tmp_path):
    report, path = _build(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    parser = _Collector()
    parser.feed(text)
    parser.close()
    tags = [t for t, _ in parser.tags]
    # escaping: the hostile title never becomes markup
    assert "script" not in tags and "i" not in tags and "b" not in tags and "x" not in tags
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    body_text = "".join(parser.text)
    assert "Second <b>not bold</b>." in body_text and "careful: <none>" in body_text
    # embedded images are PNGs in data URIs
    images = [a for t, a in parser.tags if t == "img"]
    assert len(images) == 3
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(attrs["src"].split(",", 1)[1])[:8] == PNG_MAGIC
        assert attrs.get("alt")
    assert tags.count("table") == 4  # summary + 3
    assert "Summary" in body_text and "records" in body_text and "3.25" in body_text and "n/a" in body_text
    assert "1.235" in body_text and "0.91" in body_text
    # no external resources
    for tag, attrs in parser.tags:
        assert tag not in ("link", "script", "iframe")
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http:", "https:", "//", "file:")), (tag, value)
    # table of contents links to the sections
    hrefs = [a["href"] for t, a in parser.tags if t == "a"]
    ids = {a["id"] for t, a in parser.tags if "id" in a}
    assert len(hrefs) == 2 and all(h[1:] in ids for h in hrefs)
    assert not [p for p in path.parent.iterdir() if p.name != "report.html"]  # atomic, no leftovers


def test_figures_are_closed(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg", force=False)
    fig = plt.figure()
    plt.plot([0, 1], [1, 0])
    number = fig.number
    Report("t").add_figure("pyplot figure", fig)
    assert number not in plt.get_fignums()
    bare = _line_figure()
    Report("t").add_figure("bare figure", bare)
    assert not bare.axes  # cleared
    with pytest.raises(TypeError):
        Report("t").add_figure("bad", object())
    png = tmp_path / "x.png"
    _line_figure().savefig(png)
    Report("t").add_figure("from file", png).add_figure("from bytes", png.read_bytes())


def test_json_outputs(tmp_path):
    data = {
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "arr": np.array([1.0, np.nan, 3.0], dtype=np.float32),
        "i": np.int64(3),
        "b": np.bool_(True),
        "nested": [{"x": np.float32(0.5)}, (1, 2)],
        "frame": pd.DataFrame({"a": [1, 2], "b": [np.nan, 0.5]}),
        "path": Path("/tmp/x"),
        np.int64(7): "numpy key",
        "missing": pd.NA,
    }
    path = write_json(tmp_path / "r.json", data)
    loaded = json.loads(path.read_text())
    assert loaded["nan"] is None and loaded["inf"] is None
    assert loaded["arr"] == [1.0, None, 3.0]
    assert loaded["i"] == 3 and loaded["b"] is True and loaded["nested"] == [{"x": 0.5}, [1, 2]]
    assert loaded["frame"] == [{"a": 1, "b": None}, {"a": 2, "b": 0.5}]
    assert loaded["path"] == "/tmp/x" and loaded["7"] == "numpy key" and loaded["missing"] is None
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert to_jsonable({1, 2}) == [1, 2]
    report, _ = _build(tmp_path)
    content = json.loads(report.write_json(tmp_path / "report.json").read_text())
    assert content["summary"] == {"records": 100, "mean SNR (dB)": 3.25, "FID": None}
    kinds = [item["type"] for section in content["sections"] for item in section["items"]]
    assert kinds.count("table") == 3 and kinds.count("figure") == 3 and kinds.count("note") == 2
    per_lead = content["sections"][1]["items"][0]
    assert per_lead["rows"][1] == {"lead": "II", "snr": None, "n": 20}
    assert json.loads(report.write_json(tmp_path / "data.json", {"a": np.nan}).read_text()) == {"a": None}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def test_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("MIDTECG_REQUIRE_CHROMIUM"):
            pytest.fail("MIDTECG_REQUIRE_CHROMIUM is set but no chromium was found")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    _, path = _build(tmp_path)
    shot = tmp_path / "shot.png"
    cmd = [
        browser,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        path.resolve().as_uri(),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the browser and its helpers, all started here
        proc.communicate()
        pytest.fail("chromium did not finish the screenshot within 120 s")
    assert shot.is_file(), out.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == PNG_MAGIC
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (2000, 1280)
    non_white = (img < 0.94).any(axis=-1)
    assert 0.02 < non_white.mean() < 0.9  # a page with content, not blank
    assert img.std() > 0.05
    red = (img[..., 0] > 0.75) & (img[..., 1] < 0.2) & (img[..., 2] < 0.2)
    blue = (img[..., 2] > 0.75) & (img[..., 0] < 0.2) & (img[..., 1] < 0.2)
    # each block is 600 x 200 px in the page; allow for scaling and partial visibility
    assert red.sum() > 20_000, red.sum()
    assert blue.sum() > 20_000, blue.sum()
    rows_red = np.nonzero(red.any(axis=1))[0]
    rows_blue = np.nonzero(blue.any(axis=1))[0]
    assert rows_red.max() < rows_blue.min()  # figures in document order
