"""Run a packed SLU model on audio files: one `<id> <label>` line per utterance and task.

    python -m toolkit.bin.understand --model exp/slu_pad_slocal/model a.wav b.flac
    python -m toolkit.bin.understand --model DIR --wav-scp data/test/wav.scp --out hyp/ --device auto

With one task the lines are `<id> <label>`, the format of the task's table (utt2intent, text.slots, utt2emotion);
with several, `<id> <task> <label>`. --out writes one table per task (hyp.utt2intent, ...), which
toolkit.bin.score_slu reads. Files may have any sample rate and any format soundfile reads; a file's id is its
name without the extension. Bad input is reported as `error: ...` with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.inference.inputs import audio_arguments, check_audio_arguments, read_chunks, utterances


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.understand",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audio_arguments(p, "a packed SLU model folder (exp/slu_<tag>/model)")
    p.add_argument("--task", action="append", default=None, help="only this task (ic, sf, er); repeatable")
    p.add_argument("--out", help="write hyp.<label table> per task here instead of printing")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    device = check_audio_arguments(parser, args)
    from toolkit.audio import AudioError
    from toolkit.fileio import describe_error, write_table
    from toolkit.inference.understand import Understand
    from toolkit.models.downstream_task import default_label_table

    results: dict[str, dict[str, str]] = {}
    try:
        pairs = utterances(args.audio, args.wav_scp)
        model = Understand.from_pretrained(args.model, device=device)
        tasks = args.task or list(model.tasks)
        unknown = [t for t in tasks if t not in model.tasks]
        if unknown:
            raise ValueError(f"{args.model} has no {unknown[0]} head (it has: {', '.join(model.tasks)})")
        for ids, waves in read_chunks(pairs, args.chunk_utts, args.channel, model.prepare):
            for uttid, labels in zip(ids, model.predict_waves(waves, ids), strict=True):
                results[uttid] = labels
                if not args.out:
                    for task in tasks:
                        print(" ".join([uttid, *([task] if len(tasks) > 1 else []), labels[task]]).rstrip(), flush=True)
    except (AudioError, FileNotFoundError, ValueError, OSError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    if args.out:
        for task in tasks:
            path = Path(args.out) / f"hyp.{default_label_table(task)}"
            write_table(path, {u: labels[task] for u, labels in results.items()})
            print(f"{len(results)} predictions ({task}) -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
