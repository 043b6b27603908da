"""Re-test the MIDT-ECG paper's claims: SSSD-ECG against MIDT-ECG (labels, + age, + sex) at equal budget.

    midtecg prepare ../shared/data/ptbxl data/shared-ptbxl-100hz
    python experiments/claims/run.py --cache data/shared-ptbxl-100hz --out runs/claims --jobs 12
    python experiments/claims/run.py --cache data/shared-ptbxl-100hz --out runs/claims --stages summarize

Stages, each skipping what is already done (rerun the same command after an interruption; training resumes
exactly from the newest checkpoint):

``train``      every model x seed of ``experiment.toml`` (``OUT/runs/<model>-seed<S>``);
``generate``   for each run, one ECG per test record from its conditions (paired protocol) and one per training
               record for the utility classifiers (``OUT/generated/<run>/{test,train}/ecgs.npz``);
``evaluate``   ``midtecg.evaluation.evaluate`` of each run against fold 10 with the utility curves
               (``OUT/eval/<run>/evaluation.json`` and ``report.html``; one embedding classifier for all);
``summarize``  ``OUT/summary.json``, ``OUT/summary.md`` (means with 95 % t intervals over seeds, and a verdict
               on each of the paper's four claims) and ``OUT/report.html``.

``--jobs N`` runs N trainings, generations or evaluations side by side (processes; on one GPU they share it).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing as mp
import os
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = Path(__file__).with_name("experiment.toml")
PRESETS = ROOT / "configs"
STAGES = ("train", "generate", "evaluate", "summarize")
SHARED_TABLES = ("data", "model", "diffusion", "train")


# ----------------------------------------------------------------------------------------------- configs
def load_experiment(path: Path = EXPERIMENT, overrides: list[str] = ()) -> dict:
    """The experiment file, with ``key=value`` or ``table.key=value`` overrides (values parsed as TOML)."""
    with open(path, "rb") as handle:
        experiment = tomllib.load(handle)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {override!r} must look like key=value or table.key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare string
        *tables, leaf = key.strip().split(".")
        node = experiment
        for table in tables:
            node = node.setdefault(table, {})
        node[leaf] = value
    return experiment


def run_name(model: str, seed: int) -> str:
    return f"{model}-seed{seed}"


def model_config(experiment: dict, model: str, seed: int, cache: Path, out: Path, device: str):
    """A preset from configs/ with the experiment's shared tables in place of its own."""
    from midtecg.training.config import ExperimentConfig

    preset = PRESETS / f"{model}.toml"
    if not preset.is_file():
        raise FileNotFoundError(f"no preset {preset} for model {model!r}")
    with preset.open("rb") as handle:
        data = tomllib.load(handle)
    for table in SHARED_TABLES:
        data[table] = copy.deepcopy(experiment.get(table, {}))
    data["name"] = run_name(model, seed)
    data["out_dir"] = str(out / "runs" / run_name(model, seed))
    data["data"]["cache"] = str(cache)
    data["train"].update(seed=seed, device=device)
    return ExperimentConfig.from_dict(data, source=str(preset))


def check_equal_budget(configs: dict) -> None:
    """Only the objective and the conditions may differ between the models of one seed."""
    reference = None
    for name, config in configs.items():
        shared = {k: v for k, v in config.to_dict().items() if k not in ("name", "out_dir", "objective", "conditions")}
        if reference is None:
            reference = (name, shared)
        elif shared != reference[1]:
            diff = sorted(k for k in shared if shared[k] != reference[1].get(k))
            raise ValueError(f"{name} and {reference[0]} differ in {diff}, not only in objective and conditions")


# ------------------------------------------------------------------------------------------------ stages
def worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_parallel(function, tasks: list[tuple], jobs: int, threads: int) -> list:
    """Run ``function(*task)`` for every task, ``jobs`` at a time, each in its own process."""
    if not tasks:
        return []
    if jobs <= 1:
        worker_init(threads)
        return [function(*task) for task in tasks]
    with ProcessPoolExecutor(
        jobs, mp_context=mp.get_context("spawn"), initializer=worker_init, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(function, *task) for task in tasks]
        return [future.result() for future in futures]


