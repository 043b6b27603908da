"""The recipe study: which training recipe makes the small built-in model best, at the same CPU budget?

    midtecg prepare ../shared/data/ptbxl data/shared-ptbxl-100hz
    python experiments/recipe/run.py --cache data/shared-ptbxl-100hz --out runs/recipe --jobs 2

Every arm of ``experiment.toml`` (the recipe as it was, each fix alone, both fixes, each option alone on top
of them, and a best combination) trains the same small S4D model from the same base preset for the same CPU
time (``budget_cpu_seconds``, default 30 CPU-minutes, one thread per run, ``--jobs`` runs at a time), then
generates one ECG per fold-10 record from its conditions and is evaluated with ``midtecg.evaluation.evaluate``
against fold 10. Rerun the same command after an interruption: finished work is skipped, training resumes
from the newest checkpoint (at most ``train.checkpoint_every`` steps are lost).

Stages (``--stages``, each skipping what is done): ``train``, ``generate``, ``evaluate`` for the fixed arms;
then, when every option arm and the baseline are evaluated, the best combination is chosen once
(``OUT/best.json``, see ``best_overrides``) and goes through the same stages; ``summarize`` writes
``OUT/summary.md`` and ``OUT/summary.json`` (one row per arm: training steps in the budget, final validation
loss against the monitor's Gaussian reference, warnings, sample amplitude, and the evaluation's numbers).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import tomllib
from pathlib import Path

from midtecg.evaluation.verdicts import summary_value

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))  # the studies' shared helpers
import study  # noqa: E402

EXPERIMENT = Path(__file__).with_name("experiment.toml")
PRESETS = ROOT / "configs"
STAGES = ("train", "generate", "evaluate", "summarize")
TABLES = ("data", "model", "conditions", "diffusion", "objective", "train")
BASELINE = "fixed"
OPTIONS = ("scaling", "ztsnr", "vpred", "flow")


#: (key of the evaluation's flat summary or a path into evaluation.json, column label, better: "lower" |
#: "higher" | "" for information). RHYTHM is the rhythm comparison of all records.
RHYTHM = "rhythm.comparison.groups.all.measures"
METRICS = [
    ("fidelity.frechet", "Frechet", "lower"),
    ("fidelity.frechet.floor", "Frechet floor", ""),
    ("fidelity.mmd", "MMD^2", "lower"),
    ("fidelity.welch_psd", "PSD dist.", "lower"),
    ("paired.interlead_error_mean", "inter-lead err.", "lower"),
    ("paired.snr_db", "paired SNR (dB)", "higher"),
    (f"{RHYTHM}.rr_cv.synth.median", "RR CV median", ""),
    (f"{RHYTHM}.rr_cv.real.median", "real RR CV", ""),
    (f"{RHYTHM}.r_amp_cv.synth.median", "R-amp CV median", ""),
    (f"{RHYTHM}.p_wave_fraction.synth.median", "P-wave fraction", "higher"),
    ("rhythm.rr_cv", "RR CV KS", "lower"),
    ("clinical.heart_rate", "HR KS", "lower"),
    ("clinical.heart_rate_mae_bpm", "HR MAE (bpm)", "lower"),
    ("labels.superdiagnostic.ratio", "TRTS / real AUC", "higher"),
    ("privacy.verdict", "privacy", ""),
]


# ----------------------------------------------------------------------------------------------- configs
def arms(experiment: dict) -> dict[str, dict]:
    """The arms of the experiment file, name -> {"table.key": value} overrides (the best arm excluded)."""
    return {name: dict(overrides) for name, overrides in experiment.get("arms", {}).items()}


def arm_config(experiment: dict, name: str, overrides: dict, cache: Path, out: Path):
    """The base preset, the experiment's tables merged into it, then the arm's overrides."""
    from midtecg.training.config import ExperimentConfig

    preset = PRESETS / f"{experiment['base']}.toml"
    with preset.open("rb") as handle:
        data = tomllib.load(handle)
    for table in TABLES:
        data.setdefault(table, {}).update(experiment.get(table, {}))
    for key, value in overrides.items():
        table, sep, leaf = key.partition(".")
        if not sep or table not in TABLES or "." in leaf:
            raise ValueError(f"arm {name!r}: override {key!r} must look like table.key with a table of {TABLES}")
        data[table][leaf] = value
    data.update(name=name, out_dir=str(out / "runs" / name))
    data["data"]["cache"] = str(cache)
    data["train"].update(
        seed=int(experiment["seed"]), device="cpu", threads=1, max_cpu_seconds=float(experiment["budget_cpu_seconds"])
    )
    return ExperimentConfig.from_dict(data, source=f"{preset} + arm {name}")


def flatten(config) -> dict:
    """``table.key`` -> value of an ExperimentConfig (name and out_dir left out)."""
    return {
        f"{table}.{key}": value
        for table, section in config.to_dict().items()
        if isinstance(section, dict)
        for key, value in section.items()
    }


def check_only_overrides_differ(base, configs: dict, overrides: dict) -> None:
    """Each arm's config differs from ``base`` (the arm without overrides) only in its own override keys."""
    reference = flatten(base)
    for name, config in configs.items():
        values = flatten(config)
        extra = sorted(k for k in reference if values[k] != reference[k] and k not in overrides[name])
        if extra:
            raise ValueError(f"arm {name} differs from the base in {extra}, which it does not override")


