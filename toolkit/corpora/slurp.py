"""Kaldi data dir of one SLURP split (train, devel, test, train_synth), from the SLURP repository and its audio: the corpus logic behind python -m toolkit.bin.prepare_slurp (its docstring has the layout and usage)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from toolkit.corpora.common import SluScan, listing

SPLITS = {"train": "train", "devel": "devel", "test": "test", "train_synth": "train_synthetic"}


SYNTH_SPEAKER = "synth"


FIELDS = ("slurp_id", "sentence", "sentence_annotation", "intent", "scenario", "action", "recordings")


SPAN = re.compile(r"\[([^\[\]]*)\]")


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


def scan_split(jsonl: Path, audio_dir: Path, speakers: dict[str, str] | None) -> SluScan:
    """Read one jsonl file; `speakers` None means every utterance is the synthetic speaker."""
    scan = SluScan()
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
            f"{jsonl}: {len(twice)} recording(s) listed again; their first entry is kept: {listing(twice, sort=False)}"
        )
    if odd_intents:
        scan.warnings.append(
            f"{jsonl}: intent other than <scenario>_<action> on line(s) {listing(odd_intents, sort=False)}"
        )
    if differ:
        scan.warnings.append(
            f"{jsonl}: the words of sentence_annotation differ from sentence on line(s) {listing(differ, sort=False)}; "
            "text follows the annotation"
        )
    return scan