def train_run(config) -> str:
    from midtecg.training.checkpoint import latest_checkpoint
    from midtecg.training.loop import train

    checkpoint = latest_checkpoint(Path(config.out_dir))
    if checkpoint is not None and _step(checkpoint) >= config.train.steps:
        return f"{config.name}: trained ({checkpoint.name})"
    started = time.perf_counter()
    checkpoint = train(config, resume=True, progress=False)
    return f"{config.name}: trained to {checkpoint.name} in {time.perf_counter() - started:.0f} s"


def _step(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / "training.json").read_text())["step"])


def generate_run(run_dir: Path, out: Path, cache: Path, experiment: dict, device: str, seed: int) -> str:
    from midtecg.generate import generate, paired_conditions
    from midtecg.sample import load_generator

    settings = experiment["generate"]
    todo = [
        (name, split, sampler, steps)
        for name, split, sampler, steps in (
            ("test", "test", settings["sampler"], settings["steps"]),
            ("train", list(experiment["data"]["train_folds"]), settings["utility_sampler"], settings["utility_steps"]),
        )
        if not (out / name / "ecgs.npz").is_file()
    ]
    if not todo:
        return f"{run_dir.name}: generated"
    generator = load_generator(run_dir, device=None if device == "auto" else device)
    started = time.perf_counter()
    for name, split, sampler, steps in todo:
        conditions = paired_conditions(cache, split=split)
        if name == "train" and 0 < settings.get("utility_n", 0) < len(conditions):  # the same records for every run
            conditions = conditions.sample(settings["utility_n"], random_state=0).sort_index()
        generate(
            conditions,
            generator,
            out / name,
            formats=("npz",),
            sampler=sampler,
            strict=False,
            steps=steps or None,
            seed=seed * 1000 + (name == "train"),  # the two sets never share noise
            batch_size=settings["batch_size"],
            progress=False,
        )
    return f"{run_dir.name}: generated {', '.join(t[0] for t in todo)} in {time.perf_counter() - started:.0f} s"


def classifier_config(experiment: dict, key: str, device: str):
    from midtecg.evaluation.classifier import ClassifierTrainConfig

    return ClassifierTrainConfig(
        epochs=experiment["evaluate"][key], device=None if device == "auto" else device, seed=0
    )


def train_embedding_classifier(out: Path, cache: Path, experiment: dict, device: str) -> str:
    """The one embedding classifier every evaluation reuses (from ``OUT/classifier``)."""
    from midtecg.evaluation.inputs import load_ecg_set
    from midtecg.evaluation.stages import embedding_classifier

    train = load_ecg_set((cache, list(experiment["data"]["train_folds"])), role="train")
    started = time.perf_counter()
    embedding_classifier(
        train, out / "classifier", classifier_config(experiment, "classifier_epochs", device), False, []
    )
    return f"embedding classifier ready in {time.perf_counter() - started:.0f} s"


def evaluate_run(name: str, out: Path, cache: Path, experiment: dict, device: str) -> str:
    import torch

    from midtecg.evaluation import EvaluationConfig, evaluate

    target = out / "eval" / name
    if (target / "evaluation.json").is_file():
        return f"{name}: evaluated"
    settings = experiment["evaluate"]
    generated = out / "generated" / name
    started = time.perf_counter()
    config = EvaluationConfig(
        utility=True,
        classifier_dir=str(out / "classifier"),
        classifier=classifier_config(experiment, "classifier_epochs", device),
        utility_classifier=classifier_config(experiment, "utility_epochs", device),
        utility_fractions=tuple(settings["utility_fractions"]),
        utility_label_sets=tuple(settings["utility_label_sets"]),
        progress=False,
        title=f"claims experiment: {name}",
        threads=torch.get_num_threads(),
    )  # BLAS too
    evaluate(
        (cache, "test"),
        generated / "test" / "ecgs.npz",
        train=(cache, list(experiment["data"]["train_folds"])),
        utility_synth=generated / "train" / "ecgs.npz",
        out_dir=target,
        config=config,
    )
    return f"{name}: evaluated in {time.perf_counter() - started:.0f} s"


