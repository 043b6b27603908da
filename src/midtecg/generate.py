"""Generation for users: build conditions from a request, sample, and write files people can open.

``conditions_from_request`` (flags), ``conditions_from_csv`` (one row per ECG) and ``paired_conditions``
(copied from a split of a prepared cache) all return the same table: one 0/1 column per SCP code, the
demographic columns age, sex (0 male, 1 female), height, weight and heart_rate (NaN when not given), and a
readable ``labels`` column. ``generate`` validates the request against the model before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from midtecg.data.labels import SCP_CODES, resolve_label
from midtecg.sample import ECGGenerator, SampledECGs, load_generator, sample

DEMOGRAPHICS = ("age", "sex", "height", "weight", "heart_rate")
# Plausible ranges for requested values; outside them a request is refused, not clipped.
RANGES = {"age": (0.0, 120.0), "height": (40.0, 250.0), "weight": (2.0, 300.0), "heart_rate": (20.0, 300.0)}
SEX_NAMES = {"male": 0, "m": 0, "0": 0, "female": 1, "f": 1, "1": 1}
OUTPUT_FORMATS = ("wfdb", "npz", "csv", "png", "pdf")
DEFAULT_MODEL = Path(__file__).parent / "assets" / "default_model"


def parse_sex(value) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    key = str(value).strip().lower()
    if key.endswith(".0"):
        key = key[:-2]
    if key not in SEX_NAMES:
        raise ValueError(f"sex must be male or female (or 0/1), got {value!r}")
    return float(SEX_NAMES[key])


def _check_range(name: str, value: float, where: str = "") -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    value = float(value)
    low, high = RANGES[name]
    if not (low <= value <= high):
        raise ValueError(f"{where}{name} = {value:g} is out of range [{low:g}, {high:g}]")
    return value


def parse_labels(labels) -> list[str]:
    """SCP codes from codes or descriptions, given as a list or a comma-separated string."""
    if labels is None:
        return []
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    return [resolve_label(item.strip()) for item in items if str(item).strip()]


def _label_columns(codes_per_row: list[list[str]]) -> pd.DataFrame:
    matrix = np.zeros((len(codes_per_row), len(SCP_CODES)), dtype=np.float32)
    index = {code: i for i, code in enumerate(SCP_CODES)}
    for row, codes in enumerate(codes_per_row):
        for code in codes:
            matrix[row, index[code]] = 1.0
    return pd.DataFrame(matrix, columns=list(SCP_CODES))


def _table(codes_per_row, demographics: pd.DataFrame) -> pd.DataFrame:
    table = pd.concat([demographics.reset_index(drop=True), _label_columns(codes_per_row)], axis=1)
    table.insert(0, "labels", [",".join(codes) for codes in codes_per_row])
    return table


def conditions_from_request(n: int = 1, labels=None, age=None, sex=None, height=None, weight=None,
                            heart_rate=None) -> pd.DataFrame:
    """``n`` identical requests from flag-style values (labels by code or description, sex by name)."""
    if n < 1:
        raise ValueError(f"the number of ECGs must be at least 1, got {n}")
    codes = parse_labels(labels)
    values = {
        "age": _check_range("age", age), "sex": parse_sex(sex), "height": _check_range("height", height),
        "weight": _check_range("weight", weight), "heart_rate": _check_range("heart_rate", heart_rate),
    }
    return _table([codes] * n, pd.DataFrame([values] * n))


def conditions_from_csv(path: str | Path) -> pd.DataFrame:
    """One ECG per row: a ``labels`` column (codes or descriptions separated by commas, or empty) and any of
    age, sex, height, weight, heart_rate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"conditions file not found: {path}")
    frame = pd.read_csv(path, dtype={"labels": str, "sex": str}, keep_default_na=True)
    unknown = sorted(set(frame.columns) - {"labels", *DEMOGRAPHICS, "name"})
    if unknown:
        raise ValueError(f"{path}: unknown column(s) {unknown}; expected labels, {', '.join(DEMOGRAPHICS)}")
    if frame.empty:
        raise ValueError(f"{path}: no rows")
    codes, rows = [], []
    for number, row in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        where = f"{path} line {number}: "
        try:
            codes.append(parse_labels(row.get("labels") if isinstance(row.get("labels"), str) else None))
            rows.append({
                "age": _check_range("age", _number(row.get("age")), where),
                "sex": parse_sex(row.get("sex") if isinstance(row.get("sex"), str) else None),
                **{k: _check_range(k, _number(row.get(k)), where) for k in ("height", "weight", "heart_rate")},
            })
        except ValueError as error:
            raise ValueError(f"{where}{error}" if not str(error).startswith(str(path)) else str(error)) from None
    table = _table(codes, pd.DataFrame(rows))
    if "name" in frame.columns:
        table.insert(0, "name", frame["name"].astype(str).to_numpy())
    return table


