"""Kaldi data dir of one Audio SNIPS split as SUPERB's slot filling (SF) task uses it: SNIPS NLU utterances spoken by: the corpus logic behind python -m toolkit.bin.prepare_snips (its docstring has the layout and usage)."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from toolkit.corpora.common import SluScan, listing

IOB_FILE = "all.iob.snips.txt"


SPLITS = ("train", "valid", "test")


SUPERB_SPEAKERS = {
    "train": ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
    "valid": ("Aditi", "Amy", "Geraint", "Nicole"),
    "test": ("Brian", "Emma", "Raveena", "Russell"),
}


INTENTS = (
    "AddToPlaylist",
    "BookRestaurant",
    "GetWeather",
    "PlayMusic",
    "RateBook",
    "SearchCreativeWork",
    "SearchScreeningEvent",
)


UTT_ID = re.compile(r"^([A-Za-z]+)-snips-(train|valid|test)-([0-9]+)$")


TAG = re.compile(r"^(?:([BI])-)?([A-Za-z][A-Za-z0-9_]*)$")


PUNCTUATION = set("?!.,;-–…")


@dataclass
class Utterance:
    """One line of all.iob.snips.txt: the words with their slot tags, and the intent."""

    lineno: int
    words: list[str]
    tags: list[str]
    intent: str


def parse_line(line: str, path: Path, lineno: int) -> tuple[str, Utterance | None, str | None]:
    """(id, utterance, None) for a good line of all.iob.snips.txt, (id or '', None, problem) for a bad one."""
    where = f"{path}:{lineno}"
    expected = "expected `<voice>-snips-<split>-<n> BOS <words> EOS<TAB>O <tags> <intent>`"
    sides = line.split("\t")
    if len(sides) != 2:
        return "", None, f"{where}: {len(sides) - 1} tab(s) in the line; {expected}"
    left, right = sides[0].split(), sides[1].split()
    uttid = left[0] if left else ""
    if not UTT_ID.match(uttid):
        return uttid, None, f"{where}: '{uttid}' is not an id of the form <voice>-snips-<split>-<n>; {expected}"
    if len(left) < 3 or left[1] != "BOS" or left[-1] != "EOS":
        return uttid, None, f"{where}: the words of '{uttid}' are not enclosed in BOS ... EOS; {expected}"
    if len(right) < 2 or right[0] != "O":
        return uttid, None, f"{where}: the tags of '{uttid}' do not start with O (for BOS); {expected}"
    words, tags, intent = left[2:-1], right[1:-1], right[-1]
    if len(words) != len(tags):
        return uttid, None, f"{where}: '{uttid}' has {len(words)} word(s) but {len(tags)} tag(s); one tag per word"
    if intent not in INTENTS:
        return uttid, None, f"{where}: unknown intent '{intent}' of '{uttid}' (SNIPS' intents: {', '.join(INTENTS)})"
    for tag in tags:
        if tag != "O" and not TAG.match(tag):
            return uttid, None, f"{where}: '{tag}' of '{uttid}' is not a slot tag (O, <type>, B-<type> or I-<type>)"
    return uttid, Utterance(lineno, words, tags, intent), None


def read_iob(path: Path, split: str) -> tuple[dict[str, Utterance], list[str]]:
    """The utterances of one split in all.iob.snips.txt (every line is checked), and the problems found."""
    utts: dict[str, Utterance] = {}
    seen: dict[str, int] = {}
    problems: list[str] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                problems.append(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})")
                continue
            if not line.strip():
                problems.append(f"{where}: empty line; every line is one utterance")
                continue
            uttid, utt, problem = parse_line(line, path, lineno)
            if problem:
                problems.append(problem)
                continue
            if uttid in seen:
                problems.append(f"{where}: '{uttid}' appears twice (first on line {seen[uttid]})")
                continue
            seen[uttid] = lineno
            if UTT_ID.match(uttid).group(2) == split:
                utts[uttid] = utt
    return utts, problems


def slot_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """(first, last + 1, type) of each slot: a run of words with the same type, or one opened by a B- tag."""
    spans: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        prefix, kind = TAG.match(tag).groups()
        if spans and spans[-1][1] == i and spans[-1][2] == kind and prefix != "B":
            spans[-1] = (spans[-1][0], i + 1, kind)
        else:
            spans.append((i, i + 1, kind))
    return spans


def normalise_word(word: str) -> str | None:
    """SUPERB's text: lower case, `&` read as `and`; None for a token of punctuation only (it is dropped)."""
    if word == "&":
        return "and"
    if all(c in PUNCTUATION for c in word):
        return None
    return word.lower()


def tagged_text(words: list[str], tags: list[str]) -> tuple[str, str]:
    """(text, text.slots) of one utterance; a slot left without words by punctuation removal loses its tags."""
    plain = [normalise_word(w) for w in words]
    starts = {first: (last, kind) for first, last, kind in slot_spans(tags)}
    out: list[str] = []
    i = 0
    while i < len(words):
        if i in starts:
            last, kind = starts[i]
            value = [w for w in plain[i:last] if w is not None]
            if value:
                out += [f"B-{kind}", *value, f"E-{kind}"]
            i = last
            continue
        if plain[i] is not None:
            out.append(plain[i])
        i += 1
    return " ".join(w for w in plain if w is not None), " ".join(out)


def scan_split(db_root: Path, split: str, speakers: tuple[str, ...]) -> SluScan:
    scan = SluScan()
    iob = db_root / IOB_FILE
    utts, scan.problems = read_iob(iob, split)
    audio_dir = db_root / split
    wavs = sorted(p for p in audio_dir.rglob("*.wav") if p.is_file() and not p.name.startswith("."))
    found: Counter[str] = Counter()
    for wav in wavs:
        uttid = wav.stem
        match = UTT_ID.match(uttid)
        if not match or match.group(1) not in speakers:
            continue  # the other voices (SUPERB uses them in no split) and stray files
        if match.group(2) != split:
            scan.problems.append(f"{wav}: a '{match.group(2)}' utterance in the '{split}' folder")
            continue
        if uttid in scan.wav:
            scan.problems.append(f"{wav}: '{uttid}' also at {scan.wav[uttid]}")
            continue
        found[match.group(1)] += 1
        if uttid not in utts:
            scan.problems.append(f"{wav}: no line for '{uttid}' in {iob}; is {IOB_FILE} from the same release?")
            continue
        utt = utts[uttid]
        text, slots = tagged_text(utt.words, utt.tags)
        if not text:
            scan.problems.append(f"{iob}:{utt.lineno}: '{uttid}' has no words once punctuation is dropped")
            continue
        scan.wav[uttid] = os.path.abspath(wav)
        scan.text[uttid] = text
        scan.slots[uttid] = slots
        scan.utt2intent[uttid] = utt.intent
        scan.utt2spk[uttid] = match.group(1)
    for voice in speakers:
        if not found[voice]:
            scan.problems.append(
                f"{audio_dir}: no wav of voice '{voice}' (expected {voice}-snips-{split}-<n>.wav); "
                "is the audio converted and complete, or is --speakers misspelt?"
            )
    no_audio = [u for u in utts if UTT_ID.match(u).group(1) in speakers and u not in scan.wav]
    if no_audio and not scan.problems:
        scan.warnings.append(
            f"{iob}: {len(no_audio)} line(s) of the chosen voices have no wav in {audio_dir}: {listing(no_audio)}; "
            "left out"
        )
    return scan
