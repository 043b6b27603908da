"""What ``midtecg generate`` writes, importable without numpy, pandas or torch (the command line checks a request
against it at once; :mod:`midtecg.generate` writes it).

A generation folder holds ``wfdb/<name>.hea|.dat``, ``csv/<name>.csv``, ``plots/<name>.png|.pdf``, ``ecgs.npz``
and ``conditions.csv`` (one row per ECG, the index of the others).
"""

OUTPUT_FORMATS = ("wfdb", "npz", "csv", "png", "pdf")
# The entries of a generation folder, in the order they are moved into place (the index last).
OUTPUT_ENTRIES = ("wfdb", "csv", "plots", "ecgs.npz", "conditions.csv")


def check_formats(formats) -> tuple[str, ...]:
    """The requested output formats (a sequence, or a comma-separated string), else ``ValueError``."""
    if isinstance(formats, str):
        formats = [f.strip().lower() for f in formats.split(",") if f.strip()]
    formats = tuple(formats)
    unknown = [f for f in formats if f not in OUTPUT_FORMATS]
    if unknown or not formats:
        raise ValueError(
            f"unknown output format(s) {unknown or list(formats)}; choose from {', '.join(OUTPUT_FORMATS)}"
        )
    return formats
