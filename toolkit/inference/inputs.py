"""The audio a packed model is run on from the command line: files and wav.scp entries, their ids, read in chunks.

Shared by toolkit.bin.transcribe and toolkit.bin.understand, which add their own options to `audio_arguments`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from toolkit.datadir import check_ids
from toolkit.device import add_device_option
from toolkit.fileio import read_table


def audio_arguments(parser: argparse.ArgumentParser, model_help: str) -> None:
    """The options both commands take: the model, the audio (files, --wav-scp), device, channel, chunks, threads."""
    parser.add_argument("audio", nargs="*", help="audio files")
    parser.add_argument("--model", required=True, help=model_help)
    parser.add_argument("--wav-scp", help="a Kaldi wav.scp of the utterances (instead of, or besides, files)")
    add_device_option(parser)
    parser.add_argument("--channel", type=int, help="channel of multi-channel audio to use (0-based)")
    parser.add_argument("--chunk-utts", type=int, default=500, help="utterances read and run together (memory)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")


def check_audio_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """Usage errors for the shared options (exit status 2); applies --threads; returns the resolved --device."""
    from toolkit.device import device_option

    if not args.audio and not args.wav_scp:
        parser.error("name audio files or give --wav-scp")
    if args.chunk_utts < 1:
        parser.error(f"--chunk-utts must be positive, got {args.chunk_utts}")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    return device_option(parser, args.device)


def utterances(files: list[str], wav_scp: str | None) -> list[tuple[str, str]]:
    """(id, audio spec) pairs: the wav.scp's lines, then the files named after their stems."""
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


def read_chunks(
    pairs: list[tuple[str, str]],
    chunk_utts: int,
    channel: int | None,
    prepare: Callable[[np.ndarray, int, str], np.ndarray],
) -> Iterator[tuple[list[str], list[np.ndarray]]]:
    """(ids, waves) of chunk_utts utterances at a time, each read (read_wave) and made ready by `prepare`."""
    from toolkit.inference.speech2text import read_wave

    for start in range(0, len(pairs), chunk_utts):
        chunk = pairs[start : start + chunk_utts]
        waves = []
        for uttid, spec in chunk:
            wave, rate = read_wave(spec, channel, uttid)
            waves.append(prepare(wave, rate, spec))
        yield [uttid for uttid, _ in chunk], waves
