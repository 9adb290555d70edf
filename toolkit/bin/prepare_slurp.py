"""Kaldi data dir of one SLURP split (train, devel, test, train_synth), from the SLURP repository and its audio.

    python -m toolkit.bin.prepare_slurp --db-root /data/slurp --split train --out data/train \\
        [--audio_dir /data/slurp/audio] [--nj 4]

The layout (github.com/pswietojanski/slurp, README and scripts/download_audio.sh; audio on zenodo.org/record/4274930):

    slurp/dataset/slurp/{train,devel,test}.jsonl    one entry per prompt, e.g.
        {"slurp_id": 4489, "sentence": "wake me up at eight o'clock",
         "sentence_annotation": "wake me up at [time : eight] o'clock", "intent": "alarm_set", "action": "set",
         "scenario": "alarm", "recordings": [{"file": "audio-1502099775-headset.flac", ...}, ...], ...}
    slurp/dataset/slurp/train_synthetic.jsonl       the same for the synthetic (TTS) training prompts
    slurp/dataset/slurp/metadata.json               per slurp_id, per recording file: {"usrid": "FO-488", ...}
    slurp/audio/slurp_real/<file>                    16 kHz FLAC (slurp_synth/ for train_synthetic.jsonl)

Each recording is one utterance (a prompt read by several people, each by a close-talk `-headset` and a far-field
microphone, gives several). Written to --out:

    wav.scp     <speaker>-<file without .flac> /absolute/path.flac   (the FLAC itself)
    text        the words of sentence_annotation without its brackets (that is `sentence`; spaces collapsed)
    text.slots  each `[type : value]` span as `B-type value E-type`: `wake me up at B-time eight E-time o'clock`
    utt2intent  the entry's intent, `<scenario>_<action>` (e.g. alarm_set)
    utt2spk     the speaker: the recording's `usrid` in metadata.json (`<F|M|UNK><E|O>-<number>`, gender and native
                language), as ESPnet's SLURP recipe does; `synth` for every train_synth utterance (TTS voices are
                not listed)
    spk2utt, utt2dur (seconds from the FLAC headers)

Every problem is reported with its file and line, then the exit status is 1 and nothing is written: a line that is
not JSON or lacks a field, an empty or spaced intent, an unbalanced or empty `[type : value]` span, a recording
without a speaker in metadata.json, a missing audio file. A recording listed twice keeps its first entry (warning);
an intent other than scenario_action and an annotation whose words differ from `sentence` are warned about.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.bin.prepare_librispeech import read_durations, report
from toolkit.datadir import DataDir, write_data_dir
from toolkit.fileio import describe_error

SPLITS = {"train": "train", "devel": "devel", "test": "test", "train_synth": "train_synthetic"}
SYNTH_SPEAKER = "synth"
FIELDS = ("slurp_id", "sentence", "sentence_annotation", "intent", "scenario", "action", "recordings")
SPAN = re.compile(r"\[([^\[\]]*)\]")
MAX_EXAMPLES = 5


@dataclass
class Scan:
    """The tables of one split, with the problems (errors) and warnings found."""

    wav: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    slots: dict[str, str] = field(default_factory=dict)
    utt2intent: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_EXAMPLES])
    return shown + (f" ... ({len(names)} in all)" if len(names) > MAX_EXAMPLES else "")


def tagged_annotation(annotation: str) -> tuple[str, str]:
    """(text, text.slots) of a sentence_annotation; raises ValueError for an unbalanced or malformed span."""
    words: list[str] = []
    tagged: list[str] = []
    position = 0
    for m in SPAN.finditer(annotation):
        between = annotation[position : m.start()]
        if "[" in between or "]" in between:
            raise ValueError("unbalanced '[' or ']'")
        words += between.split()
        tagged += between.split()
        kind, colon, value = m.group(1).partition(":")
        kind = kind.strip()
        if not colon or not kind or not value.split() or any(c.isspace() for c in kind):
            raise ValueError(f"span '[{m.group(1)}]' is not `[type : value]`")
        words += value.split()
        tagged += [f"B-{kind}", *value.split(), f"E-{kind}"]
        position = m.end()
    rest = annotation[position:]
    if "[" in rest or "]" in rest:
        raise ValueError("unbalanced '[' or ']'")
    words += rest.split()
    tagged += rest.split()
    return " ".join(words), " ".join(tagged)


def read_speakers(path: Path) -> dict[str, str]:
    """Recording file -> usrid, from SLURP's metadata.json (`{slurp_id: {"recordings": {file: {"usrid": ...}}}}`)."""
    with open(path, encoding="utf-8") as f:
        try:
            records = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    speakers: dict[str, str] = {}
    for slurp_id, record in records.items():
        for name, recording in record.get("recordings", {}).items():
            usrid = recording.get("usrid", "")
            if not usrid or any(c.isspace() for c in usrid):
                raise ValueError(f"{path}: recording '{name}' of slurp_id {slurp_id} has no usable usrid ({usrid!r})")
            speakers[name] = usrid
    return speakers


def check_entry(entry: object, where: str) -> str | None:
    """The problem with one jsonl entry's fields, or None."""
    if not isinstance(entry, dict):
        return f"{where}: expected a JSON object per line"
    missing = [name for name in FIELDS if name not in entry]
    if missing:
        return f"{where}: no {', '.join(missing)} (SLURP's entries have {', '.join(FIELDS)})"
    intent = entry["intent"]
    if not isinstance(intent, str) or not intent or any(c.isspace() for c in intent) or "|" in intent:
        return f"{where}: intent {intent!r} is not a label (one word, `<scenario>_<action>`, e.g. alarm_set)"
    if not isinstance(entry["recordings"], list) or not all(
        isinstance(r, dict) and isinstance(r.get("file"), str) and r["file"].endswith(".flac")
        for r in entry["recordings"]
    ):
        return f'{where}: recordings is not a list of {{"file": "<name>.flac", ...}}'
    return None