# ------------------------------------------------------------------------------------------------ stages
def train_arm(config) -> str:
    """Train to the CPU budget (resuming); nothing to do when the newest checkpoint has spent it."""
    from midtecg.training.checkpoint import latest_checkpoint
    from midtecg.training.loop import train

    checkpoint = latest_checkpoint(Path(config.out_dir))
    if checkpoint is not None and spent_cpu(checkpoint) >= config.train.max_cpu_seconds:
        return f"{config.name}: trained ({checkpoint.name})"
    started = time.perf_counter()
    checkpoint = train(config, resume=True, progress=False)
    return f"{config.name}: trained to {checkpoint.name} in {time.perf_counter() - started:.0f} s"


def spent_cpu(checkpoint: Path) -> float:
    return float(json.loads((checkpoint / "training.json").read_text()).get("cpu_s", 0.0))


def generate_arm(name: str, out: Path, cache: Path, experiment: dict) -> str:
    """One ECG per test record from its conditions, with the arm's sampler (``[generate]``)."""
    from midtecg.generate import generate, paired_conditions
    from midtecg.sample import load_generator

    target = out / "generated" / name
    if (target / "ecgs.npz").is_file():
        return f"{name}: generated"
    settings = experiment["generate"]
    generator = load_generator(out / "runs" / name, device="cpu")
    flow = generator.parameterization is not None and generator.parameterization.is_flow
    sampler, steps = (
        (settings["flow_sampler"], settings["flow_steps"]) if flow else (settings["sampler"], settings["steps"])
    )
    conditions = paired_conditions(cache, split="test", limit=settings.get("limit") or None)
    started = time.perf_counter()
    generate(
        conditions,
        generator,
        target,
        formats=("npz",),
        sampler=sampler,
        steps=steps or None,
        seed=int(experiment["seed"]),
        batch_size=settings["batch_size"],
        progress=False,
        strict=False,
    )
    return f"{name}: generated {len(conditions)} ECGs with {sampler} in {time.perf_counter() - started:.0f} s"


def evaluate_arm(name: str, out: Path, cache: Path, experiment: dict) -> str:
    import torch

    from midtecg.evaluation import EvaluationConfig, evaluate

    target = out / "eval" / name
    if (target / "evaluation.json").is_file():
        return f"{name}: evaluated"
    settings = experiment["evaluate"]
    config = EvaluationConfig(
        utility=False,
        rhythm=settings["rhythm"],
        clinical=settings["clinical"],
        privacy=settings["privacy"],
        classifier_dir=str(out / "classifier"),
        classifier=study.classifier_config(experiment, "classifier_epochs", "cpu"),
        measure_cache_dir=str(out / "measurements"),  # the real side is measured once for all arms
        seed=int(experiment["seed"]),
        progress=False,
        title=f"recipe study: {name}",
        threads=torch.get_num_threads(),
    )
    started = time.perf_counter()
    result = evaluate(
        (cache, "test"),
        out / "generated" / name / "ecgs.npz",
        train=(cache, list(experiment["data"]["train_folds"])),
        out_dir=target if settings["report"] else None,
        config=config,
    )
    if not settings["report"]:  # the JSON alone (evaluate writes it with the HTML report)
        target.mkdir(parents=True, exist_ok=True)
        (target / ".evaluation.json.tmp").write_text(json.dumps(result, indent=1, default=str))
        (target / ".evaluation.json.tmp").replace(target / "evaluation.json")
    return f"{name}: evaluated in {time.perf_counter() - started:.0f} s"


