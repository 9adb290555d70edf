"""Transcribe audio files with a packed speech-to-text model: one `<id> <text>` line per utterance.

    python -m toolkit.bin.transcribe --model exp/train_sld_mfcc_kmeans/model a.wav b.flac
    python -m toolkit.bin.transcribe --model DIR --wav-scp data/test/wav.scp --out hyp.txt --device auto
    python -m toolkit.bin.transcribe --model DIR --method beam --beam-size 8 a.wav

Files may have any sample rate and any format soundfile reads; the id of a file is its name without the extension.
A wav.scp gives the ids itself and may hold `command |` entries (run by a shell, as in a data dir). Decoding follows
the model's decode.yaml; --method, --beam-size and --set KEY=VALUE change it. Bad input is reported as `error: ...`
with exit status 1, and --out is written only when every utterance is transcribed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.transcribe",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("audio", nargs="*", help="audio files to transcribe")
    p.add_argument("--model", required=True, help="a packed model folder (exp/<tag>/model, stage 10)")
    p.add_argument("--wav-scp", help="a Kaldi wav.scp of the utterances (instead of, or besides, files)")
    p.add_argument("--out", help="write a Kaldi text file here instead of printing to stdout")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--method", choices=("greedy", "beam"), help="default: the model's decode.yaml")
    p.add_argument("--beam-size", type=int, help="default: the model's decode.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any decoding option")
    p.add_argument("--channel", type=int, help="channel of multi-channel audio to use (0-based)")
    p.add_argument("--chunk-utts", type=int, default=500, help="utterances read and decoded together (memory)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return p


def utterances(files: list[str], wav_scp: str | None) -> list[tuple[str, str]]:
    """(id, audio spec) pairs: the wav.scp's lines, then the files named after their stems."""
    from toolkit.datadir import check_ids
    from toolkit.fileio import read_table

    pairs: list[tuple[str, str]] = []
    if wav_scp:
        table = read_table(wav_scp)
        check_ids(Path(wav_scp), table)
        pairs += list(table.items())
    seen = {uttid: spec for uttid, spec in pairs}
    for name in files:
        uttid = Path(name).stem.replace(" ", "_") or name
        if uttid in seen:
            raise ValueError(f"{name}: the id '{uttid}' is taken by {seen[uttid]}; give ids with --wav-scp")
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: no such file")
        seen[uttid] = name
        pairs.append((uttid, name))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.audio and not args.wav_scp:
        parser.error("name audio files or give --wav-scp")
    if args.chunk_utts < 1:
        parser.error(f"--chunk-utts must be positive, got {args.chunk_utts}")
    import torch

    from toolkit.audio import AudioError
    from toolkit.config import ConfigError
    from toolkit.device import device_option
    from toolkit.fileio import describe_error, write_table
    from toolkit.inference.speech2text import Speech2Text, read_wave

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = device_option(parser, args.device)
    options = {k: v for k, v in (("method", args.method), ("beam_size", args.beam_size)) if v is not None}
    results: dict[str, str] = {}
    try:
        pairs = utterances(args.audio, args.wav_scp)
        model = Speech2Text.from_pretrained(args.model, device=device, decode_overrides=args.set, **options)
        for start in range(0, len(pairs), args.chunk_utts):
            chunk = pairs[start : start + args.chunk_utts]
            waves = []
            for uttid, spec in chunk:
                wave, rate = read_wave(spec, args.channel, uttid)
                waves.append(model.prepare(wave, rate, spec))
            for (uttid, _), text in zip(chunk, model.transcribe_waves(waves), strict=True):
                results[uttid] = text
                if not args.out:
                    print(f"{uttid} {text}".rstrip(), flush=True)
            if args.out and len(pairs) > args.chunk_utts:
                print(f"transcribed {len(results)} of {len(pairs)} utterances", file=sys.stderr)
    except (AudioError, ConfigError, FileNotFoundError, ValueError, OSError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    if args.out:
        write_table(args.out, results)
        print(f"{len(results)} transcripts -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
