"""Paired fidelity metrics: each synthetic ECG is compared with the real ECG it was generated for.

Paired protocol (``method.md`` section 6): for every test record ``i`` one ECG is generated from that
record's own conditions, so ``synth[i]`` is compared with ``real[i]``. Arrays are ``(N, 12, L)`` float
millivolts in WFDB lead order (I, II, III, aVR, aVL, aVF, V1-V6); any number of leads is accepted as long as
both arrays agree and ``lead_names`` (if given) has one name per lead.

Per record and lead, with ``x`` the real lead and ``x_hat`` the synthetic one (sums over time):

- ``snr_db = 10 log10(sum x^2 / sum (x - x_hat)^2)``. ``+inf`` when ``x_hat == x`` exactly. Summaries
  replace ``+inf`` by ``snr_cap_db`` (default 100 dB, far above anything a generator reaches; float32
  round-off alone sits near 140 dB) and report how many values were capped (``snr_n_inf``).
- ``rmse = sqrt(mean (x - x_hat)^2)`` in mV.
- ``prd = 100 sqrt(sum (x - x_hat)^2 / sum x^2)`` in percent.
- ``abs_r = |Pearson r(x, x_hat)|``.

**Flat leads.** A lead is *flat* when its RMS is below ``FLAT_RMS_MV`` (1e-6 mV = 1 nV, a thousandth of
PTB-XL's 1 uV resolution). SNR and PRD are undefined (NaN) when the real lead has zero energy, and
Pearson r is undefined (NaN) when either lead has zero variance (RMS of the centred lead below the same
limit). Undefined values are counted (``n_undefined``) and left out of every mean (nanmean). RMSE is
always defined.

Inter-lead correlation error: per record the ``C x C`` Pearson correlation matrix across leads of the real
and of the synthetic ECG; the mean and the max of ``|C_real - C_synth|`` over the off-diagonal lead pairs
(each unordered pair once), averaged over records; and the same two numbers between the sets' mean
correlation matrices (records averaged element-wise), which also works for unpaired sets.

All functions validate their inputs (shape, NaN / inf) and raise :class:`midtecg.data.errors.DataError`
(a ``ValueError``) with a message that names the argument and the first bad record. Outputs are plain
Python floats / ints, dicts and NumPy arrays; :func:`midtecg.evaluation.report.to_jsonable` (re-exported here) turns any of them into strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from midtecg.data.errors import DataError
from midtecg.data.leads import WFDB_LEADS
from midtecg.data.signals import check_signals as data_check_signals
from midtecg.evaluation.report import to_jsonable  # noqa: F401  (re-exported: one JSON conversion for the suite)

__all__ = [
    "FLAT_RMS_MV",
    "DEFAULT_SNR_CAP_DB",
    "check_signals",
    "check_pair",
    "paired_fidelity",
    "correlation_matrices",
    "interlead_correlation_error",
    "mean_correlation_matrix_error",
    "mean_matrix_error",
    "breakdown",
    "to_jsonable",
]

FLAT_RMS_MV = 1e-6
DEFAULT_SNR_CAP_DB = 100.0
_METRICS = ("snr_db", "rmse", "prd", "abs_r")
_CHUNK = 256  # records per vectorised block: bounds float64 temporaries to a few tens of MB


# --------------------------------------------------------------------------------------------- validation
def check_signals(
    x, name: str = "signals", *, ndim: int | None = 3, n_leads: int | None = None, min_records: int = 1
) -> np.ndarray:
    """:func:`midtecg.data.signals.check_signals` keeping the input's float dtype (metrics run in float64 when
    given float64)."""
    return data_check_signals(x, name, ndim=ndim, n_leads=n_leads, min_records=min_records, dtype=None)


def check_pair(real, synth, *, n_leads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a paired set: both ``(N, leads, L)``, same shape, finite."""
    real = check_signals(real, "real", n_leads=n_leads)
    synth = check_signals(synth, "synth", n_leads=n_leads)
    if real.shape != synth.shape:
        raise DataError(f"paired metrics need equal shapes: real {real.shape} vs synth {synth.shape}")
    return real, synth


