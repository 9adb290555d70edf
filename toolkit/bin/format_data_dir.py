"""Stage 3: bring a data dir's audio to one format (mono 16-bit PCM at the target rate), one file per utterance.

    python -m toolkit.bin.format_data_dir --data data/train --out dump/raw/train --sample-rate 16000 \\
        [--min-dur 0.1 --max-dur 30] [--wav-dir DIR --final-wav-dir DIR]

Audio already in the target format and not cut by `segments` is referenced, not copied: 16-bit mono WAV, and 16-bit
mono FLAC too (lossless, and soundfile reads it directly: LibriSpeech's 60 GB of FLAC would otherwise become 113 GB
of new WAV files). Everything else is written as 16-bit WAV. Utterances whose duration
is outside [--min-dur, --max-dur] are dropped and listed with the reason in `<out>/dropped_utts`.
`--wav-dir` is where new audio is written, `--final-wav-dir` the path recorded in wav.scp: a recipe writes into a
temporary folder and renames it once complete, so wav.scp must name the final place.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from toolkit.audio import AudioError, audio_info, is_pipe, load_audio, resample, write_wav
from toolkit.datadir import DataDir, load_data_dir, safe_file_name, subset_data_dir, write_data_dir
from toolkit.fileio import describe_error, write_table

KEPT_FORMATS = ("WAV", "FLAC")  # containers of 16-bit PCM that later stages read as they are


def format_utterance(data: DataDir, utt: str, sample_rate: int, wav_dir: Path, final_wav_dir: Path, channel):
    """Return (wav.scp value, number of samples) for one utterance, writing a new wav only when needed."""
    rec = data.recording_of(utt)
    spec = data["wav.scp"][rec]
    start, end = data.segment_of(utt)
    if start is None and not is_pipe(spec):
        info = audio_info(spec, uttid=utt)
        in_format = info.format in KEPT_FORMATS and info.subtype == "PCM_16"
        if in_format and info.channels == 1 and info.sample_rate == sample_rate:
            return str(Path(spec).resolve()), info.frames
    wave, sr = load_audio(spec, uttid=utt, start=start, end=end, mono=False)
    if wave.shape[1] > 1:
        if channel is None:
            raise AudioError(
                utt,
                spec,
                f"{wave.shape[1]} channels; pick one with --channel N (0-based; asr.sh and slu.sh take --channel N too)",
            )
        if channel >= wave.shape[1]:
            raise AudioError(utt, spec, f"--channel {channel} but the audio has {wave.shape[1]} channels")
    wave = resample(wave[:, channel or 0], sr, sample_rate)
    name = safe_file_name(utt, ".wav")
    write_wav(wav_dir / name, wave, sample_rate)
    return str((final_wav_dir / name).resolve()), len(wave)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="input data dir")
    parser.add_argument("--out", required=True, help="output data dir")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--min-dur", type=float, default=0.0, help="drop utterances shorter than this (seconds)")
    parser.add_argument("--max-dur", type=float, default=float("inf"), help="drop longer utterances (seconds)")
    parser.add_argument("--channel", type=int, default=None, help="channel to keep from multi-channel audio")
    parser.add_argument("--wav-dir", default=None, help="where new wav files go (default: <out>/wav)")
    parser.add_argument("--final-wav-dir", default=None, help="the folder wav.scp names (default: --wav-dir)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    wav_dir = Path(args.wav_dir or Path(args.out) / "wav")
    final_wav_dir = Path(args.final_wav_dir or wav_dir)
    try:
        data = load_data_dir(args.data)
        if not data.has("wav.scp"):
            raise FileNotFoundError(f"{args.data}/wav.scp does not exist")
        wav_scp, num_samples, dropped = {}, {}, {}
        utts = data.utt_ids
        for utt in tqdm(utts, desc=f"format {args.data}", disable=args.no_progress, mininterval=1.0):
            value, samples = format_utterance(data, utt, args.sample_rate, wav_dir, final_wav_dir, args.channel)
            duration = samples / args.sample_rate
            if duration < args.min_dur:
                dropped[utt] = f"too_short {duration:.3f}s < {args.min_dur}s"
            elif duration > args.max_dur:
                dropped[utt] = f"too_long {duration:.3f}s > {args.max_dur}s"
            else:
                wav_scp[utt], num_samples[utt] = value, samples

        out = subset_data_dir(data, list(wav_scp))
        out.tables.pop("segments", None)
        out.tables.pop("reco2dur", None)
        out.tables["wav.scp"] = wav_scp
        out.tables["utt2num_samples"] = {u: str(n) for u, n in num_samples.items()}
        out.tables["utt2dur"] = {u: f"{n / args.sample_rate:.3f}" for u, n in num_samples.items()}
        write_data_dir(out, args.out)
        write_table(Path(args.out) / "dropped_utts", dropped)
    except (AudioError, ValueError, OSError, KeyError) as e:
        # OSError: also a full disk while writing audio; the recipe writes into a temporary folder, so nothing
        # already complete is touched.
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    print(f"{args.data}: kept {len(wav_scp)} of {len(utts)} utterances, dropped {len(dropped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
