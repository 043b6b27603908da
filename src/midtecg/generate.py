"""Generation for users: build conditions from a request, sample, and write files people can open.

``conditions_from_request`` (flags), ``conditions_from_csv`` (one row per ECG) and ``paired_conditions``
(copied from a split of a prepared cache) all return the same table: one 0/1 column per SCP code, the
demographic columns age, sex (0 male, 1 female), height, weight and heart_rate (NaN when not given), and a
readable ``labels`` column. Requested values outside ``midtecg.data.demographics.CONDITION_RANGES`` (the
table training cleans with) are refused, not clipped. ``generate`` validates the whole request (counts,
rate, names, output folder, device, demographics the model can use) before any sampling.

Output folder (``out_dir``): the entries of :mod:`midtecg.output_layout`. Record names come from the
conditions' ``name`` column (``synth_00001``, ... by default) and follow
:func:`midtecg.files.check_record_name`. A folder that already holds any of the entries is refused unless
``overwrite``, which replaces them whole; everything is written in a staging folder first and moved into
place at the end (:func:`midtecg.files.staged_output`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from midtecg.data.demographics import SEX_NAMES, check_plausible, parse_sex
from midtecg.data.labels import SCP_CODES, labels_matrix, resolve_label
from midtecg.device import resolve_device
from midtecg.files import check_output_folder, check_record_names, default_record_names, staged_output
from midtecg.output_layout import OUTPUT_ENTRIES, check_formats

if TYPE_CHECKING:
    from midtecg.sample import ECGGenerator, SampledECGs

DEMOGRAPHICS = ("age", "sex", "height", "weight", "heart_rate")
DEFAULT_MODEL = Path(__file__).parent / "assets" / "default_model"
# Cells of a conditions CSV that mean "not given" (compared in lower case, surrounding spaces ignored).
MISSING_CELLS = ("", "na", "n/a", "nan", "none", "null")
# Jobs of at least this many ECG-steps (ECGs x sampler steps) print an estimate of their time before they start.
LARGE_JOB_ECG_STEPS = 1000


def parse_labels(labels) -> list[str]:
    """SCP codes from codes or descriptions, given as a list or a comma-separated string."""
    if labels is None:
        return []
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    return [resolve_label(item.strip()) for item in items if str(item).strip()]


def _table(codes_per_row, demographics: pd.DataFrame) -> pd.DataFrame:
    labels = pd.DataFrame(labels_matrix(codes_per_row), columns=list(SCP_CODES))
    table = pd.concat([demographics.reset_index(drop=True), labels], axis=1)
    table.insert(0, "labels", [",".join(codes) for codes in codes_per_row])
    return table


def check_count(n, what: str = "the number of ECGs") -> int:
    """``n`` as an int when it is a whole number of at least 1, else ``ValueError``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be a whole number of at least 1, got {n!r}")
    return int(n)


def conditions_from_request(
    n: int = 1, labels=None, age=None, sex=None, height=None, weight=None, heart_rate=None
) -> pd.DataFrame:
    """``n`` identical requests from flag-style values (labels by code or description, sex by name)."""
    n = check_count(n)
    codes = parse_labels(labels)
    values = {
        "age": check_plausible("age", age),
        "sex": parse_sex(sex),
        "height": check_plausible("height", height),
        "weight": check_plausible("weight", weight),
        "heart_rate": check_plausible("heart_rate", heart_rate),
    }
    return _table([codes] * n, pd.DataFrame([values] * n))


