"""Does a built-in model meet its targets (issue 12)? Measures each one on real PTB-XL data and writes
``OUT/targets.json`` and ``OUT/targets.md``.

    midtecg prepare ../shared/data/ptbxl data/shared-ptbxl-100hz
    python experiments/default_model/targets.py --cache data/shared-ptbxl-100hz              # the built-in model
    python experiments/default_model/targets.py --cache data/shared-ptbxl-100hz --model runs/x --out runs/x-targets

Targets (every number comes from midtecg's own API: ``midtecg.generate``, ``midtecg.evaluation``):

1. ``--labels NORM,SR``: median RR-interval CV <= 0.08 and median R-amplitude CV <= 0.15 over ``--n`` ECGs
   (``midtecg.evaluation.rhythm.rhythm_measures``; an ECG whose value cannot be measured counts as above every
   value). The real fold-10 records labelled NORM and SR are measured the same way, for reference.
2. ``--heart-rate 55`` against ``--heart-rate 110`` (labels NORM,SR, ``--n`` each, the same seed): the medians of
   the measured heart rate (``midtecg.data.heart_rate.heart_rate_bpm``) differ by at least 30 bpm.
3. Paired generation (one ECG per fold-10 record, from its conditions) evaluated with
   ``midtecg.evaluation.evaluate`` against fold 10 (train: folds 1-8): requested vs measured heart-rate MAE
   <= 8 bpm; Frechet distance at most twice its real-vs-real floor and below deepfake-ecg's (unconditional,
   the same number of ECGs, the same real records and embedding classifier); label adherence (TRTS macro AUC,
   superdiagnostic) at least 80 % of the real test records' AUC; privacy gate ``pass``.
4. ``midtecg generate -n 8 --labels NORM`` (a subprocess, one thread, model loading included) in at most 40
   CPU-seconds (user + system).

Resumable: each stage writes ``OUT/stages/<stage>.json`` and is skipped when it is there; generated ECGs
(``OUT/generated``) and evaluations (``OUT/eval``) are reused too. ``OUT/settings.json`` records the settings;
a later run with other settings into the same ``--out`` is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from midtecg.evaluation.verdicts import summary_value

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its two helper modules, beside it
from deepfake_ecg import deepfake_microvolts, deepfake_to_twelve_leads  # noqa: E402
from target_table import HEART_RATES, LABELS, STAGES, markdown, number, targets  # noqa: E402


def log(text: str) -> None:
    print(f"[targets] {text}", file=sys.stderr, flush=True)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_plain))
    tmp.replace(path)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def median_unmeasured_high(values) -> float | None:
    """Median with unmeasured (NaN) records counted as above every value; None when that is one of them."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return None
    return number(np.median(np.where(np.isfinite(v), v, np.inf)))


def spread(values) -> dict:
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = v[np.isfinite(v)]
    return {
        "n": int(v.size),
        "n_unmeasured": int(v.size - ok.size),
        "median": median_unmeasured_high(v),
        "median_of_measured": number(np.median(ok)) if ok.size else None,
        "q25": number(np.quantile(ok, 0.25)) if ok.size else None,
        "q75": number(np.quantile(ok, 0.75)) if ok.size else None,
    }


# ------------------------------------------------------------------------------------------------ stages
class Context:
    """What the stages share: the settings, the output folder, and the generator (loaded once, when needed)."""

    def __init__(self, args: argparse.Namespace):
        from midtecg.generate import DEFAULT_MODEL

        self.args = args
        self.out = Path(args.out)
        self.cache = Path(args.cache)
        self.model = Path(args.model) if args.model else DEFAULT_MODEL
        self._generator = None

    @property
    def generator(self):
        if self._generator is None:
            from midtecg.sample import load_generator

            self._generator = load_generator(self.model, device="cpu")
        return self._generator

    def generate(self, conditions, out_dir: Path | None = None, **kwargs):
        from midtecg.generate import generate

        return generate(
            conditions,
            self.generator,
            out_dir,
            formats=("npz",),
            sampler=self.args.sampler,
            steps=self.args.steps,
            seed=self.args.seed,
            progress=False,
            **kwargs,
        )

    def evaluation_config(self, title: str, **switches):
        import torch

        from midtecg.evaluation import EvaluationConfig
        from midtecg.evaluation.classifier import ClassifierTrainConfig

        return EvaluationConfig(
            utility=False,
            classifier_dir=str(self.out / "classifier"),
            classifier=ClassifierTrainConfig(epochs=self.args.classifier_epochs, device="cpu", seed=0),
            measure_cache_dir=str(self.out / "measurements"),
            limit=self.args.limit,
            seed=self.args.seed,
            progress=True,
            title=title,
            threads=torch.get_num_threads(),
            **switches,
        )

    def evaluate(self, name: str, synth: Path, config) -> dict:
        """``midtecg.evaluation.evaluate`` against fold 10 (train folds 1-8), or its saved result."""
        from midtecg.data.folds import DEFAULT_SPLITS
        from midtecg.evaluation import evaluate
        from midtecg.evaluation.suite import read_evaluation

        target = self.out / "eval" / name
        if (target / "evaluation.json").is_file():
            return read_evaluation(target)
        return evaluate(
            (self.cache, "test"),
            synth,
            train=(self.cache, list(DEFAULT_SPLITS["train"])),
            out_dir=target,
            config=config,
        )


