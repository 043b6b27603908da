"""Validation of signal arrays, for every reader, writer and metric: one place says what a signal array is.

Signals are float millivolts ``(N, leads, L)`` (``ndim=3``); feature arrays ``(N, D)`` pass with ``ndim=2``.
**Integer arrays are refused**: integers are almost always digital units (PTB-XL's ``.dat`` files hold
microvolts as int16), and reading them as millivolts silently multiplies every amplitude by 1000. Convert them
with their unit first (``x / 1000`` for microvolts, or divide by the record's ADC gain).
"""

from __future__ import annotations

import numpy as np

from midtecg.data.errors import DataError

__all__ = ["check_signals"]


def check_signals(
    x,
    name: str = "signals",
    *,
    ndim: int | None = 3,
    n_leads: int | None = None,
    min_records: int = 1,
    allow_nan: bool = False,
    dtype=np.float32,
) -> np.ndarray:
    """Validate an array of signals (or features) and return it (as ``dtype``; ``None`` keeps a float dtype).

    ``ndim``: required number of dimensions (3 for ``(N, leads, L)``, 2 for ``(N, D)``, ``None`` for either).
    ``n_leads``: required size of axis 1. Raises :class:`DataError` naming ``name`` for: something that is not
    an array of real floats (integers and booleans included, see the module docstring), a wrong shape, an empty
    axis, fewer than ``min_records`` rows, or NaN / inf (unless ``allow_nan``; the message names the first
    record that has one and how many values are bad). No copy when the input already fits.
    """
    try:
        arr = np.asarray(x)
    except Exception as error:  # noqa: BLE001 - ragged lists and the like
        raise DataError(name, f"cannot be read as an array ({error})") from None
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        raise DataError(
            name,
            f"samples are integers ({arr.dtype}), not float millivolts; integer samples are "
            "usually digital units (e.g. int16 microvolts): convert them with their unit first "
            "(x / 1000 for microvolts, or divide by the ADC gain)",
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(name, f"expected real float millivolts, got dtype {arr.dtype}")
    allowed = (2, 3) if ndim is None else (ndim,)
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        hint = " (N, leads, samples)" if 3 in allowed else " (N, features)"
        raise DataError(name, f"expected a {want} array{hint}, got shape {arr.shape}")
    if arr.shape[0] < min_records:
        raise DataError(name, f"needs at least {min_records} record(s), got {arr.shape[0]}")
    if n_leads is not None and arr.shape[1] != n_leads:
        raise DataError(name, f"expected {n_leads} leads on axis 1, got shape {arr.shape}")
    if any(size == 0 for size in arr.shape[1:]):
        raise DataError(name, f"empty axis in shape {arr.shape}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if not allow_nan:
        bad = ~np.isfinite(arr)
        if bad.any():
            per_record = bad.reshape(arr.shape[0], -1).sum(axis=1)
            first = int(np.flatnonzero(per_record)[0])
            raise DataError(
                name,
                f"record {first}: NaN or infinite values ({int(bad.sum())} in total, "
                f"{int(np.isnan(arr).sum())} NaN, in {int((per_record > 0).sum())} record(s))",
            )
    return arr