def lead_names_for(lead_names: Sequence[str] | None, n_leads: int) -> list[str]:
    if lead_names is None:
        return list(WFDB_LEADS) if n_leads == len(WFDB_LEADS) else [f"lead{i}" for i in range(n_leads)]
    names = [str(n) for n in lead_names]
    if len(names) != n_leads:
        raise DataError(f"lead_names has {len(names)} names for {n_leads} leads")
    return names


def _chunks(n: int, size: int = _CHUNK) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def nanstats(a: np.ndarray) -> dict:
    """mean / std / median / n_valid of the values, NaN ignored; NaN statistics when none is left."""
    a = np.asarray(a, dtype=np.float64).ravel()
    valid = a[~np.isnan(a)]
    if valid.size == 0:
        return {"mean": math.nan, "std": math.nan, "median": math.nan, "n_valid": 0}
    return {
        "mean": float(valid.mean()),
        "std": float(valid.std()),
        "median": float(np.median(valid)),
        "n_valid": int(valid.size),
    }


def _nanmean(a, axis=None):
    """nanmean without RuntimeWarning on all-NaN slices (gives NaN there)."""
    a = np.asarray(a, dtype=np.float64)
    valid = ~np.isnan(a)
    count = valid.sum(axis=axis)
    total = np.where(valid, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    return np.where(count > 0, out, np.nan) if np.ndim(out) else (float(out) if count > 0 else math.nan)


# ------------------------------------------------------------------------------------------ paired metrics
def _paired_block(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-record-per-lead metrics for one block, float64. x, y: (n, C, L)."""
    x = x.astype(np.float64, copy=False)
    y = y.astype(np.float64, copy=False)
    length = x.shape[-1]
    flat_energy = length * FLAT_RMS_MV**2
    err = x - y
    err_energy = np.einsum("ncl,ncl->nc", err, err)
    energy = np.einsum("ncl,ncl->nc", x, x)
    rmse = np.sqrt(err_energy / length)
    real_flat = energy <= flat_energy
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = 10.0 * np.log10(energy / err_energy)  # +inf where err_energy == 0
        prd = 100.0 * np.sqrt(err_energy / energy)
    snr = np.where(real_flat, np.nan, snr)
    prd = np.where(real_flat, np.nan, prd)
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    sxx = np.einsum("ncl,ncl->nc", xc, xc)
    syy = np.einsum("ncl,ncl->nc", yc, yc)
    sxy = np.einsum("ncl,ncl->nc", xc, yc)
    undefined_r = (sxx <= flat_energy) | (syy <= flat_energy)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(sxy / np.sqrt(sxx * syy))
    r = np.where(undefined_r, np.nan, np.minimum(r, 1.0))
    return {"snr_db": snr, "rmse": rmse, "prd": prd, "abs_r": r}


def paired_fidelity(
    real, synth, *, lead_names: Sequence[str] | None = None, snr_cap_db: float = DEFAULT_SNR_CAP_DB
) -> dict:
    """SNR (dB), RMSE (mV), PRD (%) and |Pearson r| of each synthetic record against its real partner.

    Parameters
    ----------
    real, synth : (N, C, L) arrays, same shape, ``synth[i]`` generated for ``real[i]``.
    lead_names : names of the C leads (default: the 12 WFDB leads when C == 12).
    snr_cap_db : value that replaces ``+inf`` SNR (exact reconstruction) in every summary and in
        ``per_record``; ``per_record_lead`` keeps the raw ``inf``.

    Returns
    -------
    dict with
      ``summary``: ``{metric: mean over all records and leads}`` (NaN ignored) for
        ``snr_db, rmse, prd, abs_r``;
      ``summary_std``: the standard deviation of the same values;
      ``per_lead``: ``{metric: {lead: mean over records}}``;
      ``per_record``: ``{metric: (N,) array, mean over leads}`` (feed these to :func:`breakdown`);
      ``per_record_lead``: ``{metric: (N, C) array}`` (raw, SNR may be ``inf``);
      ``n_undefined``: ``{metric: number of NaN (undefined) record-lead values}`` (flat leads);
      ``snr_n_inf``: number of record-lead pairs with exact reconstruction (SNR capped);
      ``snr_cap_db``, ``n_records``, ``n_leads``, ``lead_names``.
    """
    real, synth = check_pair(real, synth)
    n, c, _ = real.shape
    names = lead_names_for(lead_names, c)
    out = {m: np.empty((n, c), dtype=np.float64) for m in _METRICS}
    for sl in _chunks(n):
        block = _paired_block(real[sl], synth[sl])
        for m in _METRICS:
            out[m][sl] = block[m]
    snr_raw = out["snr_db"]
    n_inf = int(np.isposinf(snr_raw).sum())
    capped = dict(out)
    capped["snr_db"] = np.where(np.isposinf(snr_raw), float(snr_cap_db), snr_raw)
    summary, summary_std, per_lead, per_record, n_undefined = {}, {}, {}, {}, {}
    for m in _METRICS:
        vals = capped[m]
        stats = nanstats(vals)
        summary[m] = stats["mean"]
        summary_std[m] = stats["std"]
        lead_means = _nanmean(vals, axis=0)
        per_lead[m] = {name: float(v) for name, v in zip(names, lead_means)}
        per_record[m] = _nanmean(vals, axis=1)
        n_undefined[m] = int(np.isnan(vals).sum())
    return {
        "summary": summary,
        "summary_std": summary_std,
        "per_lead": per_lead,
        "per_record": per_record,
        "per_record_lead": out,
        "n_undefined": n_undefined,
        "snr_n_inf": n_inf,
        "snr_cap_db": float(snr_cap_db),
        "n_records": int(n),
        "n_leads": int(c),
        "lead_names": names,
    }


# ------------------------------------------------------------------------------- inter-lead correlations
def correlation_matrices(x) -> np.ndarray:
    """Per-record Pearson correlation matrices across leads: (N, C, L) -> (N, C, C) float64.

    Rows and columns of flat leads (centred RMS below ``FLAT_RMS_MV``) are NaN (correlation undefined);
    the diagonal of the other leads is exactly 1.
    """
    x = check_signals(x, "signals")
    n, c, length = x.shape
    out = np.empty((n, c, c), dtype=np.float64)
    for sl in _chunks(n):
        xb = x[sl].astype(np.float64)
        xb -= xb.mean(axis=-1, keepdims=True)
        norm = np.sqrt(np.einsum("ncl,ncl->nc", xb, xb))
        flat = norm <= math.sqrt(length) * FLAT_RMS_MV
        with np.errstate(divide="ignore", invalid="ignore"):
            z = xb / norm[..., None]
        z[flat] = np.nan
        cm = np.clip(np.einsum("nil,njl->nij", z, z), -1.0, 1.0)
        idx = np.arange(c)
        cm[:, idx, idx] = np.where(flat, np.nan, 1.0)
        out[sl] = cm
    return out


def _offdiag(c: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(c, k=1)


def mean_correlation_matrix_error(real, synth, *, lead_names: Sequence[str] | None = None) -> dict:
    """Distance between the sets' mean inter-lead correlation matrices (sets may differ in size: unpaired).

    The mean matrix of a set is the element-wise mean over its records (records where a pair is undefined
    because of a flat lead are left out of that element). Returns ``mean_abs_error`` and ``max_abs_error``
    of ``|mean C_real - mean C_synth|`` over the off-diagonal pairs, ``max_pair`` (the two lead names of the
    worst pair), and both mean matrices (``real_mean_matrix``, ``synth_mean_matrix``, (C, C) arrays).
    """
    real = check_signals(real, "real")
    synth = check_signals(synth, "synth")
    if real.shape[1:] != synth.shape[1:]:
        raise DataError(f"real and synth must have the same leads and length: {real.shape} vs {synth.shape}")
    return _between_means(
        correlation_matrices(real), correlation_matrices(synth), lead_names_for(lead_names, real.shape[1])
    )


def mean_matrix_error(cr, cs, *, lead_names: Sequence[str] | None = None) -> dict:
    """:func:`mean_correlation_matrix_error` from per-record matrices already computed by
    :func:`correlation_matrices` (``(N_r, C, C)`` and ``(N_s, C, C)``): many subsets at the cost of means."""
    cr, cs = np.asarray(cr, dtype=np.float64), np.asarray(cs, dtype=np.float64)
    if cr.ndim != 3 or cr.shape[1:] != cs.shape[1:] or cr.shape[1] != cr.shape[2]:
        raise DataError(f"correlation matrices must be (N, C, C) with the same C: {cr.shape} vs {cs.shape}")
    return _between_means(cr, cs, lead_names_for(lead_names, cr.shape[1]))


def _between_means(cr: np.ndarray, cs: np.ndarray, names: list[str]) -> dict:
    mr = _nanmean(cr, axis=0)
    ms = _nanmean(cs, axis=0)
    iu, ju = _offdiag(mr.shape[0])
    diff = np.abs(mr - ms)[iu, ju]
    if np.all(np.isnan(diff)):
        mean_err = max_err = math.nan
        pair = None
    else:
        mean_err = float(np.nanmean(diff))
        k = int(np.nanargmax(diff))
        max_err = float(diff[k])
        pair = [names[iu[k]], names[ju[k]]]
    return {
        "mean_abs_error": mean_err,
        "max_abs_error": max_err,
        "max_pair": pair,
        "real_mean_matrix": mr,
        "synth_mean_matrix": ms,
    }


def interlead_correlation_error(real, synth, *, lead_names: Sequence[str] | None = None) -> dict:
    """Inter-lead correlation error of paired sets (the MIDT-ECG headline metric).

    For each record ``i``: ``E_i = |C_real[i] - C_synth[i]|`` over the ``C (C-1) / 2`` off-diagonal lead pairs.

    Returns
    -------
    dict with
      ``mean_abs_error``: mean over records of the per-record mean of ``E_i`` over pairs;
      ``max_abs_error``: mean over records of the per-record max of ``E_i``;
      ``per_record_mean``, ``per_record_max``: (N,) arrays (NaN for a record with no defined pair);
      ``pair_error``: (C, C) array, mean over records of ``E_i`` per pair (symmetric, NaN diagonal);
      ``n_undefined_pairs``: number of (record, pair) values left out because a lead is flat;
      ``n_undefined_records``: records with no defined pair at all;
      ``between_means``: :func:`mean_correlation_matrix_error` of the two sets (same keys);
      ``n_records``, ``lead_names``.
    """
    real, synth = check_pair(real, synth)
    names = lead_names_for(lead_names, real.shape[1])
    cr = correlation_matrices(real)
    cs = correlation_matrices(synth)
    c = cr.shape[1]
    iu, ju = _offdiag(c)
    e = np.abs(cr - cs)[:, iu, ju]  # (N, P)
    defined = ~np.isnan(e)
    per_mean = _nanmean(e, axis=1)
    per_max = np.where(defined.any(axis=1), np.max(np.where(defined, e, -np.inf), axis=1), np.nan)
    pair_error = np.full((c, c), np.nan)
    pm = _nanmean(e, axis=0)
    pair_error[iu, ju] = pm
    pair_error[ju, iu] = pm
    return {
        "mean_abs_error": nanstats(per_mean)["mean"],
        "max_abs_error": nanstats(per_max)["mean"],
        "per_record_mean": per_mean,
        "per_record_max": per_max,
        "pair_error": pair_error,
        "n_undefined_pairs": int((~defined).sum()),
        "n_undefined_records": int((~defined.any(axis=1)).sum()),
        "between_means": _between_means(cr, cs, names),
        "n_records": int(real.shape[0]),
        "lead_names": names,
    }


# ------------------------------------------------------------------------------------------------ breakdown
def _is_missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(isinstance(v, float) and math.isnan(v)) or (isinstance(v, np.floating) and np.isnan(v))
    except TypeError:
        return False


def group_masks(labels, n: int, class_names: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Label spec -> {group name: boolean mask (n,)}; a record may belong to several groups."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(labels, pd.DataFrame):
        class_names = [str(col) for col in labels.columns] if class_names is None else class_names
        labels = labels.to_numpy()
    elif pd is not None and isinstance(labels, pd.Series):
        labels = labels.to_numpy()
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if labels.shape[0] != n:
            raise DataError(f"labels have {labels.shape[0]} rows for {n} records")
        names = [str(k) for k in (class_names if class_names is not None else range(labels.shape[1]))]
        if len(names) != labels.shape[1]:
            raise DataError(f"class_names has {len(names)} names for {labels.shape[1]} label columns")
        hot = np.asarray(labels, dtype=np.float64)
        hot = np.where(np.isnan(hot), 0.0, hot) > 0.5
        return {name: hot[:, j] for j, name in enumerate(names)}
    seq = list(labels)
    if len(seq) != n:
        raise DataError(f"labels have {len(seq)} entries for {n} records")
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(seq):
        if isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
            items = [] if _is_missing(item) else [item]
        else:
            items = [v for v in item if not _is_missing(v)]
        for v in dict.fromkeys(items):  # unique, order kept
            key = v.item() if isinstance(v, np.generic) else v
            groups.setdefault(str(key), []).append(i)
    masks = {}
    keys = list(groups)
    try:  # numeric-looking keys in numeric order
        keys = sorted(keys, key=float)
    except ValueError:
        keys = sorted(keys)
    for key in keys:
        mask = np.zeros(n, dtype=bool)
        mask[groups[key]] = True
        masks[key] = mask
    if class_names is not None:
        masks = {k: masks.get(k, np.zeros(n, dtype=bool)) for k in map(str, class_names)}
    return masks


def breakdown(values, labels, *, class_names: Sequence[str] | None = None, min_count: int = 1) -> dict:
    """Group per-record metric values by a label column; multi-label records count in each of their classes.

    Parameters
    ----------
    values : (N,) array of one metric, or a mapping ``{metric: (N,) array}`` (e.g. ``paired_fidelity(...)
        ["per_record"]``). NaN values are left out of that metric's statistics (``n_valid`` says how many
        remain).
    labels : one of
        * a 1-D sequence / array / Series of single labels (``"NORM"``, ``0``/``1`` for sex, an age bin);
          ``None`` / NaN means "no label" and the record is in no group;
        * a 1-D sequence of iterables (lists / sets / tuples) of labels per record (multi-label);
        * a 2-D multi-hot array ``(N, K)`` (entries > 0.5 are members) or a DataFrame (its columns name the
          classes).
    class_names : names of the K columns of a 2-D array; for 1-D labels, restricts and orders the groups
        (a listed class with no record appears with ``n = 0``).
    min_count : groups with fewer records are left out.

    Returns
    -------
    ``{group: {"n": records in the group, "mean", "std", "median", "n_valid"}}`` for a single array, or
    ``{group: {"n": ..., metric: {"mean", "std", "median", "n_valid"}}}`` for a mapping.
    """
    single = not isinstance(values, Mapping)
    vals = {"value": values} if single else dict(values)
    arrays = {}
    n = None
    for k, v in vals.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1:
            raise DataError(f"breakdown: values {k!r} must be 1-D (one value per record), got shape {a.shape}")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise DataError(f"breakdown: values {k!r} has {a.shape[0]} entries, expected {n}")
        arrays[k] = a
    if n is None:
        raise DataError("breakdown: no values given")
    masks = group_masks(labels, n, class_names)
    out = {}
    for group, mask in masks.items():
        count = int(mask.sum())
        if count < min_count:
            continue
        if single:
            out[group] = {"n": count, **nanstats(arrays["value"][mask])}
        else:
            out[group] = {"n": count, **{k: nanstats(a[mask]) for k, a in arrays.items()}}
    return out
