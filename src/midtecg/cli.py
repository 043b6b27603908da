"""The `midtecg` command: one sub-command per job (prepare, train, generate, evaluate, report, import-sssd-ecg).

Arguments are checked before anything heavy is imported (numbers, device names, output formats, that input
files exist, that an output folder does not hold earlier results), so a typo is refused at once. Expected
failures (bad input files, bad values, file-system errors such as a read-only or too long path) end in one
line ``midtecg COMMAND: error: ...`` naming the path or value and exit status 2; anything else is a bug and
shows its traceback. ``MIDTECG_TRACEBACK=1`` shows the traceback of expected failures too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import zipfile
from pathlib import Path

from midtecg.device import check_device_name
from midtecg.files import check_output_folder
from midtecg.output_layout import OUTPUT_ENTRIES, check_formats

# Expected failures: bad files and values (DataError, JSON / TOML / CSV errors are ValueErrors), the file
# system (OSError), unreadable archives, torch's runtime errors (no GPU, out of memory), memory, and a
# training loss that diverged (FloatingPointError).
EXPECTED_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError, MemoryError, FloatingPointError)


def _number_type(kind, low=None, what="a number"):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


COUNT = _number_type(int, 1, "a whole number of at least 1")
NON_NEGATIVE = _number_type(int, 0, "a whole number of at least 0")
FINITE = _number_type(float, None, "a finite number")


def _device(text: str) -> str:
    try:
        return check_device_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _formats(text: str) -> tuple[str, ...]:
    try:
        return check_formats(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _existing(path, flag: str, kind: str = "path") -> Path:
    """``path`` when it exists (``kind``: "file", "folder" or "path"), else ``FileNotFoundError`` naming ``flag``."""
    p = Path(path)
    ok = p.is_file() if kind == "file" else p.is_dir() if kind == "folder" else p.exists()
    if not ok:
        what = {"file": "no such file", "folder": "no such folder"}.get(kind, "does not exist")
        raise FileNotFoundError(f"{flag} {p}: {what}")
    return p


def _prepared_cache(path, flag: str) -> Path:
    p = Path(path)
    if not (p / "manifest.json").is_file():
        raise FileNotFoundError(f"{flag} {p}: not a prepared cache (no manifest.json); run `midtecg prepare` first")
    return p


# midtecg.diffusion SAMPLER_NAMES + FLOW_SAMPLER_NAMES, restated so that arguments are checked before torch loads
SAMPLERS = ("ddpm", "ddim", "dpm++2m", "euler", "heun")


def _prepare(args) -> None:
    _existing(args.source, "source", "folder")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise FileExistsError(f"out {args.out}: exists and is not a folder")
    from midtecg.data.cache import prepare

    out = prepare(
        args.source,
        args.out,
        rate=args.rate,
        source_rate=args.source_rate,
        on_missing="skip" if args.skip_missing else "error",
        progress=not args.quiet,
    )
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    folds = ", ".join(f"{fold}: {count}" for fold, count in manifest["folds"].items())
    print(f"prepared {manifest['count']} records at {manifest['rate']} Hz x {manifest['length']} samples in {out}")
    print(f"  records per fold: {folds}; heart rate not measurable: {manifest['heart_rate_missing']}")


def _train(args) -> None:
    _existing(args.config, "config", "file")
    if args.cache:
        _prepared_cache(args.cache, "--cache")
    from midtecg.training.config import load_config

    overrides = list(args.set)
    if args.cache:
        overrides.append(f"data.cache={json.dumps(str(args.cache))}")
    if args.out:
        overrides.append(f"out_dir={json.dumps(str(args.out))}")
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.device:
        overrides.append(f"train.device={json.dumps(args.device)}")
    config = load_config(args.config, overrides)  # checked before torch is imported; errors name file and key
    from midtecg.training.loop import train

    checkpoint = train(config, resume=args.resume, progress=not args.quiet)
    print(f"checkpoint: {checkpoint}")


def _generate(args) -> None:
    flags = {
        "labels": args.labels,
        "age": args.age,
        "sex": args.sex,
        "height": args.height,
        "weight": args.weight,
        "heart_rate": args.heart_rate,
    }
    given = sorted(name for name, value in flags.items() if value is not None)
    if args.conditions and args.paired:
        raise ValueError("--conditions and --paired both say where conditions come from; give one")
    if (args.conditions or args.paired) and given:
        raise ValueError(f"--{given[0].replace('_', '-')} cannot be combined with --conditions or --paired")
    if args.conditions and args.n is not None:
        raise ValueError("-n cannot be combined with --conditions: the file has one row per ECG")
    if args.conditions:
        _existing(args.conditions, "--conditions", "file")
    if args.paired:
        _prepared_cache(args.paired, "--paired")
    if args.model:
        _existing(args.model, "--model")
    check_output_folder(args.out, OUTPUT_ENTRIES, args.overwrite)

    from midtecg.generate import conditions_from_csv, conditions_from_request, generate, paired_conditions

    if args.conditions:
        conditions = conditions_from_csv(args.conditions)
    elif args.paired:
        conditions = paired_conditions(args.paired, split=_split_arg(args.split), limit=args.n)
    else:
        conditions = conditions_from_request(n=args.n or 1, **flags)
    result = generate(
        conditions,
        model=args.model,
        out_dir=args.out,
        formats=args.format,
        fs=args.fs,
        sampler=args.sampler,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.quiet,
        strict=not args.paired,
        overwrite=args.overwrite,
        estimate=True,
    )
    print(f"generated {len(result.ecgs.signals)} ECGs at {result.ecgs.fs} Hz in {result.out_dir}")
    for kind, paths in result.files.items():
        print(f"  {kind}: {len(paths)} file(s), e.g. {paths[0]}")


def _split_arg(text: str):
    """A split name (train, val, test) or comma-separated fold numbers ("9", "9,10") as a list of ints."""
    parts = [p.strip() for p in text.split(",")]
    return [int(p) for p in parts] if all(p.isdigit() for p in parts) else text


def _evaluate(args) -> None:
    real = _prepared_cache(args.real, "--real")
    for flag, path in (("--synth", args.synth), ("--utility-synth", args.utility_synth), ("--model", args.model)):
        if path:
            _existing(path, flag)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise FileExistsError(f"--out {args.out}: exists and is not a folder")

    from midtecg.evaluation.config import EvaluationConfig
    from midtecg.evaluation.suite import evaluate
    from midtecg.evaluation.utility import ClassifierTrainConfig

    device = None if args.device == "auto" else args.device
    config = EvaluationConfig(
        paired=not args.no_paired,
        embeddings=not args.no_embeddings,
        rhythm=not args.no_rhythm,
        clinical=not args.no_clinical,
        privacy=not args.no_privacy,
        utility=args.utility,
        classifier=ClassifierTrainConfig(
            model=args.classifier_model, epochs=args.classifier_epochs, device=device, seed=args.seed
        ),
        classifier_dir=args.classifier_dir,
        utility_classifier=ClassifierTrainConfig(
            model=args.utility_model, epochs=args.utility_epochs, device=device, seed=args.seed
        ),
        limit=args.limit,
        n_examples=args.examples,
        seed=args.seed,
        n_jobs=args.n_jobs,
        threads=args.threads,
        progress=not args.quiet,
        measure_cache=not args.no_cache,
    )
    holdout = None
    if args.holdout:
        holdout = Path(args.holdout) if Path(args.holdout).exists() else (real, _split_arg(args.holdout))
    out = Path(args.out)
    if args.model:
        from midtecg.generate import generate, paired_conditions

        conditions = paired_conditions(real, split=args.split, limit=args.limit)
        synth = generate(
            conditions,
            model=args.model,
            out_dir=out / "generated",
            formats=("npz",),
            sampler=args.sampler,
            steps=args.steps,
            guidance=args.guidance,
            seed=args.seed,
            batch_size=args.batch_size,
            device=args.device,
            progress=not args.quiet,
            strict=False,
            overwrite=True,  # evaluate's own copy
        ).ecgs
    else:
        synth = Path(args.synth)
    result = evaluate(
        (real, _split_arg(args.split)),
        synth,
        train=(real, _split_arg(args.train_split)),
        holdout=holdout,
        utility_synth=args.utility_synth,
        out_dir=out,
        config=config,
    )
    real_n, synth_n = result["inputs"]["real"]["n"], result["inputs"]["synth"]["n"]
    pairs = result["pairing"]["n_pairs"]
    print(
        f"evaluated {synth_n} synthetic vs {real_n} real ECGs ({pairs} pairs by ecg_id) in "
        f"{result['timings']['total']:.1f} s"
    )
    for axis, verdict in result["verdicts"].items():
        print(f"  {axis:9s} {verdict['verdict']:16s} {verdict.get('reason', '')}")
    print(f"  {out / 'evaluation.json'}\n  {out / 'report.html'}")


def _report(args) -> None:
    source = _existing(args.evaluation_json, "evaluation_json")
    from midtecg.evaluation.suite import write_report

    out = Path(args.out) if args.out else (source if source.is_dir() else source.parent) / "report_rebuilt.html"
    path = write_report(source, out, overwrite=args.overwrite)
    print(f"report: {path}")


def _import_sssd_ecg(args) -> None:
    _existing(args.checkpoint, "checkpoint", "file")
    from midtecg.convert import import_sssd_ecg

    out = import_sssd_ecg(args.checkpoint, args.out, config=args.config)
    saved = json.loads((out / "config.json").read_text())
    model, schedule = saved["model"], saved["schedule"]
    print(
        f"imported SSSD-ECG ({model['blocks']} blocks x {model['channels']} channels, S4 state {model['state_size']}, "
        f"{saved['signal']['length']} samples at {saved['signal']['fs']} Hz, T = {schedule['num_steps']}; "
        f"configuration {saved['imported']['config']}) into {out}"
    )
    print(f"  try: midtecg generate --model {out} -n 4 --labels NORM --sampler dpm++2m --steps 20")


def build_parser() -> argparse.ArgumentParser:
    from midtecg import __version__

    parser = argparse.ArgumentParser(
        prog="midtecg", description="Synthetic 12-lead ECGs: prepare, train, generate, evaluate, report."
    )
    parser.add_argument("--version", action="version", version=f"midtecg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "prepare", help="cache a PTB-XL folder (or a WFDB folder + CSV) as arrays for training and evaluation"
    )
    p.add_argument(
        "source", help="a PTB-XL folder (ptbxl_database.csv, records500/ ...) or a generic WFDB dataset folder"
    )
    p.add_argument("out", help="output folder for signals.npy, records.csv and manifest.json")
    p.add_argument(
        "--rate", type=int, default=100, choices=(100, 500), help="sampling rate of the cache (default 100 Hz)"
    )
    p.add_argument(
        "--source-rate",
        default="500",
        choices=("500", "100"),
        help="read the 500 Hz records and resample (default, as the authors) or the official 100 Hz files",
    )
    p.add_argument(
        "--skip-missing", action="store_true", help="skip records listed in the CSV but absent on disk (with a warning)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_prepare)

    p = sub.add_parser("train", help="train a generator from a TOML config")
    p.add_argument("config", help="experiment config, e.g. configs/tiny.toml")
    p.add_argument("--cache", help="prepared cache folder (overrides [data] cache)")
    p.add_argument("--out", help="run folder for checkpoints and logs (overrides out_dir)")
    p.add_argument("--steps", type=COUNT, help="number of training steps (overrides [train] steps)")
    p.add_argument("--device", type=_device, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--resume", action="store_true", help="continue exactly from the run folder's newest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config value")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)

    p = sub.add_parser("generate", help="sample synthetic 12-lead ECGs (the built-in default model unless --model)")
    p.add_argument("-n", type=COUNT, help="number of ECGs (default 1; with --paired, at most this many)")
    p.add_argument("--labels", help="SCP codes or descriptions, comma-separated, e.g. NORM or IMI,SR")
    p.add_argument("--age", type=FINITE, help="age in years")
    p.add_argument("--sex", help="male or female")
    p.add_argument("--height", type=FINITE, help="height in cm")
    p.add_argument("--weight", type=FINITE, help="weight in kg")
    p.add_argument("--heart-rate", type=FINITE, help="heart rate in bpm")
    p.add_argument("--conditions", help="CSV with one row per ECG: labels, age, sex, height, weight, heart_rate")
    p.add_argument("--paired", metavar="CACHE", help="copy the conditions of the real records of a prepared cache")
    p.add_argument("--split", default="test", help="with --paired: train, val or test (default test)")
    p.add_argument("--model", help="a checkpoint or run folder (default: the built-in model)")
    p.add_argument("--out", default="out/generated", help="output folder (default out/generated)")
    p.add_argument(
        "--format",
        type=_formats,
        default="wfdb,png",
        help="any of wfdb, npz, csv, png, pdf, comma-separated (default wfdb,png)",
    )
    p.add_argument("--fs", type=COUNT, help="output rate in Hz; a multiple of the model's rate (e.g. 500)")
    p.add_argument("--sampler", choices=SAMPLERS,
                   help="diffusion models: ddpm (200 ancestral steps), ddim, dpm++2m; rectified-flow models: euler, "
                   "heun (default: the model's own, ddpm unless its config names another)")
    p.add_argument("--steps", type=COUNT, help="sampler steps (ddim, dpm++2m, euler, heun)")
    p.add_argument(
        "--guidance", type=FINITE, default=1.0, help="classifier-free guidance scale (1 = plain conditional)"
    )
    p.add_argument("--seed", type=NON_NEGATIVE, default=0,
                   help="each ECG's noise comes from (seed, its row number), so the same seed gives the same ECGs "
                   "whatever --batch-size (default 0)")
    p.add_argument("--batch-size", type=COUNT, default=32,
                   help="ECGs sampled together (default 32); changes speed and memory, not the ECGs")
    p.add_argument("--device", type=_device, default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier results in --out (refused otherwise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_generate)

    p = sub.add_parser("evaluate", help="evaluate synthetic ECGs against a prepared cache: JSON + HTML report")
    p.add_argument("--real", required=True, metavar="CACHE", help="prepared cache with the real records")
    p.add_argument("--split", default="test", help="split of the real records to evaluate against (default test)")
    p.add_argument(
        "--train-split",
        default="train",
        help="split the generator was trained on: privacy, embedding classifier, utility (default train)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--synth",
        metavar="PATH",
        help="synthetic ECGs: a WFDB folder (+ conditions.csv), an .npz or a `midtecg generate` output folder",
    )
    source.add_argument(
        "--model",
        metavar="MODEL_DIR",
        help="generate one ECG per real record of the split "
        "from its conditions with this checkpoint or run folder, then evaluate",
    )
    p.add_argument("--out", required=True, help="output folder for evaluation.json and report.html")
    util = p.add_mutually_exclusive_group()
    util.add_argument("--utility", dest="utility", action="store_true", help="also run the utility experiments")
    util.add_argument("--no-utility", dest="utility", action="store_false", help="skip them (default)")
    p.set_defaults(utility=False)
    p.add_argument(
        "--classifier-dir",
        help="cache of the embedding classifier (default OUT/classifier; share one "
        "folder between evaluations to train it once)",
    )
    p.add_argument(
        "--classifier-model",
        default="small",
        choices=("small", "xresnet1d50", "xresnet1d101"),
        help="embedding classifier (default small)",
    )
    p.add_argument("--classifier-epochs", type=COUNT, default=50, help="embedding classifier epochs (default 50)")
    p.add_argument(
        "--utility-model",
        default="small",
        choices=("small", "xresnet1d50", "xresnet1d101"),
        help="utility classifier (default small; the PTB-XL benchmark uses xresnet1d101)",
    )
    p.add_argument("--utility-epochs", type=COUNT, default=50, help="utility classifier epochs (default 50)")
    p.add_argument(
        "--utility-synth",
        metavar="PATH",
        help="synthetic training records for the utility classifiers, "
        "e.g. generated from the training records' conditions (default: --synth)",
    )
    p.add_argument(
        "--limit", type=COUNT, help="only the first N real records of the split (and their synthetic partners)"
    )
    p.add_argument(
        "--examples", type=NON_NEGATIVE, default=4, help="paired 12-lead example plots in the report (default 4)"
    )
    p.add_argument(
        "--holdout",
        metavar="SPLIT_OR_PATH",
        help="real records the generator never saw, for the privacy "
        "audit: a split of --real (e.g. val or 9) or any ECG set (default: the --split records)",
    )
    p.add_argument("--no-paired", action="store_true", help="skip the paired metrics even when records pair by ecg_id")
    p.add_argument(
        "--no-embeddings",
        action="store_true",
        help="skip the classifier: Frechet distance, KID, precision / recall and label adherence",
    )
    p.add_argument("--no-rhythm", action="store_true", help="skip the rhythm measures")
    p.add_argument("--no-cache", action="store_true", help="do not cache the real records' measurements")
    p.add_argument("--no-clinical", action="store_true", help="skip delineation")
    p.add_argument("--no-privacy", action="store_true", help="skip the privacy audit")
    p.add_argument("--n-jobs", type=COUNT, default=1, help="worker processes for delineation and rhythm (default 1)")
    p.add_argument(
        "--threads",
        type=COUNT,
        help="torch and BLAS threads (default: unchanged; 1 is much faster on cores shared with other work)",
    )
    p.add_argument("--seed", type=NON_NEGATIVE, default=0)
    p.add_argument(
        "--device",
        type=_device,
        default="auto",
        help="auto (default), cpu, cuda, cuda:N or mps (generation and classifiers)",
    )
    p.add_argument("--sampler", choices=SAMPLERS, help="with --model (default: the model's own)")
    p.add_argument("--steps", type=COUNT, help="with --model: sampler steps (ddim, dpm++2m, euler, heun)")
    p.add_argument("--guidance", type=FINITE, default=1.0, help="with --model: classifier-free guidance scale")
    p.add_argument("--batch-size", type=COUNT, default=32,
                   help="with --model: generation batch size (changes speed and memory, not the ECGs)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("report", help="rebuild the HTML report from a saved evaluation.json")
    p.add_argument("evaluation_json", help="evaluation.json written by `midtecg evaluate` (or its folder)")
    p.add_argument("--out", help="HTML file to write (default: report_rebuilt.html next to the JSON)")
    p.add_argument("--overwrite", action="store_true", help="replace the HTML file if it exists")
    p.set_defaults(run=_report)

    p = sub.add_parser(
        "import-sssd-ecg",
        help="convert a checkpoint of the reference SSSD-ECG code (ITER.pkl, e.g. "
        "the published PTB-XL model) into a midtecg model folder",
    )
    p.add_argument("checkpoint", help="the reference's checkpoint, a torch.save dict with model_state_dict")
    p.add_argument(
        "--config",
        metavar="RUN_CONFIG.json",
        help="the run's JSON config (wavenet_config, "
        "diffusion_config); default: the model from the tensor shapes, the published schedule, 100 Hz",
    )
    p.add_argument("out", help="output model folder (config.json + model.safetensors) for --model")
    p.set_defaults(run=_import_sssd_ecg)
    return parser


def _message(error: BaseException) -> str:
    """One line for an expected failure; file-system errors name their path."""
    if isinstance(error, OSError) and error.filename is not None:
        paths = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 is not None else "")
        return f"{paths}: {error.strerror or type(error).__name__}"
    if isinstance(error, MemoryError):
        return f"out of memory{f' ({error})' if str(error) else ''}; try a smaller --batch-size or -n"
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except EXPECTED_ERRORS as error:
        if os.environ.get("MIDTECG_TRACEBACK"):
            raise
        print(f"midtecg {args.command}: error: {_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"midtecg {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