# --------------------------------------------------------------------------------------------- summarize
#: (key in the evaluation's flat "summary" or a path into evaluation.json, label, better: "lower" | "higher" | "half")
METRICS = [
    ("paired.interlead_error_mean", "inter-lead corr. error, mean", "lower"),
    ("paired.interlead_error_max", "inter-lead corr. error, max", "lower"),
    ("paired.snr_db", "SNR (dB)", "higher"),
    ("paired.rmse", "RMSE (mV)", "lower"),
    ("paired.abs_r", "|r|", "higher"),
    ("fidelity.frechet", "Frechet distance", "lower"),
    ("fidelity.mmd", "MMD^2", "lower"),
    ("clinical.heart_rate", "heart rate KS", "lower"),
    ("clinical.qrs_ms", "QRS KS", "lower"),
    ("clinical.qtc_ms", "QTc KS", "lower"),
    ("clinical.comparison.failure_rate_synth", "delineation failures", "lower"),
    ("privacy.signal.classic.mia_distance_auc", "MIA AUC, distance", "half"),
    ("privacy.signal.classic.mia_density_auc", "MIA AUC, density", "half"),
    ("privacy.signal.classic.nnaa_train", "NNAA (train)", "half"),
    ("privacy.signal.classic.nnaa_privacy_loss", "NNAA privacy loss", "lower"),
    ("privacy.signal.dcr.ratio_median", "DCR ratio (synth/holdout)", "higher"),
    ("privacy.embedding.classic.mia_distance_auc", "MIA AUC, distance (embedding)", "half"),
]
PRIVACY = [key for key, _, _ in METRICS if key.startswith("privacy.")]


def metric(result: dict, key: str) -> float:
    node = result.get("summary", {}).get(key)
    if node is None:
        node = result
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else math.nan


def utility_auc(result: dict, label_set: str, experiment: str) -> float:
    try:
        return float(result["utility"][label_set]["experiments"][experiment]["macro_auc"])
    except (KeyError, TypeError, ValueError):
        return math.nan


