"""What the corpus preparers share: durations from the audio headers, the problem report, short id listings."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import soundfile as sf

from toolkit.datadir import DataDir

MAX_REPORT = 20  # problems printed before "... and N more"
MAX_EXAMPLES = 5  # ids listed in one message


def listing(names: list[str], sort: bool = True) -> str:
    """The first few names (sorted, unless the order means something: line numbers), and how many there are."""
    shown = ", ".join((sorted(names) if sort else names)[:MAX_EXAMPLES])
    return shown + (f" ... ({len(names)} in all)" if len(names) > MAX_EXAMPLES else "")


def read_durations(wav: dict[str, str], num_threads: int) -> tuple[dict[str, str], list[str]]:
    """utt2dur values (seconds, 3 decimals) from the FLAC headers, and the problems of unreadable files."""

    def duration(item: tuple[str, str]) -> tuple[str, float | None, str | None]:
        uttid, path = item
        try:
            info = sf.info(path)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            return uttid, None, f"{path}: cannot read the audio header ({e})"
        if info.frames <= 0 or info.samplerate <= 0:
            return uttid, None, f"{path}: the audio has no samples (empty or truncated file)"
        return uttid, info.frames / info.samplerate, None

    durations: dict[str, str] = {}
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        for uttid, seconds, problem in pool.map(duration, wav.items()):
            if problem:
                problems.append(problem)
            else:
                durations[uttid] = f"{seconds:.3f}"
    return durations, problems


def report(problems: list[str]) -> None:
    """Print the problems (at most MAX_REPORT, then how many more) as `error:` lines on stderr."""
    for problem in problems[:MAX_REPORT]:
        print(f"error: {problem}", file=sys.stderr)
    if len(problems) > MAX_REPORT:
        print(f"error: ... and {len(problems) - MAX_REPORT} more", file=sys.stderr)


@dataclass
class SluScan:
    """The tables of one split of an SLU corpus (SNIPS, SLURP), with the problems (errors) and warnings found."""

    wav: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    slots: dict[str, str] = field(default_factory=dict)
    utt2intent: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def slu_data_dir(scan: SluScan, num_threads: int) -> tuple[DataDir, list[str]]:
    """The data dir of a scanned SLU split (its wav, text, slots, intent and speaker tables, and utt2dur from the
    audio headers) and every problem found: the scan's, then the unreadable audio's."""
    data = DataDir(
        tables={
            "wav.scp": scan.wav,
            "text": scan.text,
            "text.slots": scan.slots,
            "utt2intent": scan.utt2intent,
            "utt2spk": scan.utt2spk,
        }
    )
    problems = list(scan.problems)
    if not problems:
        data.tables["utt2dur"], more = read_durations(scan.wav, num_threads)
        problems += more
    return data, problems