def run_stages(
    stages, names: list[str], configs: dict, out: Path, cache: Path, experiment: dict, jobs: int, compute: dict
) -> None:
    for stage in stages:
        if stage == "summarize":
            continue
        started = time.perf_counter()
        print(f"== {stage}: {', '.join(names)}", file=sys.stderr, flush=True)
        if stage == "train":
            messages = study.run_parallel(train_arm, [(configs[n],) for n in names], jobs, 1)
        elif stage == "generate":
            messages = study.run_parallel(generate_arm, [(n, out, cache, experiment) for n in names], jobs, 1)
        else:
            messages = study.run_parallel(study.train_embedding_classifier, [(out, cache, experiment, "cpu")], 1, 1)
            messages += study.run_parallel(evaluate_arm, [(n, out, cache, experiment) for n in names], jobs, 1)
        for message in messages:
            print(f"  {message}", file=sys.stderr, flush=True)
        entry = compute.setdefault(stage, {"seconds": 0.0})
        entry.update(
            seconds=round(entry["seconds"] + time.perf_counter() - started, 1),
            jobs=jobs,
            threads_per_job=1,
            device=study.describe_device("cpu"),
        )
        (out / "compute.json").write_text(json.dumps(compute, indent=1))


# ---------------------------------------------------------------------------------------------- the best
def score(out: Path, name: str, experiment: dict) -> float:
    path = out / "eval" / name / "evaluation.json"
    if not path.is_file():
        return math.nan
    return study.metric(json.loads(path.read_text()), experiment["select_metric"])


def best_overrides(scores: dict[str, float], overrides: dict[str, dict], better: str) -> tuple[dict, list[str]]:
    """The best combination: every option arm that beat the baseline on the score, together. The process
    options exclude each other where they overlap: a flow arm (diffusion.prediction = flow) and the
    diffusion options (v-prediction, zero terminal SNR) are not combined; the kind whose best arm scores
    better is kept. On conflicting values of one key the better arm wins. Returns (overrides, arms used)."""
    sign = 1.0 if better == "lower" else -1.0
    base = scores[BASELINE]
    improved = sorted(
        (a for a in OPTIONS if a in scores and math.isfinite(scores[a]) and sign * scores[a] < sign * base),
        key=lambda a: sign * scores[a],
    )
    flow = [a for a in improved if overrides[a].get("diffusion.prediction") == "flow"]
    diffusion = [a for a in improved if a not in flow and any(k.startswith("diffusion.") for k in overrides[a])]
    if flow and diffusion:
        drop = diffusion if sign * scores[flow[0]] < sign * scores[diffusion[0]] else flow
        improved = [a for a in improved if a not in drop]
    merged: dict = {}
    for arm in reversed(improved):  # the better arm last, so it wins a conflict
        merged.update(overrides[arm])
    return merged, improved


def choose_best(out: Path, experiment: dict, overrides: dict) -> dict | None:
    """``OUT/best.json`` (written once): the best combination, or None while arms are not evaluated."""
    path = out / "best.json"
    if path.is_file():
        return json.loads(path.read_text())
    scores = {name: score(out, name, experiment) for name in (BASELINE, *OPTIONS) if name in overrides}
    if not math.isfinite(scores.get(BASELINE, math.nan)) or not all(math.isfinite(v) for v in scores.values()):
        return None
    merged, used = best_overrides(scores, overrides, experiment["select_better"])
    same = next((name for name, o in overrides.items() if o == {**overrides[BASELINE], **merged}), None)
    best = {
        "overrides": {**overrides[BASELINE], **merged},
        "from": used,
        "same_as": same,
        "scores": scores,
        "select_metric": experiment["select_metric"],
    }
    path.write_text(json.dumps(best, indent=1))
    return best


# --------------------------------------------------------------------------------------------- summarize
def training_summary(out: Path, name: str) -> dict:
    """Steps, CPU seconds, the last validation loss against the Gaussian reference, warnings."""
    from midtecg.training.checkpoint import latest_checkpoint

    checkpoint = latest_checkpoint(out / "runs" / name)
    if checkpoint is None:
        return {}
    meta = json.loads((checkpoint / "training.json").read_text())
    rows = list(csv.DictReader((out / "runs" / name / "log.csv").open()))
    validated = [r for r in rows if r.get("val_loss")]
    last = validated[-1] if validated else {}

    def number(row, key):
        return float(row[key]) if row.get(key) not in (None, "") else math.nan

    return {
        "steps": int(meta["step"]),
        "cpu_s": float(meta.get("cpu_s", math.nan)),
        "val_loss": number(last, "val_loss"),
        "val_reference": number(last, "val_reference"),
        "sample_amplitude_ratio": number(rows[-1], "sample_amplitude_ratio") if rows else math.nan,
        "warning": rows[-1].get("warning", "") if rows else "",
        "warnings_logged": sum(1 for r in rows if r.get("warning")),
    }