def mean_ci(values) -> dict:
    """Mean and the half-width of a 95 % t interval over seeds (NaN with fewer than two values)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"mean": math.nan, "ci": math.nan, "n": 0}
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return {"mean": float(v.mean()), "ci": float(half), "n": len(v)}


def badness(value: float, better: str) -> float:
    """A number where smaller is better (distance from 0.5 for the attack AUCs and NNAA)."""
    return {"lower": value, "higher": -value, "half": abs(value - 0.5)}[better]


def _excludes_zero(stat: dict) -> int:
    """+1 when the interval lies above zero, -1 below, 0 when it straddles zero or is unknown."""
    if not np.isfinite(stat["ci"]):
        return 0
    return 1 if stat["mean"] - stat["ci"] > 0 else -1 if stat["mean"] + stat["ci"] < 0 else 0


def judge_claims(results: dict, experiment: dict) -> list[dict]:
    """The paper's four claims against the per-seed results ``results[model][seed] -> evaluation dict``."""
    seeds = sorted(set.intersection(*(set(r) for r in results.values()))) if results else []

    def per(model: str, f) -> list[float]:
        return [f(results[model][s]) for s in seeds] if model in results else []

    claims = []

    # 1. inter-lead correlation error, MIDT against SSSD, paired by seed
    base = np.array(per("sssd-ecg", lambda r: metric(r, "paired.interlead_error_mean")))
    midt = np.array(per("midt-ecg", lambda r: metric(r, "paired.interlead_error_mean")))
    reduction = mean_ci(100 * (1 - midt / base)) if len(base) and len(midt) else mean_ci([])
    sign = _excludes_zero(reduction)
    claims.append(
        {
            "claim": "MIDT lowers the inter-lead correlation error by about 74 % (vs SSSD-ECG)",
            "measured": f"{_pm(reduction, 1)} % lower (mean per-record error {_pm(mean_ci(midt), 4)} vs {_pm(mean_ci(base), 4)})",
            "verdict": ("holds in direction" if sign > 0 else "does not hold" if sign < 0 else "not resolved")
            + (
                ""
                if sign <= 0
                else (
                    ", magnitude as in the paper"
                    if reduction["mean"] - reduction["ci"] <= 74 <= reduction["mean"] + reduction["ci"]
                    else ", smaller than the paper's 74 %"
                )
            ),
            "reduction_percent": reduction,
        }
    )

    # 2. privacy: relative improvement of each metric (positive = MIDT more private)
    rows, signs = {}, []
    for key in PRIVACY:
        better = next(b for k, _, b in METRICS if k == key)
        b = np.array(per("sssd-ecg", lambda r, key=key, better=better: badness(metric(r, key), better)))
        m = np.array(per("midt-ecg", lambda r, key=key, better=better: badness(metric(r, key), better)))
        gain = mean_ci(100 * (b - m) / np.maximum(np.abs(b), 1e-12)) if len(b) and len(m) else mean_ci([])
        rows[key] = gain
        signs.append(_excludes_zero(gain))
    n_better, n_worse = signs.count(1), signs.count(-1)
    claims.append(
        {
            "claim": "MIDT's privacy metrics are 4-8 % better (vs SSSD-ECG)",
            "measured": "; ".join(f"{_label(k)} {_pm(v, 1)} %" for k, v in rows.items()),
            "verdict": (
                "holds"
                if n_better > len(signs) / 2 and not n_worse
                else "does not hold"
                if n_worse > len(signs) / 2 and not n_better
                else "not resolved"
            )
            + f" ({n_better} better, {n_worse} worse, {len(signs) - n_better - n_worse} within seed noise)",
            "improvement_percent": rows,
        }
    )

    # 3. demographic conditioning raises the paired SNR (vs labels only)
    labels_snr = np.array(per("midt-ecg", lambda r: metric(r, "paired.snr_db")))
    gains = {}
    for model in ("midt-ecg-age", "midt-ecg-sex"):
        snr = np.array(per(model, lambda r: metric(r, "paired.snr_db")))
        gains[model] = mean_ci(snr - labels_snr) if len(snr) and len(labels_snr) else mean_ci([])
    verdicts = [_excludes_zero(g) for g in gains.values()]
    claims.append(
        {
            "claim": "demographic conditioning raises the paired SNR (vs MIDT with labels only)",
            "measured": "; ".join(f"{m}: {_pm(g, 3)} dB" for m, g in gains.items()),
            "verdict": "holds"
            if all(v > 0 for v in verdicts)
            else "holds for one of the two"
            if any(v > 0 for v in verdicts)
            else "does not hold"
            if all(v < 0 for v in verdicts)
            else "not resolved",
            "snr_gain_db": gains,
        }
    )

    # 4. low data: real subset + synthetic about as good as all real data
    label_set = experiment["evaluate"]["utility_label_sets"][0]
    fraction = min(f for f in experiment["evaluate"]["utility_fractions"] if f < 1)
    tolerance = 0.02
    rows = {}
    for model in results:
        trtr = np.array(per(model, lambda r: utility_auc(r, label_set, "TRTR")))
        small = np.array(per(model, lambda r: utility_auc(r, label_set, f"real_{fraction:g}")))
        mixed = np.array(per(model, lambda r: utility_auc(r, label_set, f"real_{fraction:g}+synth")))
        rows[model] = {"gap_to_all_real": mean_ci(mixed - trtr), "gain_over_subset": mean_ci(mixed - small)}
    holds = [m for m, r in rows.items() if r["gap_to_all_real"]["mean"] >= -tolerance]
    fails = [m for m, r in rows.items() if r["gap_to_all_real"]["mean"] + r["gap_to_all_real"]["ci"] < -tolerance]
    claims.append(
        {
            "claim": f"with {fraction:.0%} of the real training data plus synthetic ECGs, a classifier does about as "
            f"well as with all real data ({label_set}, macro AUC; 'about' = within {tolerance})",
            "measured": "; ".join(
                f"{m}: {_pm(r['gap_to_all_real'], 3)} vs all real, {_pm(r['gain_over_subset'], 3)} vs "
                f"the {fraction:.0%} subset alone"
                for m, r in rows.items()
            ),
            "verdict": (
                "holds"
                if len(holds) == len(rows)
                else "does not hold"
                if len(fails) == len(rows)
                else f"holds for {', '.join(holds) or 'none'}, fails for {', '.join(fails) or 'none'}, "
                "the rest within seed noise"
            ),
            "auc_differences": rows,
        }
    )
    return claims


def _label(key: str) -> str:
    return next(label for k, label, _ in METRICS if k == key)


def _pm(stat: dict, digits: int) -> str:
    if not np.isfinite(stat["mean"]):
        return "n/a"
    if not np.isfinite(stat["ci"]):
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['ci']:.{digits}f}"


def collect(out: Path, experiment: dict) -> dict:
    results: dict = {}
    for model in experiment["models"]:
        for seed in experiment["seeds"]:
            path = out / "eval" / run_name(model, seed) / "evaluation.json"
            if path.is_file():
                results.setdefault(model, {})[seed] = json.loads(path.read_text())
    return results