def conditions_from_csv(path: str | Path) -> pd.DataFrame:
    """One ECG per row: a ``labels`` column (codes or descriptions separated by commas, or empty), any of
    age, sex, height, weight, heart_rate, and optionally ``name`` (the record's file name). Every problem
    names the file and its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"conditions file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV ({type(error).__name__}: {error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    unknown = sorted(set(frame.columns) - {"labels", *DEMOGRAPHICS, "name"})
    if unknown:
        raise ValueError(f"{path}: unknown column(s) {unknown}; expected name, labels, {', '.join(DEMOGRAPHICS)}")
    if frame.empty:
        raise ValueError(f"{path}: no rows")
    lines = [f"{path} line {number}: " for number in range(2, len(frame) + 2)]  # line 1 is the header
    codes, rows = [], []
    for where, row in zip(lines, frame.to_dict("records")):
        try:
            codes.append(parse_labels(row.get("labels") or None))
            values = {k: None if str(row.get(k, "")).strip().lower() in MISSING_CELLS else row[k] for k in DEMOGRAPHICS}
            rows.append(
                {
                    "sex": parse_sex(values["sex"]),
                    **{k: check_plausible(k, values[k]) for k in ("age", "height", "weight", "heart_rate")},
                }
            )
        except ValueError as error:
            raise ValueError(f"{where}{error}") from None
    table = _table(codes, pd.DataFrame(rows).reindex(columns=list(DEMOGRAPHICS)))
    if "name" in frame.columns:
        table.insert(0, "name", check_record_names(frame["name"].str.strip(), where=lines))
    return table


def paired_conditions(cache: str | Path, split="test", limit: int | None = None) -> pd.DataFrame:
    """The conditions of real records of a prepared cache, one generated ECG per real record (at most
    ``limit``, a whole number of at least 1)."""
    from midtecg.data.cache import load_prepared

    if limit is not None:
        limit = check_count(limit, "the limit on paired records (-n)")
    records = load_prepared(cache, split=split).records.reset_index(drop=True)
    if limit is not None:
        records = records.iloc[:limit]
    if records.empty:
        raise ValueError(f"{cache}: split {split!r} holds no records")
    codes = [[c for c, on in zip(SCP_CODES, row) if on > 0] for row in records[list(SCP_CODES)].to_numpy()]
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
        raise ValueError(
            f"the model {generator.source} is conditioned on {mode}{detail}; it cannot use {', '.join(ignored)}"
        )


def record_names_of(conditions: pd.DataFrame) -> list[str]:
    """The checked file names of the ECGs of ``conditions`` (its ``name`` column, else synth_00001, ...)."""
    if "name" in conditions.columns:
        return check_record_names(conditions["name"].astype(str))
    return default_record_names(len(conditions))


def check_rate(fs, flag: str = "fs") -> int | None:
    """An output rate in Hz: None or a whole positive number (``flag`` names it in the message)."""
    if fs is None:
        return None
    if isinstance(fs, bool) or not isinstance(fs, (int, np.integer)) or fs < 1:
        raise ValueError(f"{flag} must be a whole positive number of Hz, got {fs!r}")
    return int(fs)


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
    indices: Sequence[int] | np.ndarray | None = None,
    device: str | None = None,
    progress: bool = True,
    strict: bool = True,
    overwrite: bool = False,
    estimate: bool | None = None,
) -> GenerationResult:
    """Sample one ECG per row of ``conditions`` and, when ``out_dir`` is given, write ``formats`` there.

    ``sampler``: None is the model's default (``midtecg.sample.default_sampler``).
    ``seed`` and ``indices`` (each row's index in the job; None: its position, 0, 1, ...) key each ECG's own
    noise stream (``midtecg.sample.sample``): the same seed gives the same ECGs whatever ``batch_size``, and
    one row of a job regenerated alone with its index (``conditions.iloc[[i]]``, ``indices=[i]``) is the
    same ECG. Both are written in each WFDB header (``seed``, ``index``).
    ``strict``: refuse demographics the model cannot use (a user asked for them); ``False`` drops them instead,
    for conditions copied from real records (``paired_conditions``), which carry every field. ``overwrite``:
    replace an earlier generation in ``out_dir`` (refused otherwise). ``estimate`` (default: ``progress``):
    jobs of at least ``LARGE_JOB_ECG_STEPS`` print an estimate of their time on stderr first (one timed
    denoiser call, :func:`describe_job`).
    """
    formats = check_formats(formats)
    fs = check_rate(fs)
    batch_size = check_count(batch_size, "batch_size")
    check_count(len(conditions), "the number of conditions rows")
    if not math.isfinite(guidance):
        raise ValueError(f"guidance must be a finite number, got {guidance}")
    names = record_names_of(conditions)
    if out_dir is not None:
        check_output_folder(out_dir, OUTPUT_ENTRIES, overwrite)
    from midtecg.sample import ECGGenerator, generator_sampler, load_generator, sample

    generator = (
        model if isinstance(model, ECGGenerator) else load_generator(model or DEFAULT_MODEL, resolve_device(device))
    )
    if fs is not None and fs % generator.fs:
        raise ValueError(f"output rate must be a multiple of the model's {generator.fs} Hz, got {fs}")
    if not strict:
        usable = usable_demographics(generator.encoder)
        conditions = conditions.drop(columns=[c for c in DEMOGRAPHICS if c in conditions.columns and c not in usable])
    check_request(generator, conditions)
    solver = generator_sampler(generator, sampler, steps)
    n_calls = getattr(solver, "num_evaluations", solver.num_steps)  # network evaluations per ECG
    if (progress if estimate is None else estimate) and len(conditions) * n_calls >= LARGE_JOB_ECG_STEPS:
        print(describe_job(generator, conditions, solver, guidance, batch_size), file=sys.stderr)
    ecgs = sample(
        generator,
        conditions,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        seed=seed,
        batch_size=batch_size,
        indices=indices,
        progress=progress,
    )
    if fs is not None and fs != generator.fs:
        ecgs = upsample(ecgs, fs)
    result = GenerationResult(ecgs)
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        with staged_output(out_dir, OUTPUT_ENTRIES, overwrite) as stage:
            staged = write_outputs(ecgs, stage, formats, generator, seed, names, indices)
        result.files = {kind: [result.out_dir / p.relative_to(stage) for p in paths] for kind, paths in staged.items()}
    return result


def describe_job(generator: ECGGenerator, conditions: pd.DataFrame, solver, guidance: float, batch_size: int) -> str:
    """One line: how many ECGs, which sampler with how many steps (and network evaluations, where a step takes
    more than one), how many batches, and the time they should take, from one timed denoiser call on a full
    batch (twice the batch with guidance), times the number of calls."""
    import torch

    n_steps = solver.num_steps
    n_calls = getattr(solver, "num_evaluations", n_steps)

    n = len(conditions)
    batch = min(n, batch_size) * (1 if guidance == 1.0 else 2)
    encoded = generator.encoder.encode(conditions.iloc[: min(n, batch_size)])
    device = generator.device
    cond = {k: torch.tensor(np.concatenate([v] * (batch // len(v))), device=device) for k, v in encoded.items()}
    x = torch.zeros(batch, generator.model.config.in_leads, generator.length, device=device)
    t = torch.zeros(batch, dtype=torch.long, device=device)
    with torch.no_grad(), generator.model.cached_kernels():
        generator.model(x, t, cond)  # computes the cached kernels
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        generator.model(x, t, cond)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        per_call = time.perf_counter() - start
    batches = math.ceil(n / batch_size)
    seconds = per_call * n_calls * batches
    when = (
        f"{seconds:.0f} s"
        if seconds < 120
        else (f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h")
    )
    return (
        f"generating {n} ECGs: {solver.name}, {n_steps} steps"
        f"{f' ({n_calls} network evaluations)' if n_calls != n_steps else ''} x {batches} batch(es) of up to {batch_size}"
        f"{' (x2 for guidance)' if guidance != 1.0 else ''} on {device}; about {when} "
        f"(one step of a full batch measured at {per_call:.2f} s)"
    )


def upsample(ecgs: SampledECGs, fs: int) -> SampledECGs:
    from midtecg.data.ptbxl import resample
    from midtecg.sample import SampledECGs

    return SampledECGs(resample(ecgs.signals, ecgs.fs, fs), ecgs.conditions, fs, ecgs.lead_names)


def _given(row: pd.Series) -> dict:
    """The demographics a row gives (sex as its word), for header comments and plot titles."""
    out = {}
    for name in DEMOGRAPHICS:
        value = row.get(name)
        if value is not None and not pd.isna(value):
            out[name] = SEX_NAMES[int(value)] if name == "sex" else round(float(value), 2)
    return out


def _comments(row: pd.Series, generator: ECGGenerator, seed: int, index: int) -> dict:
    return {
        "labels": row["labels"] or "none",
        **_given(row),
        "generator": "midtecg",
        "model": Path(generator.source).name,
        "seed": seed,
        "index": index,
    }


def write_outputs(
    ecgs: SampledECGs,
    out_dir: Path,
    formats,
    generator: ECGGenerator,
    seed: int,
    names: list[str] | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
) -> dict[str, list[Path]]:
    """Write ``formats`` of ``ecgs`` and ``conditions.csv`` into ``out_dir`` (see the module docstring);
    ``indices``: each ECG's index in the job (None: 0, 1, ...), written with ``seed`` in the WFDB headers."""
    from midtecg.io.arrays import save_npz, write_conditions_csv, write_signals_csv
    from midtecg.io.wfdb_io import write_wfdb
    from midtecg.plotting.ecg import save_ecg_plots

    table = ecgs.conditions
    names = record_names_of(table) if names is None else check_record_names(names, len(table))
    files: dict[str, list[Path]] = {}
    if "wfdb" in formats:
        indices = range(len(table)) if indices is None else indices
        comments = [_comments(row, generator, seed, int(i)) for i, (_, row) in zip(indices, table.iterrows())]
        files["wfdb"] = write_wfdb(ecgs.signals, out_dir / "wfdb", fs=ecgs.fs, names=names, comments=comments)
    if "npz" in formats:
        files["npz"] = [save_npz(out_dir / "ecgs.npz", ecgs.signals, table, ecgs.lead_names, ecgs.fs)]
    if "csv" in formats:
        files["csv"] = write_signals_csv(out_dir / "csv", ecgs.signals, fs=ecgs.fs, names=names)
    for kind in ("png", "pdf"):
        if kind in formats:
            titles = [f"{name}  {_describe(row)}" for name, (_, row) in zip(names, table.iterrows())]
            files[kind] = save_ecg_plots(out_dir / "plots", ecgs.signals, ecgs.fs, names, kind, titles)
    index = table.drop(columns=list(SCP_CODES))
    if "name" not in index.columns:
        index.insert(0, "name", names)
    files["conditions"] = [write_conditions_csv(out_dir / "conditions.csv", index)]
    return files


def _describe(row: pd.Series) -> str:
    units = {"age": "y", "height": "cm", "weight": "kg", "heart_rate": "bpm"}
    parts = [f"labels: {row['labels'] or 'none'}"]
    parts += [
        value if name == "sex" else f"{name.replace('_', ' ')} {value:g}{units[name]}"
        for name, value in _given(row).items()
    ]
    return "  ".join(parts)
