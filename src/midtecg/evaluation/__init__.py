"""Evaluation of synthetic 12-lead ECGs (``method.md`` section 6).

The suite, :func:`evaluate` (configured by :class:`EvaluationConfig`), runs every stage and gives one verdict per
axis; :func:`write_report` rebuilds the HTML from a saved ``evaluation.json``. They are re-exported here lazily.

How the suite is cut: :mod:`~midtecg.evaluation.inputs` (reading ECG sets, pairing),
:mod:`~midtecg.evaluation.config` (the configuration), :mod:`~midtecg.evaluation.stages` (one function per
stage), :mod:`~midtecg.evaluation.verdicts` (verdicts from floors), :mod:`~midtecg.evaluation.sections` (the
page; its axes' sections in :mod:`~midtecg.evaluation.realism_sections` and
:mod:`~midtecg.evaluation.use_sections`, their shared pieces in :mod:`~midtecg.evaluation.section_parts`) and
:mod:`~midtecg.evaluation.report` (a generic HTML / JSON report builder).

Metric modules: :mod:`~midtecg.evaluation.fidelity` (paired SNR / RMSE / PRD / |r|, inter-lead correlation
error), :mod:`~midtecg.evaluation.distributional` (Frechet distance, precision / recall, the real-vs-real floor
of any metric), :mod:`~midtecg.evaluation.kernel_distances` (KID, MMD), :mod:`~midtecg.evaluation.spectra` (Welch
PSD distance), all on rows from :mod:`~midtecg.evaluation.feature_rows`,
:mod:`~midtecg.evaluation.set_distances` (those distances beside real-vs-real floors from many splits),
:mod:`~midtecg.evaluation.floors` (per-record measures compared by KS with floors),
:mod:`~midtecg.evaluation.rhythm` (RR regularity, beat consistency, P waves),
:mod:`~midtecg.evaluation.clinical` (delineation, intervals, heart-rate error; built on ``beats``,
``delineation`` and ``ecg_measures``, cached by ``measure_cache``),
:mod:`~midtecg.evaluation.alignment` (shift- and gain-invariant distance between records),
:mod:`~midtecg.evaluation.privacy_measures` (Euclidean DCR, NNDR, NNAA, membership-inference attacks),
:mod:`~midtecg.evaluation.privacy` (the privacy audit), :mod:`~midtecg.evaluation.privacy_gate` (its pass / fail /
not_informative gate),
:mod:`~midtecg.evaluation.classifier` (the ECG classifier: training, sliding-window prediction),
:mod:`~midtecg.evaluation.auc` (macro ROC-AUC and its bootstrap interval),
:mod:`~midtecg.evaluation.utility` (TRTR / TSTR, low-data curves) and
:mod:`~midtecg.evaluation.embeddings` (the embedding classifier).
"""

from __future__ import annotations

from midtecg.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "suite": ("evaluate", "write_report", "read_evaluation"),
        "config": ("EvaluationConfig",),
        "inputs": ("load_ecg_set", "pair_records", "ECGSet"),
    },
)