def final_training_mse(out: Path, name: str) -> float:
    """The epsilon MSE of the last logged training window (comparable across objectives: MIDT logs it too)."""
    import csv

    log = out / "runs" / name / "log.csv"
    rows = list(csv.DictReader(log.open())) if log.is_file() else []
    return float(rows[-1]["mse_loss"] or rows[-1]["loss"]) if rows else math.nan


def summary_table(results: dict, experiment: dict, out: Path) -> list[dict]:
    label_set = experiment["evaluate"]["utility_label_sets"][0]
    fractions = [f for f in experiment["evaluate"]["utility_fractions"] if f < 1]
    utility = [("TRTR", "AUC all real"), ("TSTR", "AUC synthetic only"), ("TRTR+synth", "AUC all real + synth")]
    utility += [(f"real_{f:g}", f"AUC {f:.0%} real") for f in fractions]
    utility += [(f"real_{f:g}+synth", f"AUC {f:.0%} real + synth") for f in fractions]
    rows = [
        {
            "metric": "training epsilon MSE, last steps",
            "better": "lower",
            **{m: mean_ci([final_training_mse(out, run_name(m, seed)) for seed in results[m]]) for m in results},
        }
    ]
    for key, label, better in METRICS:
        rows.append(
            {
                "metric": label,
                "better": better if better != "half" else "near 0.5",
                **{m: mean_ci([metric(r, key) for r in results[m].values()]) for m in results},
            }
        )
    for key, label in utility:
        rows.append(
            {
                "metric": f"{label} ({label_set})",
                "better": "higher",
                **{m: mean_ci([utility_auc(r, label_set, key) for r in results[m].values()]) for m in results},
            }
        )
    return rows


def _digits(stat: dict) -> int:
    return 1 if abs(stat["mean"]) >= 10 else 3 if abs(stat["mean"]) >= 0.1 else 4


