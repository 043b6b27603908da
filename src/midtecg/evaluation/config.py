"""How an evaluation runs: one dataclass, :class:`EvaluationConfig`, passed to
:func:`midtecg.evaluation.evaluate` (and built by ``midtecg evaluate`` from its flags)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from midtecg.evaluation.classifier import ClassifierTrainConfig

__all__ = ["EvaluationConfig", "DEFAULT_LABEL_SETS", "DEFAULT_FRACTIONS"]

DEFAULT_LABEL_SETS = ("all", "superdiagnostic")
DEFAULT_FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class EvaluationConfig:
    """Which stages run and how. Every field has a default; ``dataclasses.replace`` changes a few."""

    paired: bool = True
    """Paired metrics (SNR, PRD, ...) for records that pair by ``ecg_id``; never by order."""
    embeddings: bool = True
    """The embedding classifier: Frechet distance, KID, precision / recall, label adherence (TRTS)."""
    rhythm: bool = True
    clinical: bool = True
    privacy: bool = True
    utility: bool = False
    classifier: ClassifierTrainConfig = field(default_factory=ClassifierTrainConfig)
    """The embedding classifier (trained on the real training records; 71 SCP statements + 5 superclasses)."""
    classifier_dir: str | None = None
    """Where the embedding classifier is cached (default ``out_dir/classifier``; share one folder between
    evaluations to train it once)."""
    utility_classifier: ClassifierTrainConfig | None = None
    """The utility experiments' classifiers (default ``ClassifierTrainConfig()``)."""
    utility_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    utility_label_sets: tuple[str, ...] = DEFAULT_LABEL_SETS
    n_splits: int = 20
    """Real-vs-real splits behind every floor (mean and spread)."""
    measure_cache: bool = True
    """Keep the real side's per-record measurements (delineation, rhythm) in a cache keyed by the signals'
    content, so a second evaluation against the same records does not redo them."""
    measure_cache_dir: str | None = None
    """Where (default ``$MIDTECG_CACHE_DIR`` or ``~/.cache/midtecg/measurements``)."""
    limit: int | None = None
    """Evaluate only the first ``limit`` real records (and their synthetic partners)."""
    n_examples: int = 4
    """Paired real-vs-synthetic 12-lead plots in the report."""
    fs: float | None = None
    """Sampling rate of array inputs that carry none (default: the real set's, else 100 Hz)."""
    seed: int = 0
    n_jobs: int = 1
    """Worker processes for delineation and rhythm measures."""
    threads: int | None = None
    """Torch and BLAS threads during the evaluation (restored afterwards); None leaves them alone. On busy
    cores 1 is much faster: on 2 shared cores the small classifier trained at 800 samples/s with 1 thread
    against 140 with 2."""
    progress: bool = True
    title: str | None = None
    on_error: str = "record"
    """``record``: a failing stage is noted in the JSON and the report, the others still run; ``raise``."""

    def __post_init__(self) -> None:
        if self.on_error not in ("record", "raise"):
            raise ValueError(f"on_error must be 'record' or 'raise', got {self.on_error!r}")
        if self.threads is not None and int(self.threads) < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.limit is not None and int(self.limit) < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if int(self.n_splits) < 2:
            raise ValueError(f"n_splits must be at least 2, got {self.n_splits}")
        if int(self.n_jobs) < 1:
            raise ValueError(f"n_jobs must be >= 1, got {self.n_jobs}")
        if self.fs is not None and not float(self.fs) > 0:
            raise ValueError(f"fs must be positive, got {self.fs}")
        if int(self.n_examples) < 0:
            raise ValueError(f"n_examples must be >= 0, got {self.n_examples}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
