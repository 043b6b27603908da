"""The evaluation suite: every measure of ``method.md`` section 6 for one synthetic set, a verdict per axis,
one JSON and one HTML page.

::

    from midtecg.evaluation import EvaluationConfig, evaluate, write_report

    result = evaluate(("data/ptbxl-100hz", "test"), "out/generated/ecgs.npz", out_dir="out/eval",
                      config=EvaluationConfig(threads=1))
    result["verdicts"]["fidelity"]["verdict"]    # "close" / "far" / "not_informative" / "not_measured"
    write_report("out/eval/evaluation.json", "out/eval/report-again.html")  # the `midtecg report` command

Inputs (any form :func:`~midtecg.evaluation.inputs.load_ecg_set` reads):

* **real**: the real records the synthetic ones are compared with (normally the test fold);
* **synth**: the synthetic ECGs;
* **train**: the generator's training records (the embedding classifier, privacy, utility); by default the
  train split of ``real``'s cache;
* **holdout**: real records the generator never saw, the privacy audit's reference; by default ``real``.
  Privacy is skipped when the holdout shares an ``ecg_id`` with ``train``;
* **utility_synth**: the synthetic records the utility classifiers train on (default ``synth``).

Stages (each timed, ``result["timings"]`` in seconds; see :mod:`~midtecg.evaluation.stages`): ``fidelity``
(paired metrics, only for records that pair by ``ecg_id``), ``distributional`` (signal space), ``classifier``
and ``embeddings`` (Frechet distance, KID, precision / recall), ``labels`` (label adherence, TRTS),
``rhythm``, ``clinical``, ``privacy`` and, when asked, ``utility``. ``result["verdicts"]`` holds one verdict
per axis (:mod:`~midtecg.evaluation.verdicts` says how they are decided); the report opens with them.

Speed (``benchmarks/evaluate_speed.py``): see the README's evaluation section for the measured timings.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from midtecg.data.errors import DataError
from midtecg.evaluation import stages as st
from midtecg.evaluation.config import EvaluationConfig
from midtecg.evaluation.inputs import ECGSet, check_compatible, default_train_source, load_ecg_set, pair_records
from midtecg.evaluation.verdicts import headline, verdicts

__all__ = ["evaluate", "write_report", "read_evaluation", "FORMAT", "FORMAT_VERSION", "JSON_NAME", "HTML_NAME"]

FORMAT = "midtecg-evaluation"
FORMAT_VERSION = 2
JSON_NAME = "evaluation.json"
HTML_NAME = "report.html"


class _Stages:
    """Runs, times and (with ``on_error="record"``) contains the failure of each stage."""

    def __init__(self, progress: bool, on_error: str):
        self.progress = progress
        self.on_error = on_error
        self.timings: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.t0 = time.perf_counter()

    def log(self, text: str) -> None:
        if self.progress:
            print(f"[midtecg evaluate] {text}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def __call__(self, name: str, catch: bool = True):
        self.log(f"{name} ...")
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - recorded, the other stages still run
            self.timings[name] = round(time.perf_counter() - start, 3)
            if self.on_error == "raise" or not catch:
                raise
            message = f"{type(exc).__name__}: {exc}"
            self.errors[name] = message + "\n" + "".join(traceback.format_exc(limit=6))
            self.log(f"{name} FAILED after {self.timings[name]:.1f} s: {message}")
        else:
            self.timings[name] = round(time.perf_counter() - start, 3)
            self.log(f"{name} done in {self.timings[name]:.1f} s")


@contextlib.contextmanager
def _thread_limits(threads: int | None):
    if threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads)):
            yield
    finally:
        torch.set_num_threads(before)


def _load(real, synth, train, holdout, utility_synth, config: EvaluationConfig, notes: list[str]) -> dict:
    """Every input as an :class:`ECGSet` at one rate, checked for compatibility, limited and paired."""
    if synth is None:
        raise DataError("synth", "no synthetic ECGs given")
    if real is None:
        raise DataError("real", "no real ECGs given")
    train_source = train if train is not None else default_train_source(real)
    real_set = load_ecg_set(real, role="real", fs=config.fs, notes=notes)
    synth_set = load_ecg_set(synth, role="synth", notes=notes)
    rate = real_set.fs or config.fs or synth_set.fs
    if rate is None:
        rate = 100.0
        notes.append("no sampling rate given with the arrays: assumed 100 Hz")

    def other(source, role: str) -> ECGSet:
        s = load_ecg_set(source, role=role, notes=notes)
        s.fs = s.fs or rate
        check_compatible(real_set, s, role)
        return s

    real_set.fs = real_set.fs or rate
    synth_set.fs = synth_set.fs or rate
    check_compatible(real_set, synth_set, "synth")
    sets = {
        "real": real_set,
        "synth": synth_set,
        "train": other(train_source, "train") if train_source is not None else None,
        "holdout": other(holdout, "holdout") if holdout is not None else real_set,
        "utility_synth": other(utility_synth, "utility synth")
        if config.utility and utility_synth is not None
        else synth_set,
    }
    pairing = pair_records(real_set, synth_set)
    if config.limit is not None:
        keep_real = np.arange(min(config.limit, len(real_set)))
        keep_synth = (
            np.sort(pairing["synth_index"][np.isin(pairing["real_index"], keep_real)])
            if pairing["method"]
            else np.arange(min(config.limit, len(synth_set)))
        )
        if len(keep_synth) < len(synth_set) or len(keep_real) < len(real_set):
            notes.append(f"limited to the first {len(keep_real)} real record(s) and {len(keep_synth)} synthetic one(s)")
        sets["real"], sets["synth"] = real_set.subset(keep_real), synth_set.subset(keep_synth)
        if holdout is None:
            sets["holdout"] = sets["real"]
        if sets["utility_synth"] is synth_set:
            sets["utility_synth"] = sets["synth"]
        pairing = pair_records(sets["real"], sets["synth"])
    sets["pairing"] = pairing
    return sets


def evaluate(
    real, synth, *, train=None, holdout=None, utility_synth=None, out_dir=None, config: EvaluationConfig | None = None
) -> dict:
    """Evaluate synthetic ECGs against real ones (see the module docstring); returns the JSON-ready result
    (the content of ``out_dir/evaluation.json``; nothing is written when ``out_dir`` is None)."""
    config = config or EvaluationConfig()
    with _thread_limits(config.threads):
        return _evaluate(real, synth, train, holdout, utility_synth, out_dir, config)


def _evaluate(real, synth, train, holdout, utility_synth, out_dir, config: EvaluationConfig) -> dict:
    from midtecg import __version__
    from midtecg.evaluation.report import to_jsonable, write_json
    from midtecg.evaluation.sections import add_timings, build_report

    started = _dt.datetime.now().astimezone().replace(microsecond=0)
    notes: list[str] = []
    stages = _Stages(config.progress, config.on_error)
    result: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": started.isoformat(),
        "midtecg_version": __version__,
    }
    with stages("load", catch=False):  # bad inputs always raise
        sets = _load(real, synth, train, holdout, utility_synth, config, notes)
    real_set, synth_set, train_set, holdout_set = sets["real"], sets["synth"], sets["train"], sets["holdout"]
    pairing = sets["pairing"]
    if pairing["reason"]:
        notes.append(f"pairing: {pairing['reason']}")
    do_paired = config.paired and pairing["method"] is not None
    if not config.paired:
        notes.append("paired metrics switched off")
    result["inputs"] = {
        "real": real_set.describe(),
        "synth": synth_set.describe(),
        "train": train_set.describe() if train_set is not None else None,
        "holdout": holdout_set.describe() if holdout is not None else "real",
        "utility_synth": sets["utility_synth"].describe() if utility_synth is not None else "synth",
    }
    result["pairing"] = {k: pairing[k] for k in ("method", "n_pairs", "reason", "synth_index", "real_index")}
    result["settings"] = config.to_dict()

    examples: list[dict] = []
    if do_paired:
        with stages("fidelity"):
            result["fidelity"] = st.fidelity_stage(real_set, synth_set, pairing, config.seed)
            examples = st.pick_examples(
                real_set, synth_set, pairing, result["fidelity"], config.n_examples, config.seed
            )
    with stages("distributional"):
        result["distributional"] = st.distributional_stage(real_set, synth_set, config)

    real_cache = config.measure_cache_dir if config.measure_cache else False
    emb: dict[str, np.ndarray] = {}
    if config.embeddings:
        classifier_dir = config.classifier_dir or (Path(out_dir) / "classifier" if out_dir is not None else None)
        model = None
        with stages("classifier"):
            model, info = st.embedding_classifier(train_set, classifier_dir, config.classifier, config.progress, notes)
            result["embedding"] = {"classifier": info}
        if model is not None:
            with stages("embeddings"):
                wanted = {"real": real_set, "synth": synth_set}
                if config.privacy and train_set is not None:
                    wanted.update(train=train_set, holdout=holdout_set)
                emb = st.embed_sets(model, wanted, cache_dir=real_cache, cached=("real", "train", "holdout"))
                result["embedding"].update(st.embedding_stage(emb, config))
            with stages("labels"):
                result["labels"] = st.label_adherence_stage(model, real_set, synth_set, config.seed)
    else:
        notes.append("embedding metrics and label adherence switched off")

    # The real side's measurements are kept (keyed by content) for the next evaluation; the synthetic side's
    # only for this one, where rhythm and clinical share one pass over the records.
    with tempfile.TemporaryDirectory(prefix="midtecg-measures-") as synth_cache:
        caches = (real_cache, synth_cache)
        if config.rhythm:
            with stages("rhythm"):
                result["rhythm"] = st.rhythm_stage(real_set, synth_set, config, caches)
        if config.clinical:
            with stages("clinical"):
                empty = {"real_index": np.zeros(0, np.int64), "synth_index": np.zeros(0, np.int64)}
                result["clinical"] = st.clinical_stage(
                    real_set, synth_set, pairing if do_paired else empty, config, caches
                )
    if config.privacy:
        reason = st.privacy_blocker(train_set, holdout_set, synth_set)
        if reason:
            notes.append(f"privacy skipped: {reason}")
            result["privacy"] = {"skipped": reason}
        else:
            with stages("privacy"):
                result["privacy"] = {
                    **st.privacy_stage(train_set, holdout_set, synth_set, emb, config.seed, notes),
                    "holdout": "real" if holdout is None else "holdout",
                }
    if config.utility:
        missing = [
            name
            for name, s in (("train", train_set), ("synth", sets["utility_synth"]), ("real", real_set))
            if s is None or s.labels71() is None
        ]
        if missing:
            notes.append(f"utility skipped: no SCP labels for {', '.join(missing)}")
            result["utility"] = {"skipped": f"no SCP labels for {', '.join(missing)}"}
        else:
            with stages("utility"):
                result["utility"] = st.utility_stage(train_set, sets["utility_synth"], real_set, config)

    result["notes"] = notes
    result["errors"] = stages.errors
    plain = to_jsonable(result)
    plain["verdicts"] = to_jsonable(verdicts(plain))
    plain["summary"] = to_jsonable(headline(plain))
    plain["timings"] = dict(stages.timings)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with stages("report"):
            report = build_report(plain, examples=examples, title=config.title)
        plain["timings"] = dict(stages.timings)
        plain["timings"]["total"] = round(time.perf_counter() - stages.t0, 3)
        add_timings(report, plain["timings"])
        report.write_html(out / HTML_NAME)
        write_json(out / JSON_NAME, plain)
        stages.log(f"wrote {out / JSON_NAME} and {out / HTML_NAME}")
    else:
        plain["timings"]["total"] = round(time.perf_counter() - stages.t0, 3)
    stages.log(f"total {plain['timings']['total']:.1f} s")
    return plain


def read_evaluation(path) -> dict:
    """A saved ``evaluation.json`` (a file or the folder holding it), checked to be one of midtecg's."""
    path = Path(path)
    if path.is_dir():
        path = path / JSON_NAME
    if not path.is_file():
        raise FileNotFoundError(f"evaluation JSON not found: {path}")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(result, dict) or result.get("format") != FORMAT:
        found = result.get("format") if isinstance(result, dict) else None
        raise ValueError(f"{path}: not a midtecg evaluation (format {found!r})")
    version = result.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path}: evaluation format version {version!r} is not one this midtecg reads")
    if version < FORMAT_VERSION:
        raise ValueError(f"{path}: written by an older midtecg (format {version}); evaluate again to get verdicts")
    for key, kind in (
        ("verdicts", dict),
        ("inputs", dict),
        ("pairing", dict),
        ("timings", dict),
        ("notes", list),
        ("errors", dict),
    ):
        if not isinstance(result.get(key), kind):
            raise ValueError(f"{path}: {key!r} is missing or not a {kind.__name__}; the file is damaged")
    for axis, verdict in result["verdicts"].items():
        if not isinstance(verdict, dict) or not isinstance(verdict.get("verdict"), str):
            raise ValueError(f"{path}: the {axis!r} verdict is damaged")
    return result


def write_report(evaluation_json, out_html, *, title: str | None = None, overwrite: bool = False) -> Path:
    """Rebuild the HTML report from a saved ``evaluation.json`` (the ``midtecg report`` command).

    The example ECG plots need the raw signals and are left out; the page says so. An existing file is
    refused unless ``overwrite`` (the rebuilt page has no examples, so it must not silently replace the one
    ``evaluate`` wrote). Returns the path written.
    """
    from midtecg.evaluation.sections import add_timings, build_report

    source = Path(evaluation_json)
    out = Path(out_html)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another file or pass overwrite=True (--overwrite)")
    result = read_evaluation(source)
    report = build_report(result, examples=None, title=title)
    report.add_summary("rebuilt from", str(source))
    if isinstance(result.get("timings"), dict):
        add_timings(report, result["timings"])
    out.parent.mkdir(parents=True, exist_ok=True)
    return report.write_html(out)