def regularity(ctx: Context) -> dict:
    """Target 1: RR-interval and R-amplitude CV of NORM,SR ECGs, and of the real fold-10 NORM+SR records."""
    from midtecg.data.cache import load_prepared
    from midtecg.evaluation.rhythm import rhythm_measures
    from midtecg.generate import conditions_from_request

    ecgs = ctx.generate(conditions_from_request(ctx.args.n, labels=LABELS)).ecgs
    synth = rhythm_measures(ecgs.signals, ecgs.fs, cache_dir=False)
    test = load_prepared(ctx.cache, split="test")
    keep = ((test.records["NORM"] > 0) & (test.records["SR"] > 0)).to_numpy()
    out = {"synth": {k: spread(synth[k]) for k in ("rr_cv", "r_amp_cv")}, "real_n": int(keep.sum())}
    if keep.any():
        real = rhythm_measures(
            np.asarray(test.signals[keep]), test.manifest["rate"], cache_dir=str(ctx.out / "measurements")
        )
        out["real"] = {k: spread(real[k]) for k in ("rr_cv", "r_amp_cv")}
    return out


def heart_rate_contrast(ctx: Context) -> dict:
    """Target 2: measured heart rate of ECGs requested at 55 and at 110 bpm (labels NORM,SR, the same seed)."""
    from midtecg.data.heart_rate import heart_rate_bpm
    from midtecg.generate import conditions_from_request

    out = {}
    for rate in HEART_RATES:
        try:
            ecgs = ctx.generate(conditions_from_request(ctx.args.n, labels=LABELS, heart_rate=rate)).ecgs
        except ValueError as error:  # a model that is not conditioned on heart rate
            return {"error": str(error)}
        measured = heart_rate_bpm(ecgs.signals, ecgs.fs)
        ok = measured[np.isfinite(measured)]
        out[str(rate)] = {
            "n": int(measured.size),
            "n_unmeasured": int(measured.size - ok.size),
            "median_bpm": number(np.median(ok)) if ok.size else None,
        }
    return out


def paired(ctx: Context) -> dict:
    """Target 3: one ECG per fold-10 record from its conditions, evaluated by the suite."""
    from midtecg.generate import paired_conditions

    folder = ctx.out / "generated" / "paired"
    if not (folder / "ecgs.npz").is_file():
        conditions = paired_conditions(ctx.cache, "test", limit=ctx.args.limit)
        log(f"paired: generating {len(conditions)} ECGs")
        ctx.generate(conditions, folder, strict=False, overwrite=True)
    result = ctx.evaluate("paired", folder / "ecgs.npz", ctx.evaluation_config("targets: paired generation"))
    return evaluation_numbers(result)


def evaluation_numbers(result: dict) -> dict:
    frechet = (result.get("embedding") or {}).get("frechet") or {}
    privacy = (result.get("verdicts") or {}).get("privacy") or {}
    return {
        "n_real": summary_value(result, "n_real"),
        "n_synth": summary_value(result, "n_synth"),
        "n_pairs": summary_value(result, "n_pairs"),
        "frechet": number(summary_value(result, "fidelity.frechet")),
        "frechet_floor": number(summary_value(result, "fidelity.frechet.floor")),
        "frechet_floor_std": number(frechet.get("floor_std")),
        "frechet_n_floor": frechet.get("n_floor"),
        "heart_rate_mae_bpm": number(summary_value(result, "clinical.heart_rate_mae_bpm")),
        "heart_rate_error": summary_value(result, "clinical.heart_rate_error"),
        "label_ratio": number(summary_value(result, "labels.superdiagnostic.ratio")),
        "label_synth_auc": number(summary_value(result, "labels.superdiagnostic.synth_auc")),
        "label_real_auc": number(summary_value(result, "labels.superdiagnostic.real_auc")),
        "privacy_verdict": privacy.get("verdict"),
        "privacy_reason": privacy.get("reason"),
        "verdicts": {axis: v.get("verdict") for axis, v in (result.get("verdicts") or {}).items()},
        "errors": {k: str(v).splitlines()[0] for k, v in (result.get("errors") or {}).items()},
    }


def deepfake(ctx: Context) -> dict:
    """Target 3's comparison: deepfake-ecg's Frechet distance to the same real records, the same n."""
    if ctx.args.skip_deepfake:
        return {"skipped": "skipped (--skip-deepfake)"}
    try:
        import deepfakeecg  # noqa: F401 - optional, not a dependency of midtecg
    except ImportError:
        return {"skipped": "deepfake-ecg not installed"}
    from midtecg.generate import paired_conditions
    from midtecg.io import save_npz

    path = ctx.out / "generated" / "deepfake" / "ecgs.npz"
    if not path.is_file():
        n = len(paired_conditions(ctx.cache, "test", limit=ctx.args.limit))  # as many as the paired ECGs
        log(f"deepfake: generating {n} ECGs")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_npz(path, deepfake_to_twelve_leads(deepfake_microvolts(n, ctx.args.seed)), fs=100)
    config = ctx.evaluation_config("targets: deepfake-ecg", paired=False, rhythm=False, clinical=False, privacy=False)
    return evaluation_numbers(ctx.evaluate("deepfake", path, config))


