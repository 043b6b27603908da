"""The `midtecg` command: one sub-command per job (prepare, train, generate, evaluate, report, import-sssd-ecg).

Arguments are checked before anything heavy is imported (numbers, device names, output formats, that input
files exist, that an output folder does not hold earlier results), so a typo is refused at once. Expected
failures (bad input files, bad values, file-system errors such as a read-only or too long path) end in one
line ``midtecg COMMAND: error: ...`` naming the path or value and exit status 2; anything else is a bug and
shows its traceback. ``MIDTECG_TRACEBACK=1`` shows the traceback of expected failures too.

How it is cut: this module builds the parser (:func:`build_parser`) and runs a command (:func:`main`, the
``midtecg`` entry point); :mod:`~midtecg.cli.arguments` holds the argument types and checks,
:mod:`~midtecg.cli.commands` one handler per sub-command.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile

from midtecg.cli import commands
from midtecg.cli.arguments import COUNT, FINITE, NON_NEGATIVE, SAMPLERS, device_name, output_formats

__all__ = ["main", "build_parser", "EXPECTED_ERRORS"]

# Expected failures: bad files and values (DataError, JSON / TOML / CSV errors are ValueErrors), the file
# system (OSError), unreadable archives, torch's runtime errors (no GPU, out of memory), memory, and a
# training loss that diverged (FloatingPointError).
EXPECTED_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError, MemoryError, FloatingPointError)


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
    p.set_defaults(run=commands.run_prepare)

    p = sub.add_parser("train", help="train a generator from a TOML config")
    p.add_argument("config", help="experiment config, e.g. configs/tiny.toml")
    p.add_argument("--cache", help="prepared cache folder (overrides [data] cache)")
    p.add_argument("--out", help="run folder for checkpoints and logs (overrides out_dir)")
    p.add_argument("--steps", type=COUNT, help="number of training steps (overrides [train] steps)")
    p.add_argument("--device", type=device_name, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--resume", action="store_true", help="continue exactly from the run folder's newest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config value")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=commands.run_train)

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
        type=output_formats,
        default="wfdb,png",
        help="any of wfdb, npz, csv, png, pdf, comma-separated (default wfdb,png)",
    )
    p.add_argument("--fs", type=COUNT, help="output rate in Hz; a multiple of the model's rate (e.g. 500)")
    p.add_argument(
        "--sampler",
        choices=SAMPLERS,
        help="diffusion models: ddpm (200 ancestral steps), ddim, dpm++2m; rectified-flow models: euler, "
        "heun (default: the model's own, ddpm unless its config names another)",
    )
    p.add_argument("--steps", type=COUNT, help="sampler steps (ddim, dpm++2m, euler, heun)")
    p.add_argument(
        "--guidance", type=FINITE, default=1.0, help="classifier-free guidance scale (1 = plain conditional)"
    )
    p.add_argument(
        "--seed",
        type=NON_NEGATIVE,
        default=0,
        help="each ECG's noise comes from (seed, its row number), so the same seed gives the same ECGs "
        "whatever --batch-size (default 0)",
    )
    p.add_argument(
        "--batch-size",
        type=COUNT,
        default=32,
        help="ECGs sampled together (default 32); changes speed and memory, not the ECGs",
    )
    p.add_argument("--device", type=device_name, default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier results in --out (refused otherwise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=commands.run_generate)

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
        type=device_name,
        default="auto",
        help="auto (default), cpu, cuda, cuda:N or mps (generation and classifiers)",
    )
    p.add_argument("--sampler", choices=SAMPLERS, help="with --model (default: the model's own)")
    p.add_argument("--steps", type=COUNT, help="with --model: sampler steps (ddim, dpm++2m, euler, heun)")
    p.add_argument("--guidance", type=FINITE, default=1.0, help="with --model: classifier-free guidance scale")
    p.add_argument(
        "--batch-size",
        type=COUNT,
        default=32,
        help="with --model: generation batch size (changes speed and memory, not the ECGs)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=commands.run_evaluate)

    p = sub.add_parser("report", help="rebuild the HTML report from a saved evaluation.json")
    p.add_argument("evaluation_json", help="evaluation.json written by `midtecg evaluate` (or its folder)")
    p.add_argument("--out", help="HTML file to write (default: report_rebuilt.html next to the JSON)")
    p.add_argument("--overwrite", action="store_true", help="replace the HTML file if it exists")
    p.set_defaults(run=commands.run_report)

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
    p.set_defaults(run=commands.run_import_sssd_ecg)
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
