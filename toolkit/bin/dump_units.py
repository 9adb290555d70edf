"""Encode every utterance of a data dir into discrete units with a fitted discretizer.

    python -m toolkit.bin.dump_units --discretizer exp/discretizer/mfcc_kmeans \\
        --data dump/raw/train/split4/JOB --out dump/units/mfcc_kmeans/train/units.JOB [--batch-seconds 60]

Writes one line per utterance, `uttid u1 u2 ...` (unit ids in 0..K-1, one per frame at the discretizer's frame
rate, repeats kept), sorted by utterance id. The file appears only when every utterance is encoded; a recipe runs one
job per shard and concatenates the shards. Utterances are encoded in batches of similar length of at most
--batch-seconds of audio.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from toolkit.audio import AudioError, load_audio, resample
from toolkit.config import ConfigError
from toolkit.datadir import DataDir, load_data_dir
from toolkit.device import add_device_option, device_option
from toolkit.discretizers.base import Discretizer, length_batches
from toolkit.discretizers.registry import load_discretizer
from toolkit.fileio import TableError, write_table


class UnitsError(ValueError):
    """An utterance that cannot be encoded; names the utterance and its audio."""


def encode_utterances(
    discretizer: Discretizer, data: DataDir, batch_seconds: float, progress: bool
) -> Iterator[tuple[str, np.ndarray]]:
    """(utterance id, units) for every utterance of the data dir, in batches of similar length."""
    batches = length_batches(data.durations(), batch_seconds)
    bar = tqdm(total=len(data.utt_ids), desc="units", unit="utt", disable=not progress, mininterval=1.0)
    for batch in batches:
        waves, specs = [], []
        for utt in batch:
            spec = data["wav.scp"][data.recording_of(utt)]
            start, end = data.segment_of(utt)
            wave, sr = load_audio(spec, uttid=utt, start=start, end=end)
            # One rate per batch: everything goes to the rate the discretizer works at.
            waves.append(resample(wave, sr, discretizer.sample_rate))
            specs.append(spec)
        encoded = discretizer.encode_batch(waves, discretizer.sample_rate)
        for utt, spec, units in zip(batch, specs, encoded, strict=True):
            if units.size == 0:
                raise UnitsError(f"utterance '{utt}': {spec}: too short to give a single frame")
            yield utt, units
        bar.update(len(batch))
    bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--discretizer", required=True, help="folder written by fit_discretizer")
    parser.add_argument("--data", required=True, help="data dir (usually one shard of a split)")
    parser.add_argument("--out", required=True, help="units file to write")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="audio per encoding batch")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; parallelism comes from running one job per shard, so 1 avoids oversubscription",
    )
    add_device_option(parser, " for the model of ssl_kmeans/encodec")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch (and transformers) load.
    import torch

    if args.batch_seconds <= 0:
        parser.error(f"--batch-seconds must be positive, got {args.batch_seconds}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    # A bad or unavailable device fails here, before any model loads.
    device = device_option(parser, args.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        discretizer = load_discretizer(args.discretizer, device=device)
        data = load_data_dir(args.data)
        units = {
            utt: " ".join(map(str, ids.tolist()))
            for utt, ids in encode_utterances(discretizer, data, args.batch_seconds, not args.no_progress)
        }
    except (AudioError, UnitsError, ConfigError, TableError, FileNotFoundError, KeyError, ValueError) as e:
        # KeyError's str() adds quotes; its message is the first argument.
        print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process (tests, scripts)
    write_table(args.out, units)
    print(f"{args.data}: {len(units)} utterances -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
