"""Shared test data for the evaluation-metric tests (test_eval_*.py), plus checks of that data itself.

- :func:`ecg_like`: plausible 12-lead ECGs at 100 Hz built from a small bank of ``neurokit2.ecg_simulate
  (method="multileads")`` recordings (cached on disk: simulating costs ~1 s per record), made
  Einthoven / Goldberger-consistent through the 8 independent leads, then varied per record (circular time
  shift, per-lead gains, baseline wander, noise).
- :func:`real_ecgs`: real PTB-XL 100 Hz records from ``tests/fixtures/ptbxl`` or ``../shared/data/ptbxl``
  (``None`` when neither exists; tests then skip).
- :func:`real_ecgs_both_rates`: the 32 fixture records from their 100 Hz and their 500 Hz files, with their
  codes.
- :func:`fixture_folds`: the fixture prepared at 100 Hz, split by fold; :func:`audit`: a privacy audit against
  its training folds, with :func:`band_embedding` as the embedding when asked.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from midtecg.data.leads import WFDB_LEADS, to_model_leads, to_twelve_leads
from midtecg.evaluation.privacy import privacy_audit
from midtecg.evaluation.spectra import log_psd

FS = 100
BANK_RATES = (55.0, 70.0, 85.0, 100.0)
_REPO = Path(__file__).resolve().parents[1]
REAL_ROOTS = (_REPO / "tests" / "fixtures" / "ptbxl", _REPO.parent / "shared" / "data" / "ptbxl")


@functools.cache
def simulated_bank() -> np.ndarray:
    """(len(BANK_RATES), 12, 1000) float64 simulated ECGs in WFDB order, Einthoven-consistent."""
    import neurokit2 as nk

    cache = Path(tempfile.gettempdir()) / f"midtecg_test_eval_bank_{nk.__version__}_v1.npy"
    if cache.exists():
        try:
            return np.load(cache)
        except Exception:  # noqa: BLE001 - a corrupt cache is simply rebuilt
            pass
    bank = []
    for i, hr in enumerate(BANK_RATES):
        df = nk.ecg_simulate(duration=10, sampling_rate=FS, method="multileads", heart_rate=hr, random_state=100 + i)
        cols = {c.lower(): c for c in df.columns}
        a = np.stack([df[cols[name.lower()]].to_numpy() for name in WFDB_LEADS])
        bank.append(to_twelve_leads(to_model_leads(a)))
    bank = np.stack(bank)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, bank)
    os.replace(tmp, cache)
    return bank


def ecg_like(n: int, rng, *, noise_mv: float = 0.02, return_rates: bool = False):
    """``n`` ECG-like 12-lead records (n, 12, 1000) float32 mV drawn from one fixed distribution."""
    rng = np.random.default_rng(rng)
    bank = simulated_bank()
    which = rng.integers(0, bank.shape[0], n)
    shift = rng.integers(0, bank.shape[-1], n)
    t = np.arange(bank.shape[-1]) / FS
    x8 = to_model_leads(bank[which])  # (n, 8, L)
    idx = (np.arange(bank.shape[-1])[None, :] + shift[:, None]) % bank.shape[-1]
    x8 = np.take_along_axis(x8, idx[:, None, :], axis=-1)
    x8 = x8 * rng.normal(1.0, 0.1, (n, 8, 1)) * 0.6
    wander = 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4, (n, 8, 1)) * t + rng.uniform(0, 2 * np.pi, (n, 8, 1)))
    x8 = x8 + wander + noise_mv * rng.normal(size=x8.shape)
    x = to_twelve_leads(x8).astype(np.float32)
    return (x, np.asarray(BANK_RATES)[which]) if return_rates else x


@functools.cache
def _real_cached(max_records: int) -> np.ndarray | None:
    import wfdb

    for root in REAL_ROOTS:
        heads = sorted((root / "records100").glob("*/*_lr.hea")) if (root / "records100").is_dir() else []
        if heads:
            xs = [wfdb.rdsamp(str(h.with_suffix("")))[0].T for h in heads[:max_records]]
            return np.stack(xs).astype(np.float32)
    return None


def real_ecgs(max_records: int = 32) -> np.ndarray:
    """Real 100 Hz PTB-XL records (N, 12, 1000), fixture first; skips the calling test when none exist."""
    x = _real_cached(max_records)
    if x is None:
        pytest.skip("no PTB-XL records (tests/fixtures/ptbxl or ../shared/data/ptbxl)")
    return x


def real_ecgs_many(min_records: int) -> np.ndarray:
    """At least ``min_records`` real records (from the shared subset); skips when not available."""
    root = REAL_ROOTS[1] / "records100"
    heads = sorted(root.glob("*/*_lr.hea")) if root.is_dir() else []
    if len(heads) < min_records:
        pytest.skip(f"needs {min_records} PTB-XL records in ../shared/data/ptbxl/records100")
    return _many(tuple(str(h.with_suffix("")) for h in heads[:min_records]))


@functools.cache
def _many(paths: tuple[str, ...]) -> np.ndarray:
    import wfdb

    return np.stack([wfdb.rdsamp(p)[0].T for p in paths]).astype(np.float32)


@functools.cache
def _fixture_both_rates():
    import ast

    import pandas as pd
    import wfdb

    root = REAL_ROOTS[0]
    if not (root / "ptbxl_database.csv").is_file():
        return None
    db = pd.read_csv(root / "ptbxl_database.csv")
    db = db[[(root / f"{f}.hea").is_file() for f in db.filename_lr]]  # 32 of the 40 have a 100 Hz file
    x100 = np.stack([wfdb.rdsamp(str(root / f))[0].T for f in db.filename_lr]).astype(np.float32)
    x500 = np.stack([wfdb.rdsamp(str(root / f))[0].T for f in db.filename_hr]).astype(np.float32)
    return x100, x500, tuple(tuple(ast.literal_eval(c)) for c in db.scp_codes)


def real_ecgs_both_rates() -> tuple[np.ndarray, np.ndarray, tuple]:
    """The 32 fixture records that have both files, from their 100 Hz and 500 Hz files: (x100 (32, 12, 1000),
    x500 (32, 12, 5000), SCP codes per record); skips the calling test when the fixture is absent."""
    data = _fixture_both_rates()
    if data is None:
        pytest.skip("tests/fixtures/ptbxl is not present")
    return data


# ------------------------------------------------------------------------------ checks of the test data
def test_ecg_like_is_einthoven_consistent_and_ecg_scaled():
    x = ecg_like(6, 0)
    assert x.shape == (6, 12, 1000) and x.dtype == np.float32
    lead_i, ii, iii, avr, avl, avf = (x[:, k] for k in range(6))
    np.testing.assert_allclose(ii, lead_i + iii, atol=1e-5)
    np.testing.assert_allclose(avr + avl + avf, 0.0, atol=1e-5)
    assert 0.05 < float(x.std()) < 1.0
    assert np.isfinite(x).all()


def test_ecg_like_is_reproducible():
    np.testing.assert_array_equal(ecg_like(3, 7), ecg_like(3, 7))


@functools.cache
def _fixture_folds(cache_dir: str) -> dict[str, np.ndarray]:
    from midtecg.data.cache import load_prepared, prepare

    prepare(_REPO / "tests" / "fixtures" / "ptbxl", cache_dir, progress=False)
    data = load_prepared(cache_dir)
    fold = data.records["strat_fold"].to_numpy()
    x = np.asarray(data.signals, dtype=np.float32)
    return {"train": x[fold <= 8], "val": x[fold == 9], "test": x[fold == 10]}


def fixture_folds(tmp_path_factory) -> dict[str, np.ndarray]:
    """The 40-record fixture prepared at 100 Hz (once per session): ``{"train" (20 records, folds 1-8),
    "val" (10, fold 9), "test" (10, fold 10)}`` as (N, 12, 1000) float32 arrays (other patients per fold)."""
    return _fixture_folds(str(tmp_path_factory.getbasetemp() / "fixture_cache_100hz"))


def band_embedding(x) -> np.ndarray:
    """A cheap deterministic, amplitude-sensitive embedding: log Welch power per lead in 20 bands to 30 Hz."""
    _, s = log_psd(x, fs=FS, nperseg=128)
    return s[:, :, 1:41:2].reshape(len(x), -1)


def audit(folds, synth, *, embed=False, holdout=None, **kw):
    """:func:`~midtecg.evaluation.privacy.privacy_audit` of ``synth`` against ``folds["train"]`` (from
    :func:`fixture_folds`), the test fold as holdout unless ``holdout`` is given, with :func:`band_embedding`
    embeddings when ``embed``."""
    train, ho = folds["train"], folds["test"] if holdout is None else holdout
    emb = (
        {"train": band_embedding(train), "holdout": band_embedding(ho), "synth": band_embedding(synth)}
        if embed
        else None
    )
    return privacy_audit(train, ho, synth, embeddings=emb, **kw)