def markdown(rows: list[dict], claims: list[dict], results: dict, header: str) -> str:
    models = list(results)
    seeds = {m: len(results[m]) for m in models}
    lines = [
        header,
        "",
        "| metric | better | " + " | ".join(f"{m} (n={seeds[m]})" for m in models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for row in rows:
        cells = [_pm(row[m], _digits(row[m])) if np.isfinite(row[m]["mean"]) else "n/a" for m in models]
        lines.append(f"| {row['metric']} | {row['better']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean ± half-width of the 95 % t interval over seeds.",
        "",
        "| claim | measured | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {c['claim']} | {c['measured']} | **{c['verdict']}** |" for c in claims]
    return "\n".join(lines) + "\n"


def summarize(out: Path, experiment: dict, compute: dict) -> dict:
    from midtecg.evaluation.report import Report, write_json

    results = collect(out, experiment)
    if not results:
        raise FileNotFoundError(f"no evaluation.json under {out / 'eval'}: run the evaluate stage first")
    rows = summary_table(results, experiment, out)
    claims = judge_claims(results, experiment)
    runs = {m: sorted(r) for m, r in results.items()}
    header = f"# Claims experiment: {', '.join(results)}\n\nSeeds evaluated: " + "; ".join(
        f"{m} {s}" for m, s in runs.items()
    )
    text = markdown(rows, claims, results, header)
    (out / "summary.md").write_text(text)
    per_run = {
        run_name(m, seed): {key: metric(r, key) for key, _, _ in METRICS} | r.get("summary", {})
        for m, by_seed in results.items()
        for seed, r in by_seed.items()
    }
    summary = {
        "experiment": experiment,
        "runs": runs,
        "compute": compute,
        "table": rows,
        "claims": claims,
        "per_run": per_run,
    }
    write_json(out / "summary.json", summary)

    report = Report("midtecg claims experiment", "SSSD-ECG against MIDT-ECG at equal budget, tested on PTB-XL fold 10")
    report.add_section("Claims").add_table(None, [{k: c[k] for k in ("claim", "measured", "verdict")} for c in claims])
    flat = [{"metric": r["metric"], "better": r["better"], **{m: _pm(r[m], 4) for m in results}} for r in rows]
    report.add_section(
        "All metrics", "Mean ± half-width of the 95 % t interval over seeds; one evaluation report per run under eval/."
    ).add_table(None, flat)
    report.add_figure("Low-data utility", _utility_figure(results, experiment))
    report.add_section("Settings").add_text(json.dumps({"experiment": experiment, "compute": compute}, indent=1))
    report.write_html(out / "report.html")
    return summary


def _utility_figure(results: dict, experiment: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label_set = experiment["evaluate"]["utility_label_sets"][0]
    fractions = sorted(experiment["evaluate"]["utility_fractions"])
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, model in enumerate(results):
        for suffix, style in (("", ":"), ("+synth", "-")):
            names = [("TRTR" if f == 1 else f"real_{f:g}") + suffix for f in fractions]
            stats = [mean_ci([utility_auc(r, label_set, n) for r in results[model].values()]) for n in names]
            if suffix == "" and i:
                continue  # the real-only curve is the same experiment for every model
            ax.errorbar(
                fractions,
                [s["mean"] for s in stats],
                yerr=[s["ci"] for s in stats],
                ls=style,
                marker="o",
                capsize=3,
                label="real only" if suffix == "" else f"real + {model}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("fraction of the real training records")
    ax.set_ylabel(f"macro ROC-AUC ({label_set})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------- main
def describe_device(device: str) -> str:
    import platform

    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (+ {os.cpu_count()} CPU cores)"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="a 100 Hz cache written by `midtecg prepare` (PTB-XL folds)")
    parser.add_argument("--out", default="runs/claims", help="experiment folder (default runs/claims)")
    parser.add_argument(
        "--experiment", default=str(EXPERIMENT), help="experiment file (default: the one beside run.py)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[TABLE.]KEY=VALUE",
        help="override an experiment value, e.g. train.steps=200 or seeds=[0]",
    )
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side (default 1)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)

    experiment = load_experiment(Path(args.experiment), args.set)
    cache, out = Path(args.cache), Path(args.out)
    manifest = json.loads((cache / "manifest.json").read_text()) if (cache / "manifest.json").is_file() else None
    if manifest is None:
        raise SystemExit(f"--cache {cache}: not a prepared cache (no manifest.json); run `midtecg prepare` first")
    if manifest.get("rate") != 100:
        raise SystemExit(f"--cache {cache}: {manifest.get('rate')} Hz; the experiment (and the mel loss) needs 100 Hz")
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(args.jobs, 1))
    runs = [(m, s) for s in experiment["seeds"] for m in experiment["models"]]
    configs = {run_name(m, s): model_config(experiment, m, s, cache, out, args.device) for m, s in runs}
    for seed in experiment["seeds"]:
        check_equal_budget({k: c for k, c in configs.items() if k.endswith(f"-seed{seed}")})
    compute_file = out / "compute.json"  # where and how long each stage ran, kept across invocations
    compute = json.loads(compute_file.read_text()) if compute_file.is_file() else {}

    for stage in args.stages:
        started = time.perf_counter()
        print(f"== {stage}", file=sys.stderr, flush=True)
        if stage == "train":
            messages = run_parallel(train_run, [(c,) for c in configs.values()], args.jobs, threads)
        elif stage == "generate":
            messages = run_parallel(
                generate_run,
                [
                    (out / "runs" / n, out / "generated" / n, cache, experiment, args.device, configs[n].train.seed)
                    for n in configs
                ],
                args.jobs,
                threads,
            )
        elif stage == "evaluate":
            messages = run_parallel(
                train_embedding_classifier, [(out, cache, experiment, args.device)], 1, os.cpu_count() or 1
            )
            messages += run_parallel(
                evaluate_run, [(n, out, cache, experiment, args.device) for n in configs], args.jobs, threads
            )
        else:
            summary = summarize(out, experiment, compute)
            messages = [c["claim"] + ": " + c["verdict"] for c in summary["claims"]]
        seconds = time.perf_counter() - started
        if stage != "summarize":
            previous = compute.get(stage, {}).get("seconds", 0)
            compute[stage] = {
                "seconds": round(previous + seconds, 1),
                "device": describe_device(args.device),
                "jobs": args.jobs,
                "threads_per_job": threads,
            }
            compute_file.write_text(json.dumps(compute, indent=1))
        for message in messages:
            print(f"  {message}", file=sys.stderr, flush=True)
        print(f"   {stage}: {seconds:.0f} s", file=sys.stderr, flush=True)
    if "summarize" in args.stages:
        print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
