"""Downstream utility of synthetic ECGs: train an ECG classifier, test it on real data.

The classifier and its training recipe are :mod:`~midtecg.evaluation.classifier`'s; the AUC and its bootstrap
interval :mod:`~midtecg.evaluation.auc`'s. Experiments (:func:`run_utility`), all tested on the same real test
set with macro ROC-AUC and a bootstrap interval:

* ``TRTR``: train on real, test on real (the reference);
* ``TSTR``: train on synthetic only;
* ``TRTR+synth``: real plus all synthetic records;
* ``real_<f>`` and ``real_<f>+synth`` for each fraction ``f`` of the real training set (the low-data
  regime), without and with all synthetic records added. Subsets come from one seeded permutation, so
  they are nested (the 5 % subset is inside the 10 % subset). A fraction of 1 reuses TRTR / TRTR+synth.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from midtecg.data.errors import DataError
from midtecg.data.signals import check_signals
from midtecg.evaluation.auc import bootstrap_auc_ci
from midtecg.evaluation.classifier import (
    ClassifierTrainConfig,
    check_labels,
    predict,
    resolve_device,
    train_classifier,
)

__all__ = ["run_utility"]


def run_utility(
    real_train,
    real_train_labels,
    synth,
    synth_labels,
    real_test,
    real_test_labels,
    fractions: Sequence[float] = (0.05, 0.1, 0.25, 0.5, 1.0),
    config: ClassifierTrainConfig | None = None,
    label_set_name: str = "all",
    class_names: Sequence[str] | None = None,
    real_val=None,
    real_val_labels=None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    progress: bool = True,
) -> dict:
    """Train classifiers on real, synthetic and mixed training sets and test each on ``real_test``.

    Returns a JSON-serialisable dict with ``label_set``, ``n_classes``, ``n_test``, ``config``,
    ``fractions``, ``device``, ``torch`` and ``experiments``: one entry per experiment name (``TRTR``,
    ``TSTR``, ``TRTR+synth``, ``real_<f>``, ``real_<f>+synth``) with ``train`` (what it was trained on),
    ``fraction``, ``n_real``, ``n_synth``, ``n_train``, ``macro_auc``, ``ci_low``, ``ci_high``, ``ci_std``,
    ``dropped_classes`` (test classes without positives or negatives) and ``train_seconds``.
    A validation set (``real_val``) is used for best-epoch selection in every experiment when given.
    """
    cfg = config or ClassifierTrainConfig()
    xr = check_signals(real_train, "real_train")
    yr = check_labels(real_train_labels, len(xr), "real_train_labels")
    xs = check_signals(synth, "synth")
    ys = check_labels(synth_labels, len(xs), "synth_labels")
    xt = check_signals(real_test, "real_test")
    yt = check_labels(real_test_labels, len(xt), "real_test_labels")
    if not xr.shape[1] == xs.shape[1] == xt.shape[1]:
        raise DataError("run_utility", f"lead counts differ: real {xr.shape}, synth {xs.shape}, test {xt.shape}")
    if xr.shape[2] != xs.shape[2]:
        raise DataError(
            "run_utility",
            f"real ({xr.shape[2]}) and synthetic ({xs.shape[2]}) records differ "
            "in length; resample them to the same rate and length first",
        )
    if not (yr.shape[1] == ys.shape[1] == yt.shape[1]):
        raise DataError(
            "run_utility", f"label widths differ: real {yr.shape[1]}, synth {ys.shape[1]}, test {yt.shape[1]}"
        )
    if class_names is not None and len(class_names) != yr.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {yr.shape[1]} classes")
    fractions = [float(f) for f in fractions]
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(f"fractions must be in (0, 1], got {f}")
    val = None
    if real_val is not None:
        val = (check_signals(real_val, "real_val"), check_labels(real_val_labels, len(real_val), "real_val_labels"))

    perm = np.random.default_rng(cfg.seed).permutation(len(xr))  # nested subsets for all fractions

    def evaluate(name: str, train: str, fraction: float | None, x, y, n_real: int, n_synth: int) -> dict:
        t0 = time.perf_counter()
        model = train_classifier(x, y, val=val, config=cfg, progress=False, label_names=class_names)
        seconds = time.perf_counter() - t0
        scores = predict(model, xt, batch_size=cfg.eval_batch_size, amp=cfg.amp)
        ci = bootstrap_auc_ci(yt, scores, n_boot=n_boot, seed=cfg.seed, alpha=alpha, class_names=class_names)
        return {
            "train": train,
            "fraction": fraction,
            "n_real": int(n_real),
            "n_synth": int(n_synth),
            "n_train": int(len(x)),
            "macro_auc": ci["auc"],
            "ci_low": ci["ci_low"],
            "ci_high": ci["ci_high"],
            "ci_std": ci["std"],
            "dropped_classes": ci["dropped"],
            "train_seconds": round(seconds, 3),
        }

    plan: list[tuple] = [
        ("TRTR", "real", 1.0, lambda: (xr, yr), len(xr), 0),
        ("TSTR", "synth", None, lambda: (xs, ys), 0, len(xs)),
        (
            "TRTR+synth",
            "real+synth",
            1.0,
            lambda: (np.concatenate([xr, xs]), np.concatenate([yr, ys])),
            len(xr),
            len(xs),
        ),
    ]
    for f in fractions:
        if f == 1.0:
            continue
        m = max(2, int(round(f * len(xr))))
        sub = np.sort(perm[:m])
        plan.append((f"real_{f:g}", "real", f, lambda sub=sub: (xr[sub], yr[sub]), m, 0))
        plan.append(
            (
                f"real_{f:g}+synth",
                "real+synth",
                f,
                lambda sub=sub: (np.concatenate([xr[sub], xs]), np.concatenate([yr[sub], ys])),
                m,
                len(xs),
            )
        )

    experiments: dict[str, dict] = {}
    bar = tqdm(plan, desc=f"utility {label_set_name}", leave=False, disable=not progress)
    for name, train, f, data, n_real, n_synth in bar:
        x, y = data()
        experiments[name] = evaluate(name, train, f, x, y, n_real, n_synth)
    if 1.0 in fractions:
        experiments["real_1"] = dict(experiments["TRTR"], same_as="TRTR")
        experiments["real_1+synth"] = dict(experiments["TRTR+synth"], same_as="TRTR+synth")

    return {
        "label_set": label_set_name,
        "n_classes": int(yr.shape[1]),
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "n_test": int(len(xt)),
        "n_real_train": int(len(xr)),
        "n_synth": int(len(xs)),
        "fractions": fractions,
        "n_boot": int(n_boot),
        "alpha": float(alpha),
        "config": cfg.to_dict(),
        "device": str(resolve_device(cfg.device)),
        "torch": torch.__version__,
        "experiments": experiments,
    }
