"""The 71 PTB-XL SCP statements: codes, descriptions, multi-hot vectors and the benchmark label subsets.

The statement table is the official PTB-XL ``scp_statements.csv`` (v1.0.3, CC BY 4.0, see
``midtecg/assets/ATTRIBUTION.md``), shipped with the package and read with :mod:`importlib.resources`.

Conventions

- ``SCP_CODES``: the 71 codes in alphabetical order (Python string order: ``1AVB, 2AVB, 3AVB, ABQRS, ...,
  WPW``). Label vectors are float32 multi-hot vectors in that order.
- A record's labels are **every** key of its ``scp_codes`` dict, whatever the likelihood (0 included), as in
  the PTB-XL benchmark and SSSD-ECG.
- Label subsets (the PTB-XL benchmark tasks), each with its output columns in alphabetical order:

  ===============  ====  =============================================================================
  name             size  columns
  ===============  ====  =============================================================================
  all              71    every statement
  diagnostic       44    statements with ``diagnostic == 1``
  subdiagnostic    23    the ``diagnostic_subclass`` values of the diagnostic statements (a record has a
                         subclass when it has any diagnostic statement of that subclass)
  superdiagnostic  5     the ``diagnostic_class`` values: CD, HYP, MI, NORM, STTC (same rule)
  form             19    statements with ``form == 1``
  rhythm           12    statements with ``rhythm == 1``
  ===============  ====  =============================================================================

  Some statements are both diagnostic and form statements (e.g. NDT), so the subsets overlap.
"""

from __future__ import annotations

import ast
import difflib
import io
import math
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = [
    "SCP_CODES",
    "NUM_LABELS",
    "LABEL_SETS",
    "SUPERCLASSES",
    "scp_statements",
    "code_to_index",
    "index_to_code",
    "code_to_description",
    "description_to_code",
    "resolve_label",
    "labels_to_vector",
    "labels_matrix",
    "vector_to_labels",
    "label_set_codes",
    "aggregate_labels",
    "parse_scp_codes",
]


@lru_cache(maxsize=1)
def _statements() -> pd.DataFrame:
    text = resources.files("midtecg").joinpath("assets", "scp_statements.csv").read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text), index_col=0)
    table.index = table.index.astype(str).str.strip()
    table.index.name = "code"
    for flag in ("diagnostic", "form", "rhythm"):
        table[flag] = table[flag].fillna(0).astype(int)
    return table.sort_index()


def scp_statements() -> pd.DataFrame:
    """The official statement table (index: code, alphabetical), a copy that may be modified freely."""
    return _statements().copy()


SCP_CODES: tuple[str, ...] = tuple(_statements().index)
NUM_LABELS: int = len(SCP_CODES)
SUPERCLASSES: tuple[str, ...] = ("CD", "HYP", "MI", "NORM", "STTC")

_INDEX = {code: i for i, code in enumerate(SCP_CODES)}
_UPPER = {code.upper(): code for code in SCP_CODES}
_DESCRIPTIONS: dict[str, str] = {code: str(d).strip() for code, d in _statements()["description"].items()}
_BY_DESCRIPTION = {d.lower(): code for code, d in _DESCRIPTIONS.items()}


def _build_label_sets() -> dict[str, tuple[str, ...]]:
    table = _statements()
    diag = table[table["diagnostic"] == 1]
    return {
        "all": SCP_CODES,
        "diagnostic": tuple(diag.index),
        "subdiagnostic": tuple(sorted(diag["diagnostic_subclass"].dropna().astype(str).unique())),
        "superdiagnostic": tuple(sorted(diag["diagnostic_class"].dropna().astype(str).unique())),
        "form": tuple(table.index[table["form"] == 1]),
        "rhythm": tuple(table.index[table["rhythm"] == 1]),
    }


LABEL_SETS: dict[str, tuple[str, ...]] = _build_label_sets()
"""Label subset name -> its output column names (codes, subclasses or classes), alphabetical."""


def code_to_index(code: str) -> int:
    """Column of ``code`` (any case, or a description) in the 71-vector."""
    return _INDEX[resolve_label(code)]


def index_to_code(index: int) -> str:
    """Code of column ``index`` (0..70)."""
    if not 0 <= int(index) < NUM_LABELS:
        raise IndexError(f"label index {index} out of range 0..{NUM_LABELS - 1}")
    return SCP_CODES[int(index)]


def code_to_description(code: str) -> str:
    """The statement's short description, e.g. ``'AFIB' -> 'atrial fibrillation'``."""
    return _DESCRIPTIONS[resolve_label(code)]


def description_to_code(description: str) -> str:
    """The code of a statement description (case-insensitive, surrounding spaces ignored)."""
    key = description.strip().lower()
    if key not in _BY_DESCRIPTION:
        raise ValueError(_unknown_message(description))
    return _BY_DESCRIPTION[key]


def _unknown_message(text: str) -> str:
    key = text.strip()
    close = difflib.get_close_matches(key.upper(), list(_UPPER), n=3, cutoff=0.5)
    close += [
        _BY_DESCRIPTION[d] for d in difflib.get_close_matches(key.lower(), list(_BY_DESCRIPTION), n=3, cutoff=0.6)
    ]
    seen: list[str] = []
    for code in close:
        code = _UPPER.get(code, code)
        if code not in seen:
            seen.append(code)
    hint = (
        "did you mean " + ", ".join(f"{c} ({_DESCRIPTIONS[c]})" for c in seen[:4]) + "?"
        if seen
        else f"expected one of the {NUM_LABELS} PTB-XL SCP codes (see midtecg.data.labels.SCP_CODES)"
    )
    return f"unknown SCP statement {text!r}; {hint}"