def cli_time(ctx: Context) -> dict:
    """Target 4: ``midtecg generate -n 8 --labels NORM`` as a subprocess on one thread, CPU and wall time."""
    import midtecg

    with tempfile.TemporaryDirectory(prefix="targets-cli-", dir=ctx.out) as tmp:
        command = [
            sys.executable,
            "-m",
            "midtecg",
            "generate",
            "-n",
            "8",
            "--labels",
            "NORM",
            "--out",
            str(Path(tmp) / "out"),
            "--quiet",
            "--device",
            "cpu",
        ]
        command += ["--model", str(ctx.model)] if ctx.args.model else []
        command += ["--sampler", ctx.args.sampler] if ctx.args.sampler else []
        command += ["--steps", str(ctx.args.steps)] if ctx.args.steps else []
        source = str(Path(midtecg.__file__).resolve().parents[1])  # the midtecg this script imports
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    shown = ["midtecg", *command[3:]]
    shown[shown.index("--out") + 1] = "TMP"
    return {"command": " ".join(shown), "cpu_s": user + system, "user_s": user, "sys_s": system, "wall_s": wall}


STAGE_FUNCTIONS = {
    "regularity": regularity,
    "heart_rate_contrast": heart_rate_contrast,
    "paired": paired,
    "deepfake": deepfake,
    "cli_time": cli_time,
}


def run_stage(ctx: Context, name: str) -> dict:
    path = ctx.out / "stages" / f"{name}.json"
    if path.is_file():
        log(f"{name}: done (skipped; {path})")
        return json.loads(path.read_text())
    log(f"{name} ...")
    started = time.perf_counter()
    result = {**STAGE_FUNCTIONS[name](ctx), "seconds": round(time.perf_counter() - started, 1)}
    if "skipped" in result:  # not saved: a later run with deepfake-ecg installed (or wanted) makes the comparison
        log(f"{name}: {result['skipped']}")
        return result
    write_json(path, result)
    log(f"{name}: done in {result['seconds']:.0f} s")
    return result


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a checkpoint or exported model (default: the built-in model)")
    parser.add_argument("--cache", required=True, help="a 100 Hz cache written by `midtecg prepare` (PTB-XL folds)")
    parser.add_argument("--out", default="runs/targets", help="output folder (default runs/targets)")
    parser.add_argument("--n", type=int, default=64, help="ECGs per request for targets 1 and 2 (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-epochs", type=int, default=15, help="embedding classifier (default 15)")
    parser.add_argument("--limit", type=int, help="paired records: the first LIMIT of fold 10 (default all)")
    parser.add_argument("--sampler", help="sampler (default: the model's own)")
    parser.add_argument("--steps", type=int, help="sampler steps (default: the sampler's)")
    parser.add_argument("--skip-deepfake", action="store_true", help="no comparison with deepfake-ecg")
    args = parser.parse_args(argv)
    for flag in ("n", "classifier_epochs", "limit", "steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    manifest = Path(args.cache) / "manifest.json"
    if not manifest.is_file():
        parser.error(f"--cache {args.cache}: not a prepared cache (no manifest.json); run `midtecg prepare` first")
    if json.loads(manifest.read_text()).get("rate") != 100:
        parser.error(f"--cache {args.cache}: the targets are defined at 100 Hz")
    return args


def check_settings(out: Path, settings: dict) -> None:
    """Record the settings in ``OUT/settings.json``; refuse to resume a run made with other ones."""
    path = out / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = sorted(k for k in settings if before.get(k) != settings[k])
        if changed:
            differences = ", ".join(f"{k}: {before.get(k)!r} there, {settings[k]!r} now" for k in changed)
            raise SystemExit(f"{out} holds a run with other settings ({differences}); use another --out")
    write_json(path, settings)


def main(argv: list[str] | None = None) -> dict:
    import torch

    torch.set_num_threads(1)
    args = parse_args(argv)
    ctx = Context(args)
    settings = {
        "model": str(ctx.model),
        "cache": str(ctx.cache.resolve()),
        "n": args.n,
        "seed": args.seed,
        "limit": args.limit,
        "classifier_epochs": args.classifier_epochs,
        "sampler": args.sampler,
        "steps": args.steps,
    }
    ctx.out.mkdir(parents=True, exist_ok=True)
    check_settings(ctx.out, settings)
    stages = {name: run_stage(ctx, name) for name in STAGES}
    rows = targets(stages)
    report = {"settings": settings, "targets": rows, "met": sum(r["met"] is True for r in rows), "stages": stages}
    write_json(ctx.out / "targets.json", report)
    text = markdown(rows, settings)
    (ctx.out / "targets.md").write_text(text)
    print(text)
    return report


if __name__ == "__main__":
    main()