def summarize(out: Path, experiment: dict, names: list[str], overrides: dict, best: dict | None, compute: dict) -> dict:
    table = {}
    for name in names:
        path = out / "eval" / name / "evaluation.json"
        result = json.loads(path.read_text()) if path.is_file() else {}
        table[name] = {
            "overrides": overrides.get(name, best["overrides"] if best and name == "best" else {}),
            "training": training_summary(out, name),
            "metrics": {key: summary_value(result, key) for key, _, _ in METRICS},
        }
    summary = {"experiment": experiment, "arms": table, "best": best, "compute": compute}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "summary.md").write_text(markdown(table, experiment, best))
    return summary


def _cell(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown(table: dict, experiment: dict, best: dict | None) -> str:
    budget = float(experiment["budget_cpu_seconds"])
    lines = [
        f"# Recipe study: {len(table)} arms, {budget / 60:g} CPU-minutes each (one thread)",
        "",
        f"Base preset `configs/{experiment['base']}.toml`; evaluation on fold 10 (paired conditions).",
        "val / ref: last validation loss over the Gaussian reference of midtecg.training.monitor (below 1: "
        "the model beats a predictor that knows only the data's per-lead mean and variance).",
        "",
        "| arm | changes | steps | val / ref | amplitude | warning | "
        + " | ".join(f"{label}{' ↓' if b == 'lower' else ' ↑' if b == 'higher' else ''}" for _, label, b in METRICS)
        + " |",
        "|---" * (6 + len(METRICS)) + "|",
    ]
    for name, row in table.items():
        t = row["training"]
        changes = ", ".join(f"{k}={v}" for k, v in row["overrides"].items()) or "-"
        ratio = t.get("val_loss", math.nan) / t.get("val_reference", math.nan) if t else math.nan
        warning = ", ".join(w.split(":")[0] for w in (t.get("warning") or "").split("; ") if w) or "-"
        lines.append(
            f"| {name} | {changes} | {t.get('steps', 'n/a')} | {_cell(ratio)} | "
            f"{_cell(t.get('sample_amplitude_ratio'))} | {warning} | "
            + " | ".join(_cell(row["metrics"][key]) for key, _, _ in METRICS)
            + " |"
        )
    if best is not None:
        lines += [
            "",
            f"Best combination (options that beat `{BASELINE}` on {best['select_metric']}): "
            f"{', '.join(best['from']) or 'none'}"
            + (f", the same as arm `{best['same_as']}`" if best["same_as"] else "")
            + ".",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="a 100 Hz cache written by `midtecg prepare` (PTB-XL folds)")
    parser.add_argument("--out", default="runs/recipe", help="experiment folder (default runs/recipe)")
    parser.add_argument(
        "--experiment", default=str(EXPERIMENT), help="experiment file (default: the one beside run.py)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[TABLE.]KEY=VALUE",
        help="override an experiment value, e.g. budget_cpu_seconds=600 or model.channels=16",
    )
    parser.add_argument("--arms", nargs="+", help="only these arms (default: all of the experiment file)")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each (default 2)")
    args = parser.parse_args(argv)

    experiment = study.load_experiment(Path(args.experiment), args.set)
    cache, out = Path(args.cache), Path(args.out)
    study.check_cache(cache, 100, "the study (the third fix has no effect at 100 Hz, its rate)")
    overrides = arms(experiment)
    names = list(overrides) if not args.arms else args.arms
    unknown = sorted(set(names) - set(overrides))
    if unknown:
        raise SystemExit(f"--arms: unknown arm(s) {unknown}; the experiment has {sorted(overrides)}")
    out.mkdir(parents=True, exist_ok=True)
    configs = {n: arm_config(experiment, n, overrides[n], cache, out) for n in names}
    check_only_overrides_differ(arm_config(experiment, "base", {}, cache, out), configs, overrides)
    compute_file = out / "compute.json"
    compute = json.loads(compute_file.read_text()) if compute_file.is_file() else {}

    run_stages(args.stages, names, configs, out, cache, experiment, args.jobs, compute)
    best = choose_best(out, experiment, overrides) if experiment.get("best", True) else None
    shown = list(names)
    if best is not None:
        if best["same_as"] is None:
            configs["best"] = arm_config(experiment, "best", best["overrides"], cache, out)
            run_stages(args.stages, ["best"], configs, out, cache, experiment, args.jobs, compute)
            shown.append("best")
        print(
            f"best combination: {', '.join(best['from']) or 'none'}"
            + (f" (arm {best['same_as']})" if best["same_as"] else ""),
            file=sys.stderr,
        )
    if "summarize" in args.stages:
        summarize(out, experiment, shown, overrides, best, compute)
        print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