def _number(value) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def paired_conditions(cache: str | Path, split="test", limit: int | None = None) -> pd.DataFrame:
    """The conditions of real records of a prepared cache, one generated ECG per real record."""
    from midtecg.data.cache import load_prepared

    records = load_prepared(cache, split=split).records.reset_index(drop=True)
    if limit is not None:
        records = records.iloc[:limit]
    codes = [[c for c in SCP_CODES if row[c] > 0] for _, row in records[list(SCP_CODES)].iterrows()]
    demographics = records[[c for c in DEMOGRAPHICS if c in records.columns]].astype(float)
    table = _table(codes, demographics.reindex(columns=list(DEMOGRAPHICS)))
    table.insert(0, "name", [f"synth_ecg{int(i):05d}" for i in records["ecg_id"]])
    table.insert(1, "ecg_id", records["ecg_id"].to_numpy())
    return table


def usable_demographics(encoder) -> set[str]:
    """The request columns a model's condition encoder reads."""
    if encoder.mode in ("age", "sex"):
        return {encoder.mode}
    if encoder.mode == "numeric":
        fields = set(encoder.numeric_fields)
        return (fields | ({"height", "weight"} if "bmi" in fields else set())) & set(DEMOGRAPHICS)
    return set()


def check_request(generator: ECGGenerator, conditions: pd.DataFrame) -> None:
    """Refuse demographics the model cannot use instead of silently ignoring them."""
    given = {c for c in DEMOGRAPHICS if c in conditions.columns and conditions[c].notna().any()}
    ignored = sorted(given - usable_demographics(generator.encoder))
    if ignored:
        mode = generator.encoder.mode
        detail = f" ({', '.join(generator.encoder.numeric_fields)})" if mode == "numeric" else ""
        raise ValueError(f"the model {generator.source} is conditioned on {mode}{detail}; it cannot use {', '.join(ignored)}")


@dataclass
class GenerationResult:
    ecgs: SampledECGs
    out_dir: Path | None = None
    files: dict[str, list[Path]] = field(default_factory=dict)


def generate(
    conditions: pd.DataFrame,
    model: str | Path | ECGGenerator | None = None,
    out_dir: str | Path | None = None,
    formats=("wfdb", "png"),
    *,
    fs: int | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    guidance: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    device: str | None = None,
    progress: bool = True,
    strict: bool = True,
) -> GenerationResult:
    """Sample one ECG per row of ``conditions`` and, when ``out_dir`` is given, write ``formats`` there.

    ``sampler``: None is the model's default (``midtecg.sample.default_sampler``).
    ``strict``: refuse demographics the model cannot use (a user asked for them); ``False`` drops them instead,
    for conditions copied from real records (``paired_conditions``), which carry every field.
    """
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(OUTPUT_FORMATS))
    if unknown:
        raise ValueError(f"unknown output format(s) {unknown}; choose from {', '.join(OUTPUT_FORMATS)}")
    generator = model if isinstance(model, ECGGenerator) else load_generator(model or DEFAULT_MODEL, device)
    if fs is not None and fs % generator.fs:
        raise ValueError(f"output rate must be a multiple of the model's {generator.fs} Hz, got {fs}")
    if not strict:
        usable = usable_demographics(generator.encoder)
        conditions = conditions.drop(columns=[c for c in DEMOGRAPHICS if c in conditions.columns and c not in usable])
    check_request(generator, conditions)
    ecgs = sample(generator, conditions, sampler=sampler, steps=steps, guidance=guidance, seed=seed,
                  batch_size=batch_size, progress=progress)
    if fs is not None and fs != generator.fs:
        ecgs = upsample(ecgs, fs)
    result = GenerationResult(ecgs)
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        result.files = write_outputs(ecgs, result.out_dir, formats, generator, seed)
    return result


