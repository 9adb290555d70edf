"""Stage 2: speed perturbation of a data dir (sox-style speed: tempo and pitch change together).

    python -m toolkit.bin.speed_perturb --data data/train --out data/train_sp --factors 0.9 1.0 1.1 \\
        [--wav-dir DIR --final-wav-dir DIR]

Utterance and speaker ids of a perturbed copy get the prefix `sp<factor>-` (Kaldi's convention), so the copies of
one speaker stay one speaker. Factor 1.0 keeps the original ids and, when possible, the original audio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from toolkit.audio import AudioError, is_pipe, load_audio, speed_perturb, write_wav
from toolkit.datadir import DataDir, load_data_dir, safe_file_name, write_data_dir
from toolkit.fileio import describe_error

COPIED_TABLES = ("text", "utt2intent", "text.slots", "utt2lang")


def stretch_alignment(frames: list[str], factor: float) -> list[str]:
    """Frame labels of the perturbed audio: new frame j shows what old frame floor(j * factor) showed."""
    count = round(len(frames) / factor)
    return [frames[min(int(j * factor), len(frames) - 1)] for j in range(count)] if frames else []


def perturb(data: DataDir, factors: list[float], wav_dir: Path, final_wav_dir: Path, progress: bool) -> DataDir:
    out = DataDir(tables={name: {} for name in ("wav.scp", "utt2spk", "utt2dur", *COPIED_TABLES)})
    keep_tables = [n for n in COPIED_TABLES if data.has(n)]
    has_ali = data.has("phone_ali")
    if has_ali:
        out.tables["phone_ali"] = {}
    utts = data.utt_ids
    for factor in factors:
        prefix = "" if factor == 1.0 else f"sp{factor:g}-"
        for utt in tqdm(utts, desc=f"speed {factor:g}", disable=not progress, mininterval=1.0):
            new = prefix + utt
            spec = data["wav.scp"][data.recording_of(utt)]
            start, end = data.segment_of(utt)
            if factor == 1.0 and start is None and not is_pipe(spec):
                out.tables["wav.scp"][new] = spec
                if data.has("utt2dur"):
                    out.tables["utt2dur"][new] = data["utt2dur"][utt]
                else:
                    wave, sr = load_audio(spec, uttid=utt)
                    out.tables["utt2dur"][new] = f"{len(wave) / sr:.3f}"
            else:
                wave, sr = load_audio(spec, uttid=utt, start=start, end=end)
                wave = speed_perturb(wave, sr, factor)
                name = safe_file_name(new, ".wav")
                write_wav(wav_dir / name, wave, sr)
                out.tables["wav.scp"][new] = str((final_wav_dir / name).resolve())
                out.tables["utt2dur"][new] = f"{len(wave) / sr:.3f}"
            out.tables["utt2spk"][new] = prefix + data["utt2spk"][utt]
            for name in keep_tables:
                out.tables[name][new] = data[name][utt]
            if has_ali:
                out.tables["phone_ali"][new] = " ".join(stretch_alignment(data["phone_ali"][utt].split(), factor))
    for name in COPIED_TABLES:
        if not data.has(name):
            out.tables.pop(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.9, 1.0, 1.1])
    parser.add_argument("--wav-dir", default=None, help="where perturbed wav files go (default: <out>/wav)")
    parser.add_argument("--final-wav-dir", default=None, help="the folder wav.scp names (default: --wav-dir)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if any(f <= 0 for f in args.factors) or len(set(args.factors)) != len(args.factors):
        parser.error(f"--factors must be distinct positive numbers, got {args.factors}")
    wav_dir = Path(args.wav_dir or Path(args.out) / "wav")
    try:
        data = load_data_dir(args.data)
        out = perturb(data, args.factors, wav_dir, Path(args.final_wav_dir or wav_dir), not args.no_progress)
        write_data_dir(out, args.out)
    except (AudioError, ValueError, OSError, KeyError) as e:
        # OSError: also a full disk while writing audio; the recipe writes into a temporary folder, so nothing
        # already complete is touched.
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    print(f"{args.data}: {len(data.utt_ids)} utterances -> {len(out.utt_ids)} with factors {args.factors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
