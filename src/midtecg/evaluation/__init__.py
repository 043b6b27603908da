"""Evaluation of synthetic 12-lead ECGs (``method.md`` section 6).

Metric modules (import them directly; this package does not import them eagerly):
:mod:`~midtecg.evaluation.fidelity` (paired SNR / RMSE / PRD / |r|, inter-lead correlation error),
:mod:`~midtecg.evaluation.distributional` (Frechet distance, KID, precision / recall, MMD, Welch PSD distance),
:mod:`~midtecg.evaluation.floors` (set distances beside real-vs-real floors from many splits),
:mod:`~midtecg.evaluation.clinical` (delineation, intervals, heart-rate error),
:mod:`~midtecg.evaluation.alignment` (shift- and gain-invariant distance between records),
:mod:`~midtecg.evaluation.privacy_measures` (Euclidean DCR, NNDR, NNAA, membership-inference attacks),
:mod:`~midtecg.evaluation.privacy` (the privacy audit and its pass / fail / not_informative gate),
:mod:`~midtecg.evaluation.utility` (classifiers, TRTR / TSTR, low-data curves),
:mod:`~midtecg.evaluation.embeddings` (the embedding classifier) and
:mod:`~midtecg.evaluation.report` (the HTML / JSON report builder).

The suite that runs them all, :func:`evaluate`, and :func:`write_report` (rebuild the HTML from a saved
``evaluation.json``) live in :mod:`~midtecg.evaluation.suite` and are re-exported here lazily.
"""

from __future__ import annotations

__all__ = ["evaluate", "write_report", "build_report", "load_ecg_set", "pair_records", "ECGSet"]


def __getattr__(name: str):
    if name in __all__:
        from midtecg.evaluation import suite

        return getattr(suite, name)
    raise AttributeError(f"module 'midtecg.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
