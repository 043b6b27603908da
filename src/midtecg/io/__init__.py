"""Outputs people can open: WFDB records, ``.npz`` bundles and CSV files.

See :mod:`midtecg.io.wfdb_io` and :mod:`midtecg.io.arrays` for the formats.
"""

from midtecg.io.arrays import (
    LoadedNpz,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    load_npz,
    read_ecg_csv,
    save_npz,
    write_conditions_csv,
    write_ecg_csv,
    write_signals_csv,
    write_signals_long_csv,
)
from midtecg.io.wfdb_io import (
    DEFAULT_GAIN,
    read_wfdb_comments,
    read_wfdb_folder,
    read_wfdb_record,
    write_wfdb,
)

__all__ = [
    "DEFAULT_GAIN",
    "LoadedNpz",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_npz",
    "read_ecg_csv",
    "read_wfdb_comments",
    "read_wfdb_folder",
    "read_wfdb_record",
    "save_npz",
    "write_conditions_csv",
    "write_ecg_csv",
    "write_signals_csv",
    "write_signals_long_csv",
    "write_wfdb",
]