def upsample(ecgs: SampledECGs, fs: int) -> SampledECGs:
    from midtecg.data.ptbxl import resample

    return SampledECGs(resample(ecgs.signals, ecgs.fs, fs), ecgs.conditions, fs, ecgs.lead_names)


def _comments(row: pd.Series, generator: ECGGenerator, seed: int) -> dict:
    out = {"labels": row["labels"] or "none"}
    for name in DEMOGRAPHICS:
        value = row.get(name)
        if value is not None and not pd.isna(value):
            out[name] = ("female" if value == 1 else "male") if name == "sex" else round(float(value), 2)
    out.update({"generator": "midtecg", "model": Path(generator.source).name, "seed": seed})
    return out


def write_outputs(ecgs: SampledECGs, out_dir: Path, formats, generator: ECGGenerator, seed: int) -> dict[str, list[Path]]:
    from midtecg.io.arrays import save_npz, write_conditions_csv, write_signals_csv
    from midtecg.io.wfdb_io import write_wfdb

    out_dir.mkdir(parents=True, exist_ok=True)
    table = ecgs.conditions
    names = list(table["name"]) if "name" in table.columns else [f"synth_{i + 1:05d}" for i in range(len(table))]
    files: dict[str, list[Path]] = {}
    if "wfdb" in formats:
        comments = [_comments(row, generator, seed) for _, row in table.iterrows()]
        files["wfdb"] = write_wfdb(ecgs.signals, out_dir / "wfdb", fs=ecgs.fs, names=names, comments=comments)
    if "npz" in formats:
        files["npz"] = [save_npz(out_dir / "ecgs.npz", ecgs.signals, table, ecgs.lead_names, ecgs.fs)]
    if "csv" in formats:
        files["csv"] = write_signals_csv(out_dir / "csv", ecgs.signals, fs=ecgs.fs, names=names)
    for kind in ("png", "pdf"):
        if kind in formats:
            files[kind] = _plots(ecgs, names, out_dir / "plots", kind)
    index = table.drop(columns=list(SCP_CODES))
    if "name" not in index.columns:
        index.insert(0, "name", names)
    files["conditions"] = [write_conditions_csv(out_dir / "conditions.csv", index)]
    return files


def _plots(ecgs: SampledECGs, names, folder: Path, kind: str) -> list[Path]:
    import matplotlib.pyplot as plt

    from midtecg.plotting.ecg import plot_ecg12

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, signal, (_, row) in zip(names, ecgs.signals, ecgs.conditions.iterrows()):
        path = folder / f"{name}.{kind}"
        figure = plot_ecg12(signal, ecgs.fs, path=path, title=f"{name}  {_describe(row)}")
        plt.close(figure)
        paths.append(path)
    return paths


def _describe(row: pd.Series) -> str:
    parts = [f"labels: {row['labels'] or 'none'}"]
    for name, unit in (("age", "y"), ("sex", ""), ("height", "cm"), ("weight", "kg"), ("heart_rate", "bpm")):
        value = row.get(name)
        if value is not None and not pd.isna(value):
            parts.append(("female" if value == 1 else "male") if name == "sex" else f"{name.replace('_', ' ')} {value:g}{unit}")
    return "  ".join(parts)
