"""Turn record tables into the model's condition groups.

A generator is conditioned on the 71 SCP labels plus, optionally, demographics:

- ``labels``: the multi-hot labels alone (SSSD-ECG), embedded 71 -> 128;
- ``age`` / ``sex``: the MIDT-ECG paper mode, labels 71 -> 96 plus the age one-hot over 6 bins or the
  sex one-hot over 2, embedded -> 32;
- ``numeric``: labels 71 -> 96 plus any subset of age, sex, height, weight, BMI and heart rate, each
  standardised with training-set statistics, followed by a 0/1 mask that says which values are present
  (a missing value is 0 with mask 0, never a silent zero with mask 1), embedded -> 32.

The encoder is a small value object: it is built from the training records, stored as JSON in every
checkpoint, and applied unchanged at sampling time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from midtecg.data.condition_groups import MODES, NUMERIC_FIELDS, ConditionGroup
from midtecg.data.demographics import age_bin_onehot, sex_onehot
from midtecg.data.labels import SCP_CODES


@dataclass
class ConditionEncoder:
    mode: str = "labels"
    numeric_fields: tuple[str, ...] = NUMERIC_FIELDS
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown condition mode {self.mode!r}; expected one of {', '.join(MODES)}")
        self.numeric_fields = tuple(self.numeric_fields)
        unknown = sorted(set(self.numeric_fields) - set(NUMERIC_FIELDS))
        if unknown:
            raise ValueError(f"unknown numeric condition field(s) {unknown}; expected a subset of {NUMERIC_FIELDS}")
        if self.mode == "numeric" and not self.numeric_fields:
            raise ValueError("numeric condition mode needs at least one field")

    @classmethod
    def fit(cls, records: pd.DataFrame, mode: str = "labels", numeric_fields=NUMERIC_FIELDS) -> ConditionEncoder:
        """Build an encoder whose standardisation statistics come from ``records`` (the training set)."""
        encoder = cls(mode=mode, numeric_fields=tuple(numeric_fields))
        if mode == "numeric":
            values = numeric_values(records, encoder.numeric_fields)
            for name in encoder.numeric_fields:
                column = values[name].to_numpy(dtype=np.float64)
                present = column[np.isfinite(column)]
                encoder.mean[name] = float(present.mean()) if present.size else 0.0
                std = float(present.std()) if present.size > 1 else 1.0
                encoder.std[name] = std if std > 0 else 1.0
        return encoder

    @property
    def groups(self) -> tuple[ConditionGroup, ...]:
        if self.mode == "labels":
            return (ConditionGroup("labels", len(SCP_CODES), 128),)
        extra = {"age": 6, "sex": 2, "numeric": 2 * len(self.numeric_fields)}[self.mode]
        name = "demographics" if self.mode == "numeric" else self.mode
        return (ConditionGroup("labels", len(SCP_CODES), 96), ConditionGroup(name, extra, 32))

    def encode(self, records: pd.DataFrame) -> dict[str, np.ndarray]:
        """Condition arrays, float32 (N, size) per group, for the rows of ``records``."""
        missing = [code for code in SCP_CODES if code not in records.columns]
        if missing:
            raise ValueError(f"records lack label columns {missing[:5]}{'...' if len(missing) > 5 else ''}")
        out = {"labels": records[list(SCP_CODES)].to_numpy(dtype=np.float32)}
        if self.mode == "age":
            out["age"] = age_bin_onehot(_column(records, "age")).astype(np.float32)
        elif self.mode == "sex":
            out["sex"] = sex_onehot(_column(records, "sex")).astype(np.float32)
        elif self.mode == "numeric":
            values = numeric_values(records, self.numeric_fields)
            fields = self.numeric_fields
            z = np.stack([(values[n].to_numpy(np.float64) - self.mean[n]) / self.std[n] for n in fields], 1)
            mask = np.isfinite(z)
            out["demographics"] = np.concatenate([np.where(mask, z, 0.0), mask], axis=1).astype(np.float32)
        return out

    def to_dict(self) -> dict:
        return {"mode": self.mode, "numeric_fields": list(self.numeric_fields), "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict) -> ConditionEncoder:
        return cls(
            mode=data["mode"],
            numeric_fields=tuple(data.get("numeric_fields", NUMERIC_FIELDS)),
            mean=dict(data.get("mean", {})),
            std=dict(data.get("std", {})),
        )


def _column(records: pd.DataFrame, name: str) -> np.ndarray:
    if name not in records.columns:
        return np.full(len(records), np.nan)
    return pd.to_numeric(records[name], errors="coerce").to_numpy(dtype=np.float64)


def numeric_values(records: pd.DataFrame, fields) -> pd.DataFrame:
    """The numeric demographic fields of ``records``; BMI is derived from height and weight."""
    out = {}
    for name in fields:
        if name == "bmi" and "bmi" not in records.columns:
            height_m = _column(records, "height") / 100.0
            out[name] = _column(records, "weight") / height_m**2
        else:
            out[name] = _column(records, name)
    return pd.DataFrame(out, index=records.index)
