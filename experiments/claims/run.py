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
import os
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))  # the studies' shared helpers
import study  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # judge.py, beside it
from judge import METRICS, judge_claims, mean_ci, plus_minus, utility_auc  # noqa: E402

EXPERIMENT = Path(__file__).with_name("experiment.toml")
PRESETS = ROOT / "configs"
STAGES = ("train", "generate", "evaluate", "summarize")
SHARED_TABLES = ("data", "model", "diffusion", "train")


# ----------------------------------------------------------------------------------------------- configs
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
        classifier=study.classifier_config(experiment, "classifier_epochs", device),
        utility_classifier=study.classifier_config(experiment, "utility_epochs", device),
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
                **{m: mean_ci([study.metric(r, key) for r in results[m].values()]) for m in results},
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
        cells = [plus_minus(row[m], _digits(row[m])) if np.isfinite(row[m]["mean"]) else "n/a" for m in models]
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
        run_name(m, seed): {key: study.metric(r, key) for key, _, _ in METRICS} | r.get("summary", {})
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
    flat = [{"metric": r["metric"], "better": r["better"], **{m: plus_minus(r[m], 4) for m in results}} for r in rows]
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

    experiment = study.load_experiment(Path(args.experiment), args.set)
    cache, out = Path(args.cache), Path(args.out)
    study.check_cache(cache, 100, "the experiment (and its mel loss)")
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
            messages = study.run_parallel(train_run, [(c,) for c in configs.values()], args.jobs, threads)
        elif stage == "generate":
            messages = study.run_parallel(
                generate_run,
                [
                    (out / "runs" / n, out / "generated" / n, cache, experiment, args.device, configs[n].train.seed)
                    for n in configs
                ],
                args.jobs,
                threads,
            )
        elif stage == "evaluate":
            messages = study.run_parallel(
                study.train_embedding_classifier, [(out, cache, experiment, args.device)], 1, os.cpu_count() or 1
            )
            messages += study.run_parallel(
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
                "device": study.describe_device(args.device),
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
