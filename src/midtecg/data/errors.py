"""Errors and warnings raised by the data pipeline.

Every problem with an input record is reported with a :class:`DataError` (a ``ValueError``) whose message
starts with the record it is about, e.g. ``"PTB-XL ecg_id 17: lead V3 is flat"``. Problems that do not stop
the pipeline (a value treated as missing, a flat lead kept on purpose) are reported with a
:class:`DataWarning` that names the record(s) the same way.
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data. ``str(err)`` is ``"<record>: <problem>"``.

    ``DataError(record, problem)`` is the normal form; ``DataError(problem)`` (no record) is accepted for
    problems that are not about one record (for example a missing metadata file). The parts are kept as
    ``err.record`` (``None`` when absent) and ``err.problem``.
    """

    def __init__(self, record: object, problem: str | None = None):
        if problem is None:
            record, problem = None, str(record)
        self.record = record
        self.problem = problem
        super().__init__(problem if record is None else f"{record}: {problem}")

    def __reduce__(self):  # keep pickling (multiprocessing) working with the two-argument signature
        return (type(self), (self.record, self.problem))


class DataWarning(UserWarning):
    """A data problem that was handled (value set to missing, flat lead kept, record skipped)."""


class MissingRecordError(DataError):
    """A record's files (header or signal file) do not exist; ``prepare(on_missing="skip")`` skips these."""
