"""The `midtecg` command: one sub-command per job (prepare, train, generate, evaluate, report)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SAMPLERS = ("ddpm", "ddim", "dpm++2m", "euler", "heun")  # midtecg.diffusion SAMPLER_NAMES + FLOW_SAMPLER_NAMES


def _prepare(args) -> None:
    from midtecg.data.cache import prepare

    out = prepare(
        args.source, args.out, rate=args.rate, source_rate=args.source_rate,
        on_missing="skip" if args.skip_missing else "error", progress=not args.quiet,
    )
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    folds = ", ".join(f"{fold}: {count}" for fold, count in manifest["folds"].items())
    print(f"prepared {manifest['count']} records at {manifest['rate']} Hz x {manifest['length']} samples in {out}")
    print(f"  records per fold: {folds}; heart rate not measurable: {manifest['heart_rate_missing']}")


def _train(args) -> None:
    from midtecg.training.config import load_config
    from midtecg.training.loop import train

    overrides = list(args.set)
    if args.cache:
        overrides.append(f"data.cache={json.dumps(str(args.cache))}")
    if args.out:
        overrides.append(f"out_dir={json.dumps(str(args.out))}")
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.device:
        overrides.append(f"train.device={json.dumps(args.device)}")
    config = load_config(args.config, overrides)
    checkpoint = train(config, resume=args.resume, progress=not args.quiet)
    print(f"checkpoint: {checkpoint}")


def _generate(args) -> None:
    from midtecg.generate import (conditions_from_csv, conditions_from_request, generate, paired_conditions)

    flags = {"labels": args.labels, "age": args.age, "sex": args.sex, "height": args.height,
             "weight": args.weight, "heart_rate": args.heart_rate}
    given = sorted(name for name, value in flags.items() if value is not None)
    if args.conditions and args.paired:
        raise ValueError("--conditions and --paired both say where conditions come from; give one")
    if (args.conditions or args.paired) and given:
        raise ValueError(f"--{given[0].replace('_', '-')} cannot be combined with --conditions or --paired")
    if (args.conditions or args.paired) and args.n is not None and not args.paired:
        raise ValueError("-n cannot be combined with --conditions: the file has one row per ECG")
    if args.conditions:
        conditions = conditions_from_csv(args.conditions)
    elif args.paired:
        conditions = paired_conditions(args.paired, split=args.split, limit=args.n)
    else:
        conditions = conditions_from_request(n=args.n or 1, **flags)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    result = generate(
        conditions, model=args.model, out_dir=args.out, formats=formats, fs=args.fs, sampler=args.sampler,
        steps=args.steps, guidance=args.guidance, seed=args.seed, batch_size=args.batch_size,
        device=args.device, progress=not args.quiet, strict=not args.paired,
    )
    print(f"generated {len(result.ecgs.signals)} ECGs at {result.ecgs.fs} Hz in {result.out_dir}")
    for kind, paths in result.files.items():
        print(f"  {kind}: {len(paths)} file(s), e.g. {paths[0]}")


def _evaluate(args) -> None:
    from midtecg.evaluation.suite import evaluate
    from midtecg.evaluation.utility import ClassifierTrainConfig

    real = Path(args.real)
    if not (real / "manifest.json").is_file():
        raise FileNotFoundError(f"--real {real}: not a prepared cache (no manifest.json); run `midtecg prepare` first")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    out = Path(args.out)
    if args.model:
        from midtecg.generate import generate, paired_conditions

        conditions = paired_conditions(real, split=args.split, limit=args.limit)
        synth = generate(
            conditions, model=args.model, out_dir=out / "generated", formats=("npz",), sampler=args.sampler,
            steps=args.steps, guidance=args.guidance, seed=args.seed, batch_size=args.batch_size,
            device=args.device, progress=not args.quiet, strict=False,
        ).ecgs
    else:
        synth = Path(args.synth)
        if not synth.exists():
            raise FileNotFoundError(f"--synth {synth} does not exist")
    device = None if args.device in (None, "auto") else args.device
    classifier = ClassifierTrainConfig(model=args.classifier_model, epochs=args.classifier_epochs, device=device,
                                       seed=args.seed)
    utility = ClassifierTrainConfig(model=args.utility_model, epochs=args.utility_epochs, device=device, seed=args.seed)
    if args.utility_synth and not Path(args.utility_synth).exists():
        raise FileNotFoundError(f"--utility-synth {args.utility_synth} does not exist")
    result = evaluate(
        (real, args.split), synth, train=(real, args.train_split), out_dir=out, utility=args.utility,
        embeddings=not args.no_embeddings, clinical=not args.no_clinical, privacy=not args.no_privacy,
        classifier_dir=args.classifier_dir, classifier_config=classifier, utility_config=utility,
        utility_synth=args.utility_synth, limit=args.limit,
        seed=args.seed, progress=not args.quiet, n_jobs=args.n_jobs, threads=args.threads, n_examples=args.examples,
    )
    summary = result["summary"]
    print(f"evaluated {summary.get('n_synth')} synthetic vs {summary.get('n_real')} real ECGs "
          f"({summary.get('pairing')}, {summary.get('n_pairs')} pairs) in {result['timings']['total']:.1f} s")
    for key in ("snr_db", "interlead_error_mean", "frechet", "frechet_floor", "mmd2", "psd_distance_db",
                "delineation_failure_synth", "privacy_gate"):
        if key in summary:
            print(f"  {key}: {summary[key]}")
    print(f"  {out / 'evaluation.json'}\n  {out / 'report.html'}")


def _report(args) -> None:
    from midtecg.evaluation.suite import write_report

    source = Path(args.evaluation_json)
    out = Path(args.out) if args.out else (source if source.is_dir() else source.parent) / "report_rebuilt.html"
    path = write_report(source, out)
    print(f"report: {path}")


def build_parser() -> argparse.ArgumentParser:
    from midtecg import __version__

    parser = argparse.ArgumentParser(prog="midtecg", description="Synthetic 12-lead ECGs: prepare, train, generate, evaluate, report.")
    parser.add_argument("--version", action="version", version=f"midtecg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="cache a PTB-XL folder (or a WFDB folder + CSV) as arrays for training and evaluation")
    p.add_argument("source", help="a PTB-XL folder (ptbxl_database.csv, records500/ ...) or a generic WFDB dataset folder")
    p.add_argument("out", help="output folder for signals.npy, records.csv and manifest.json")
    p.add_argument("--rate", type=int, default=100, choices=(100, 500), help="sampling rate of the cache (default 100 Hz)")
    p.add_argument("--source-rate", default="500", choices=("500", "100"),
                   help="read the 500 Hz records and resample (default, as the authors) or the official 100 Hz files")
    p.add_argument("--skip-missing", action="store_true", help="skip records listed in the CSV but absent on disk (with a warning)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_prepare)

    p = sub.add_parser("train", help="train a generator from a TOML config")
    p.add_argument("config", help="experiment config, e.g. configs/tiny.toml")
    p.add_argument("--cache", help="prepared cache folder (overrides [data] cache)")
    p.add_argument("--out", help="run folder for checkpoints and logs (overrides out_dir)")
    p.add_argument("--steps", type=int, help="number of training steps (overrides [train] steps)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue exactly from the run folder's newest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config value")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)

    p = sub.add_parser("generate", help="sample synthetic 12-lead ECGs (the built-in default model unless --model)")
    p.add_argument("-n", type=int, help="number of ECGs (default 1; with --paired, at most this many)")
    p.add_argument("--labels", help="SCP codes or descriptions, comma-separated, e.g. NORM or IMI,SR")
    p.add_argument("--age", type=float, help="age in years")
    p.add_argument("--sex", help="male or female")
    p.add_argument("--height", type=float, help="height in cm")
    p.add_argument("--weight", type=float, help="weight in kg")
    p.add_argument("--heart-rate", type=float, help="heart rate in bpm")
    p.add_argument("--conditions", help="CSV with one row per ECG: labels, age, sex, height, weight, heart_rate")
    p.add_argument("--paired", metavar="CACHE", help="copy the conditions of the real records of a prepared cache")
    p.add_argument("--split", default="test", help="with --paired: train, val or test (default test)")
    p.add_argument("--model", help="a checkpoint or run folder (default: the built-in model)")
    p.add_argument("--out", default="out/generated", help="output folder (default out/generated)")
    p.add_argument("--format", default="wfdb,png", help="any of wfdb, npz, csv, png, pdf, comma-separated (default wfdb,png)")
    p.add_argument("--fs", type=int, help="output rate; a multiple of the model's rate (e.g. 500)")
    p.add_argument("--sampler", choices=SAMPLERS,
                   help="diffusion models: ddpm (200 ancestral steps), ddim, dpm++2m; rectified-flow models: euler, "
                   "heun (default: the model's own, ddpm unless its config names another)")
    p.add_argument("--steps", type=int, help="sampler steps (ddim, dpm++2m, euler, heun)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = plain conditional)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_generate)

    p = sub.add_parser("evaluate", help="evaluate synthetic ECGs against a prepared cache: JSON + HTML report")
    p.add_argument("--real", required=True, metavar="CACHE", help="prepared cache with the real records")
    p.add_argument("--split", default="test", help="split of the real records to evaluate against (default test)")
    p.add_argument("--train-split", default="train",
                   help="split the generator was trained on: privacy, embedding classifier, utility (default train)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--synth", metavar="PATH", help="synthetic ECGs: a WFDB folder (+ conditions.csv), an .npz "
                        "or a `midtecg generate` output folder")
    source.add_argument("--model", metavar="MODEL_DIR", help="generate one ECG per real record of the split "
                        "from its conditions with this checkpoint or run folder, then evaluate")
    p.add_argument("--out", required=True, help="output folder for evaluation.json and report.html")
    util = p.add_mutually_exclusive_group()
    util.add_argument("--utility", dest="utility", action="store_true", help="also run the utility experiments")
    util.add_argument("--no-utility", dest="utility", action="store_false", help="skip them (default)")
    p.set_defaults(utility=False)
    p.add_argument("--classifier-dir", help="cache of the embedding classifier (default OUT/classifier; share one "
                   "folder between evaluations to train it once)")
    p.add_argument("--classifier-model", default="small", choices=("small", "xresnet1d50", "xresnet1d101"),
                   help="embedding classifier (default small)")
    p.add_argument("--classifier-epochs", type=int, default=50, help="embedding classifier epochs (default 50)")
    p.add_argument("--utility-model", default="small", choices=("small", "xresnet1d50", "xresnet1d101"),
                   help="utility classifier (default small; the PTB-XL benchmark uses xresnet1d101)")
    p.add_argument("--utility-epochs", type=int, default=50, help="utility classifier epochs (default 50)")
    p.add_argument("--utility-synth", metavar="PATH", help="synthetic training records for the utility classifiers, "
                   "e.g. generated from the training records' conditions (default: --synth)")
    p.add_argument("--limit", type=int,
                   help="only the first N real records of the split (and their synthetic partners)")
    p.add_argument("--examples", type=int, default=4, help="paired 12-lead example plots in the report (default 4)")
    p.add_argument("--no-embeddings", action="store_true", help="skip the classifier, Frechet distance and KID")
    p.add_argument("--no-clinical", action="store_true", help="skip delineation")
    p.add_argument("--no-privacy", action="store_true", help="skip the privacy audit")
    p.add_argument("--n-jobs", type=int, default=1, help="worker processes for the delineation (default 1)")
    p.add_argument("--threads", type=int, help="torch and BLAS threads (default: unchanged; 1 is much faster on "
                   "cores shared with other work)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N (generation and classifiers)")
    p.add_argument("--sampler", choices=SAMPLERS, help="with --model (default: the model's own)")
    p.add_argument("--steps", type=int, help="with --model: sampler steps (ddim, dpm++2m, euler, heun)")
    p.add_argument("--guidance", type=float, default=1.0, help="with --model: classifier-free guidance scale")
    p.add_argument("--batch-size", type=int, default=32, help="with --model: generation batch size")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("report", help="rebuild the HTML report from a saved evaluation.json")
    p.add_argument("evaluation_json", help="evaluation.json written by `midtecg evaluate` (or its folder)")
    p.add_argument("--out", help="HTML file to write (default: report_rebuilt.html next to the JSON)")
    p.set_defaults(run=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        print(f"midtecg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"midtecg {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
