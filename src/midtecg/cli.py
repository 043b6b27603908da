"""The `midtecg` command: one sub-command per job (prepare, train, generate, evaluate, report)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _prepare(args) -> None:
    from midtecg.data.cache import prepare

    out = prepare(
        args.source, args.out, rate=args.rate, source_rate=args.source_rate,
        on_missing="skip" if args.skip_missing else "error", progress=not args.quiet,
    )
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    print(f"prepared {manifest.get('count', manifest.get('counts'))} records at {manifest['rate']} Hz "
          f"x {manifest['length']} samples in {out}")
    print(json.dumps({k: manifest[k] for k in manifest if k in ("counts", "folds", "superclasses")}, indent=1))


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