def scan_split(jsonl: Path, audio_dir: Path, speakers: dict[str, str] | None) -> Scan:
    """Read one jsonl file; `speakers` None means every utterance is the synthetic speaker."""
    scan = Scan()
    first: dict[str, str] = {}
    twice: list[str] = []
    odd_intents: list[str] = []
    differ: list[str] = []
    with open(jsonl, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{jsonl}:{lineno}"
            try:
                entry = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                scan.problems.append(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})")
                continue
            except json.JSONDecodeError as e:
                scan.problems.append(f"{where}: not valid JSON ({e.msg} at column {e.colno}); one entry per line")
                continue
            problem = check_entry(entry, where)
            if problem:
                scan.problems.append(problem)
                continue
            try:
                text, slots = tagged_annotation(entry["sentence_annotation"])
            except ValueError as e:
                scan.problems.append(f"{where}: sentence_annotation of slurp_id {entry['slurp_id']}: {e}")
                continue
            if not text:
                scan.problems.append(f"{where}: slurp_id {entry['slurp_id']} has an empty sentence_annotation")
                continue
            if text != " ".join(str(entry["sentence"]).split()):
                differ.append(f"{lineno}")
            if entry["intent"] != f"{entry['scenario']}_{entry['action']}":
                odd_intents.append(f"{lineno} ({entry['intent']})")
            for recording in entry["recordings"]:
                name = recording["file"]
                if name in first:
                    twice.append(name)
                    continue
                first[name] = where
                if speakers is None:
                    spk = SYNTH_SPEAKER
                elif name in speakers:
                    spk = speakers[name]
                else:
                    scan.problems.append(f"{where}: recording '{name}' has no usrid in metadata.json")
                    continue
                path = audio_dir / name
                if not path.is_file():
                    scan.problems.append(f"{where}: {path} does not exist; is the audio fully extracted?")
                    continue
                uttid = f"{spk}-{name[: -len('.flac')]}"
                scan.wav[uttid] = os.path.abspath(path)
                scan.text[uttid] = text
                scan.slots[uttid] = slots
                scan.utt2intent[uttid] = entry["intent"]
                scan.utt2spk[uttid] = spk
    if twice:
        scan.warnings.append(
            f"{jsonl}: {len(twice)} recording(s) listed again; their first entry is kept: {_listing(twice)}"
        )
    if odd_intents:
        scan.warnings.append(f"{jsonl}: intent other than <scenario>_<action> on line(s) {_listing(odd_intents)}")
    if differ:
        scan.warnings.append(
            f"{jsonl}: the words of sentence_annotation differ from sentence on line(s) {_listing(differ)}; "
            "text follows the annotation"
        )
    return scan


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.prepare_slurp",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-root", required=True, help="the SLURP repository folder, holding dataset/slurp")
    p.add_argument("--split", required=True, choices=tuple(SPLITS), help="which jsonl to read")
    p.add_argument("--out", required=True, help="the data dir to write, e.g. data/train")
    p.add_argument(
        "--audio_dir",
        "--audio-dir",
        default=None,
        help="the folder holding slurp_real/ and slurp_synth/ (default: <db_root>/audio)",
    )
    p.add_argument("--nj", type=int, default=4, help="threads reading the FLAC headers")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    db_root = Path(args.db_root)
    dataset = db_root / "dataset/slurp"
    jsonl = dataset / f"{SPLITS[args.split]}.jsonl"
    synth = args.split == "train_synth"
    audio_dir = Path(args.audio_dir or db_root / "audio") / ("slurp_synth" if synth else "slurp_real")
    needed = [jsonl, audio_dir] + ([] if synth else [dataset / "metadata.json"])
    for path in needed:
        if not path.exists():
            print(
                f"error: {path}: no such file or folder (expected the SLURP repository with dataset/slurp/*.jsonl "
                "and its audio extracted to audio/slurp_real and audio/slurp_synth)",
                file=sys.stderr,
            )
            return 1
    try:
        speakers = None if synth else read_speakers(dataset / "metadata.json")
        scan = scan_split(jsonl, audio_dir, speakers)
        for warning in scan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        problems = list(scan.problems)
        if not problems and not scan.wav:
            problems.append(f"{jsonl}: no recordings")
        data = DataDir(
            tables={
                "wav.scp": scan.wav,
                "text": scan.text,
                "text.slots": scan.slots,
                "utt2intent": scan.utt2intent,
                "utt2spk": scan.utt2spk,
            }
        )
        if not problems:
            data.tables["utt2dur"], more = read_durations(scan.wav, args.nj)
            problems += more
        if problems:
            report(problems)
            print(f"{jsonl}: {len(problems)} problem(s); nothing written to {args.out}", file=sys.stderr)
            return 1
        write_data_dir(data, args.out)
    except (OSError, ValueError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    hours = sum(float(d) for d in data.tables["utt2dur"].values()) / 3600
    print(
        f"{args.out}: {len(scan.wav)} utterances, {len(set(scan.utt2spk.values()))} speakers, "
        f"{len(set(scan.utt2intent.values()))} intents, {hours:.2f} h from {jsonl}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
