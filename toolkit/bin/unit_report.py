"""Report on dumped units: usage, perplexity, bitrate, repeats and, with a phone alignment, purity and PNMI.

    python -m toolkit.bin.unit_report --units dump/units/mfcc_kmeans/test/units \\
        --discretizer exp/discretizer/mfcc_kmeans --utt2dur data/test/utt2dur --phone-ali data/test/phone_ali \\
        --out exp/unit_report/mfcc_kmeans/test

K and the frame rate come from --num-units and --frame-rate, else from the discretizer folder's YAML files (no model
is loaded), else K is taken as the largest unit + 1 (with a warning). Writes unit_report.json and unit_report.txt
into --out and prints the text. Phone metrics count every aligned frame, silence included, unless
--exclude-phones names labels to leave out. Bad input is reported as `error: file:line: ...` with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from toolkit.config import ConfigError
from toolkit.fileio import atomic_write, describe_error
from toolkit.scoring.units import (
    discretizer_info,
    format_report,
    read_durations,
    read_phone_ali,
    read_units,
    unit_report,
)

log = logging.getLogger("toolkit.bin.unit_report")


def _names(value: str) -> list[str]:
    return [name for name in value.split(",") if name]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.unit_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--units", required=True, help="units file written by dump_units (uttid u1 u2 ...)")
    p.add_argument("--num-units", type=int, help="K, the inventory size (all codebooks together)")
    p.add_argument("--discretizer", help="discretizer folder: K, frame rate and codebooks from its YAML files")
    p.add_argument("--frame-rate", type=float, help="unit frames per second (Hz)")
    p.add_argument("--codebooks", type=int, help="tokens per frame (EnCodec-style), default 1 or the discretizer's")
    p.add_argument("--utt2dur", help="durations for the bitrate (default: frames / frame rate)")
    p.add_argument("--phone-ali", help="frame-level phone labels (uttid p1 p2 ...) for purity and PNMI")
    p.add_argument("--ali-rate", type=float, default=100.0, help="phone alignment frames per second (default 100)")
    p.add_argument(
        "--exclude-phones",
        type=_names,
        action="extend",
        default=[],
        metavar="P[,P...]",
        help="phone labels whose frames are left out of the phone metrics, e.g. sil (default: none)",
    )
    p.add_argument("--out", help="folder for unit_report.json and unit_report.txt")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    for name in ("num_units", "codebooks"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("frame_rate", "ali_rate"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.exclude_phones and not args.phone_ali:
        parser.error("--exclude-phones needs --phone-ali")
    try:
        info = discretizer_info(args.discretizer) if args.discretizer else {}
        num_units = args.num_units or info.get("num_units")
        frame_rate = args.frame_rate or info.get("frame_rate")
        codebooks = args.codebooks or info.get("num_codebooks") or 1
        if args.frame_rate and info.get("frame_rate") and args.frame_rate != info["frame_rate"]:
            log.warning("--frame-rate %g overrides the discretizer's %g Hz", args.frame_rate, info["frame_rate"])
        if not frame_rate and (args.phone_ali or not args.utt2dur):
            raise ValueError(
                "no frame rate: pass --frame-rate"
                + (f" ({args.discretizer} does not say)" if args.discretizer else " or --discretizer")
            )
        units = read_units(args.units, num_units, codebooks)
        if num_units is None:
            largest = max(int(ids.max()) for ids in units.values())
            num_units = largest + 1
            num_units += -num_units % codebooks  # whole codebooks
            log.warning("no --num-units or --discretizer: K = largest unit + 1 = %d", num_units)
            units = read_units(args.units, num_units, codebooks)  # checks the codebook ranges
        durations = read_durations(args.utt2dur) if args.utt2dur else None
        phone_ali, phone_names = read_phone_ali(args.phone_ali) if args.phone_ali else (None, None)
        try:
            report = unit_report(
                units,
                num_units,
                codebooks=codebooks,
                frame_rate=frame_rate,
                durations=durations,
                phone_ali=phone_ali,
                phone_names=phone_names,
                ali_rate=args.ali_rate,
                exclude=args.exclude_phones,
            )
        except ValueError as e:
            raise ValueError(f"{args.units}: {e}") from None
        report = {"units_file": args.units, "phone_ali_file": args.phone_ali, **report}
        text = format_report(report)
        if args.out:
            out = Path(args.out)
            with atomic_write(out / "unit_report.json") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
            with atomic_write(out / "unit_report.txt") as f:
                f.write(text)
    except (ValueError, OSError, ConfigError) as e:  # TableError is a ValueError
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