def resolve_label(text: str) -> str:
    """Return the SCP code named by ``text``: a code in any case (``'afib'``) or a description
    (``'atrial fibrillation'``). Unknown text raises ``ValueError`` with the closest matches."""
    if not isinstance(text, str):
        raise ValueError(f"an SCP statement must be a string, got {text!r}")
    key = text.strip()
    if key.upper() in _UPPER:
        return _UPPER[key.upper()]
    if key.lower() in _BY_DESCRIPTION:
        return _BY_DESCRIPTION[key.lower()]
    raise ValueError(_unknown_message(text))


def labels_to_vector(codes: Iterable[str] | Mapping[str, float] | str) -> np.ndarray:
    """Multi-hot float32 vector (71,) from codes or descriptions (a dict's keys; a single string is one code).

    Every listed statement is set to 1 whatever its likelihood. Unknown statements raise ``ValueError``.
    """
    if isinstance(codes, str):
        codes = [codes]
    vector = np.zeros(NUM_LABELS, dtype=np.float32)
    for code in codes:
        vector[_INDEX[resolve_label(code)]] = 1.0
    return vector


def labels_matrix(rows: Iterable[Iterable[str] | Mapping[str, float] | str]) -> np.ndarray:
    """Multi-hot float32 matrix (N, 71): row i is :func:`labels_to_vector` of ``rows[i]`` (the one implementation
    of multi-hot labels; a record table's SCP columns, a generation request's labels)."""
    rows = list(rows)
    matrix = np.zeros((len(rows), NUM_LABELS), dtype=np.float32)
    for i, codes in enumerate(rows):
        matrix[i] = labels_to_vector(codes)
    return matrix


def vector_to_labels(vector, threshold: float = 0.5) -> list[str]:
    """Codes whose entry in a (71,) vector is at least ``threshold`` (inverse of :func:`labels_to_vector`)."""
    vector = np.asarray(vector)
    if vector.shape != (NUM_LABELS,):
        raise ValueError(f"expected a label vector of shape ({NUM_LABELS},), got {vector.shape}")
    return [SCP_CODES[i] for i in np.flatnonzero(vector >= threshold)]


def label_set_codes(name: str) -> tuple[str, ...]:
    """Output column names of label subset ``name`` (see the module docstring)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ValueError(f"unknown label set {name!r}; expected one of {', '.join(LABEL_SETS)}") from None


@cache
def _aggregation_matrix(name: str) -> np.ndarray:
    """(71, k) 0/1 matrix: entry (i, j) = 1 when statement i counts towards output column j."""
    columns = label_set_codes(name)
    table = _statements()
    matrix = np.zeros((NUM_LABELS, len(columns)), dtype=np.float32)
    col = {c: j for j, c in enumerate(columns)}
    for i, code in enumerate(SCP_CODES):
        if name in ("subdiagnostic", "superdiagnostic"):
            if table.at[code, "diagnostic"] != 1:
                continue
            group = table.at[code, "diagnostic_subclass" if name == "subdiagnostic" else "diagnostic_class"]
            if isinstance(group, str) and group in col:
                matrix[i, col[group]] = 1.0
        elif code in col:
            matrix[i, col[code]] = 1.0
    return matrix


def aggregate_labels(multi_hot, name: str) -> np.ndarray:
    """Map 71-statement multi-hot labels (N, 71) (or (71,)) to label subset ``name`` -> (N, k) float32.

    ``all``, ``diagnostic``, ``form`` and ``rhythm`` select columns; ``subdiagnostic`` and
    ``superdiagnostic`` set a column to 1 when any diagnostic statement of that subclass / class is set
    (values above 0.5 count as set). Records may end with an all-zero row (e.g. no rhythm statement).
    """
    y = np.asarray(multi_hot, dtype=np.float32)
    if y.shape[-1] != NUM_LABELS:
        raise ValueError(f"expected labels with {NUM_LABELS} columns on the last axis, got shape {y.shape}")
    matrix = _aggregation_matrix(name)
    return ((y >= 0.5).astype(np.float32) @ matrix > 0).astype(np.float32)


def parse_scp_codes(text, record: object = None) -> dict[str, float]:
    """Parse a PTB-XL ``scp_codes`` cell such as ``"{'NORM': 100.0, 'SR': 0.0}"`` safely.

    Uses :func:`ast.literal_eval` (never ``eval``). Returns ``{code: likelihood}`` with codes as in
    ``SCP_CODES``. A blank cell, text that is not a dict literal, non-numeric likelihoods and unknown codes
    raise :class:`DataError` naming ``record``. ``{}`` (no statement) is accepted. A dict is returned as is
    after validation, so already-parsed cells can be passed too.
    """
    where = record if record is not None else "scp_codes"
    if isinstance(text, Mapping):
        parsed = dict(text)
    else:
        if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
            raise DataError(where, "scp_codes is empty (expected a dict such as {'NORM': 100.0})")
        try:
            parsed = ast.literal_eval(str(text).strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise DataError(where, f"malformed scp_codes {str(text)[:80]!r} ({type(exc).__name__})") from None
        if not isinstance(parsed, dict):
            raise DataError(where, f"scp_codes must be a dict literal, got {str(text)[:80]!r}")
    out: dict[str, float] = {}
    for code, likelihood in parsed.items():
        if not isinstance(code, str) or code.strip() not in _INDEX:
            hint = _unknown_message(str(code)) if isinstance(code, str) else f"non-string SCP code {code!r}"
            raise DataError(where, hint)
        if isinstance(likelihood, bool) or not isinstance(likelihood, (int, float)):
            raise DataError(where, f"likelihood of {code} must be a number, got {likelihood!r}")
        out[code.strip()] = float(likelihood)
    return out
