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

from toolkit.inference.inputs import audio_arguments, check_audio_arguments, read_chunks, utterances


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.transcribe",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audio_arguments(p, "a packed model folder (exp/<tag>/model, stage 10)")
    p.add_argument("--out", help="write a Kaldi text file here instead of printing to stdout")
    p.add_argument("--method", choices=("greedy", "beam"), help="default: the model's decode.yaml")
    p.add_argument("--beam-size", type=int, help="default: the model's decode.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any decoding option")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    device = check_audio_arguments(parser, args)
    from toolkit.audio import AudioError
    from toolkit.config import ConfigError
    from toolkit.fileio import describe_error, write_table
    from toolkit.inference.speech2text import Speech2Text

    options = {k: v for k, v in (("method", args.method), ("beam_size", args.beam_size)) if v is not None}
    results: dict[str, str] = {}
    try:
        pairs = utterances(args.audio, args.wav_scp)
        model = Speech2Text.from_pretrained(args.model, device=device, decode_overrides=args.set, **options)
        for ids, waves in read_chunks(pairs, args.chunk_utts, args.channel, model.prepare):
            for uttid, text in zip(ids, model.transcribe_waves(waves), strict=True):
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
