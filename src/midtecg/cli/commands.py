"""The handlers of the `midtecg` sub-commands, one per sub-command: ``run_NAME(args)`` takes the parsed arguments.

Each checks what it can first (input files, output folders, option combinations) and only then imports the
heavy modules it needs (torch, pandas, matplotlib, inside the function), so a typo is refused at once.
"""

from __future__ import annotations

import json
from pathlib import Path

from midtecg.cli.arguments import existing, parse_split, prepared_cache
from midtecg.files import check_output_folder
from midtecg.output_layout import OUTPUT_ENTRIES

__all__ = ["run_prepare", "run_train", "run_generate", "run_evaluate", "run_report", "run_import_sssd_ecg"]


def run_prepare(args) -> None:
    existing(args.source, "source", "folder")
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


def run_train(args) -> None:
    existing(args.config, "config", "file")
    if args.cache:
        prepared_cache(args.cache, "--cache")
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


def sampling_options(args) -> dict:
    """The arguments of ``generate`` that ``midtecg generate`` and ``midtecg evaluate --model`` share."""
    return {
        "sampler": args.sampler,
        "steps": args.steps,
        "guidance": args.guidance,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "device": args.device,
        "progress": not args.quiet,
    }


def run_generate(args) -> None:
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
        existing(args.conditions, "--conditions", "file")
    if args.paired:
        prepared_cache(args.paired, "--paired")
    if args.model:
        existing(args.model, "--model")
    check_output_folder(args.out, OUTPUT_ENTRIES, args.overwrite)

    from midtecg.generate import conditions_from_csv, conditions_from_request, generate, paired_conditions

    if args.conditions:
        conditions = conditions_from_csv(args.conditions)
    elif args.paired:
        conditions = paired_conditions(args.paired, split=parse_split(args.split), limit=args.n)
    else:
        conditions = conditions_from_request(n=args.n or 1, **flags)
    result = generate(
        conditions,
        model=args.model,
        out_dir=args.out,
        formats=args.format,
        fs=args.fs,
        **sampling_options(args),
        strict=not args.paired,
        overwrite=args.overwrite,
        estimate=True,
    )
    print(f"generated {len(result.ecgs.signals)} ECGs at {result.ecgs.fs} Hz in {result.out_dir}")
    for kind, paths in result.files.items():
        print(f"  {kind}: {len(paths)} file(s), e.g. {paths[0]}")


def run_evaluate(args) -> None:
    real = prepared_cache(args.real, "--real")
    for flag, path in (("--synth", args.synth), ("--utility-synth", args.utility_synth), ("--model", args.model)):
        if path:
            existing(path, flag)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise FileExistsError(f"--out {args.out}: exists and is not a folder")

    from midtecg.evaluation.classifier import ClassifierTrainConfig
    from midtecg.evaluation.config import EvaluationConfig
    from midtecg.evaluation.suite import evaluate

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
    split = parse_split(args.split)
    holdout = None
    if args.holdout:
        holdout = Path(args.holdout) if Path(args.holdout).exists() else (real, parse_split(args.holdout))
    out = Path(args.out)
    if args.model:
        from midtecg.generate import generate, paired_conditions

        conditions = paired_conditions(real, split=split, limit=args.limit)
        synth = generate(
            conditions,
            model=args.model,
            out_dir=out / "generated",
            formats=("npz",),
            **sampling_options(args),
            strict=False,
            overwrite=True,  # evaluate's own copy
        ).ecgs
    else:
        synth = Path(args.synth)
    result = evaluate(
        (real, split),
        synth,
        train=(real, parse_split(args.train_split)),
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


def run_report(args) -> None:
    source = existing(args.evaluation_json, "evaluation_json")
    from midtecg.evaluation.suite import write_report

    out = Path(args.out) if args.out else (source if source.is_dir() else source.parent) / "report_rebuilt.html"
    path = write_report(source, out, overwrite=args.overwrite)
    print(f"report: {path}")


def run_import_sssd_ecg(args) -> None:
    existing(args.checkpoint, "checkpoint", "file")
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
