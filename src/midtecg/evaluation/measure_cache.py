"""A disk cache of per-record measurements (delineation, rhythm), keyed by the content of the signals.

An evaluation measures the same real reference set again and again; :func:`cached_measure` stores the
measurement arrays of a set once and returns them on the next call with the same signals, sampling rate,
measurement name and version.

- **Key**: SHA-256 over the measurement name, its version, the sampling rate, the array's shape and dtype
  and the raw bytes of the signals (hashed record by record, so a memory-mapped cache is never copied
  whole). Any change to one sample gives a new key; bump ``version`` when the measurement code changes.
- **File**: ``<cache_dir>/<name>-<key[:32]>.npz`` (NumPy ``.npz``, no pickles), holding the arrays and a
  ``__meta__`` entry (the full key, name, version, shape), which is checked on reading.
- **Writing** is atomic: a temporary file in the same folder, then ``os.replace``; readers never see half
  a file, and two processes racing write the same content.
- **A corrupt or mismatching file** (truncated, unreadable, another key) is ignored with a
  :class:`MeasureCacheWarning` and the measurement is computed and written again: a cache file is never
  trusted beyond its checks.
- **Where**: ``cache_dir=None`` uses ``$MIDTECG_CACHE_DIR`` when set, else ``~/.cache/midtecg/measurements``;
  ``cache_dir=False`` disables the cache. A folder that cannot be created or written only costs a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["MeasureCacheWarning", "default_cache_dir", "signals_key", "cached_measure"]

ENV_VAR = "MIDTECG_CACHE_DIR"
_META = "__meta__"


class MeasureCacheWarning(UserWarning):
    """A measurement cache file was unusable (recomputed) or could not be written."""


def default_cache_dir() -> Path:
    """``$MIDTECG_CACHE_DIR`` if set (and not empty), else ``~/.cache/midtecg/measurements``."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "midtecg" / "measurements"


def signals_key(signals: np.ndarray, fs: float, name: str, version: str) -> str:
    """Hex SHA-256 of the name, version, sampling rate, shape, dtype and bytes of ``signals``."""
    arr = np.asarray(signals)
    h = hashlib.sha256()
    head = {"name": name, "version": str(version), "fs": float(fs), "shape": list(arr.shape), "dtype": arr.dtype.str}
    h.update(json.dumps(head, sort_keys=True).encode())
    rows = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(1, -1)
    for row in rows:  # record by record: bounded memory for memory-mapped inputs
        h.update(np.ascontiguousarray(row).data)
    return h.hexdigest()


def _check_name(name: str) -> str:
    if not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise ValueError(f"measurement name {name!r} must be a plain file-name part")
    return name


def _read(path: Path, key: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z[_META][()]))
            if meta.get("key") != key:
                raise ValueError(f"key {str(meta.get('key'))[:12]}... is not {key[:12]}...")
            return {k: z[k] for k in z.files if k != _META}
    except (FileNotFoundError, NotADirectoryError):  # not cached (yet)
        return None
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, it is not trusted
        warnings.warn(
            f"measurement cache {path} is unusable ({type(exc).__name__}: {exc}); recomputing",
            MeasureCacheWarning,
            stacklevel=3,
        )
        return None


def _write(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays, **{_META: np.array(json.dumps(meta))})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        warnings.warn(
            f"could not write the measurement cache {path} ({exc}); continuing without it",
            MeasureCacheWarning,
            stacklevel=3,
        )


def _as_arrays(result, name: str) -> dict[str, np.ndarray]:
    if not isinstance(result, dict):
        raise TypeError(f"{name}: compute() must return a dict of arrays, got {type(result).__name__}")
    out = {}
    for k, v in result.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise TypeError(f"{name}: value {k!r} is an object array; store numbers, booleans or strings")
        if k == _META:
            raise ValueError(f"{name}: {_META!r} is a reserved key")
        out[str(k)] = a
    return out


def cached_measure(
    name: str,
    signals: np.ndarray,
    fs: float,
    compute: Callable[[], dict],
    *,
    cache_dir: str | os.PathLike | None | bool = None,
    version: str,
) -> dict[str, np.ndarray]:
    """The arrays ``compute()`` returns for these signals, from the cache when it has them.

    ``compute``: a callable without arguments returning ``{key: array-like}`` (numbers, booleans or
    strings; no objects). ``cache_dir``: a folder, None for :func:`default_cache_dir`, False for no cache.
    The result is a dict of NumPy arrays (the same values whether computed or read back).
    """
    _check_name(name)
    if cache_dir is False:
        return _as_arrays(compute(), name)
    folder = default_cache_dir() if cache_dir is None or cache_dir is True else Path(cache_dir).expanduser()
    key = signals_key(signals, fs, name, version)
    path = folder / f"{name}-{key[:32]}.npz"
    hit = _read(path, key)
    if hit is not None:
        return hit
    arrays = _as_arrays(compute(), name)
    _write(
        path,
        arrays,
        {"key": key, "name": name, "version": str(version), "shape": list(np.shape(signals)), "fs": float(fs)},
    )
    return arrays
