"""Kaldi data dirs of IEMOCAP for SUPERB's emotion recognition (ER): four classes, five leave-one-session-out folds: the corpus logic behind python -m toolkit.bin.prepare_iemocap (its docstring has the layout and usage)."""

from __future__ import annotations

import os
import random
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.corpora.common import listing
from toolkit.datadir import DataDir, subset_data_dir, write_data_dir

SESSIONS = (1, 2, 3, 4, 5)


CLASSES = ("neu", "hap", "ang", "sad")


MERGED = {"exc": "hap"}  # SUPERB's ER counts excitement as happiness


ALL_LABELS = ("neu", "hap", "ang", "sad", "exc", "fru", "sur", "fea", "dis", "oth", "xxx")


TURN_ID = re.compile(r"^(Ses0[1-5])[FM]_\S+_([FM])[0-9]+$")


LABEL_LINE = re.compile(r"^\[\s*[0-9.]+\s*-\s*[0-9.]+\s*\]\t(\S+)\t(\S+)\t\[[^\]]*\]\s*$")


TRANSCRIPT_LINE = re.compile(r"^(\S+) \[[0-9.]+-[0-9.]+\]:(.*)$")


@dataclass
class Turn:
    """One turn with a wav: its speaker, label and transcript (None until found)."""

    wav: Path
    speaker: str
    label: str | None = None
    text: str | None = None


@dataclass
class Scan:
    """What one pass over a session found."""

    turns: dict[str, Turn] = field(default_factory=dict)  # keyed by the corpus' turn name
    dropped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _lines(path: Path, problems: list[str]) -> list[tuple[int, str]]:
    """(line number, text) of a UTF-8 file; a line that does not decode is a problem and is left out."""
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                out.append((lineno, raw.decode("utf-8").rstrip("\r\n")))
            except UnicodeDecodeError as e:
                problems.append(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})")
    return out


def read_labels(path: Path, dialog: str, turns: dict[str, Turn], scan: Scan) -> None:
    """Set the label of each turn from an EmoEvaluation file; labelled turns without a wav are warned about."""
    seen: dict[str, int] = {}
    no_wav: list[str] = []
    for lineno, line in _lines(path, scan.problems):
        if not line.startswith("["):
            continue  # header, evaluators' lines, blank lines
        where = f"{path}:{lineno}"
        m = LABEL_LINE.match(line)
        if not m:
            scan.problems.append(f"{where}: expected `[start - end]<TAB><turn><TAB><label><TAB>[V, A, D]`")
            continue
        name, label = m.groups()
        if not name.startswith(dialog + "_"):
            scan.problems.append(f"{where}: '{name}' is not a turn of dialog {dialog}")
            continue
        if label not in ALL_LABELS:
            scan.problems.append(f"{where}: unknown label '{label}' of '{name}' (IEMOCAP's: {', '.join(ALL_LABELS)})")
            continue
        if name in seen:
            scan.problems.append(f"{where}: '{name}' is labelled twice (first on line {seen[name]})")
            continue
        seen[name] = lineno
        if name not in turns:
            no_wav.append(name)
            continue
        turns[name].label = label
    if no_wav:
        scan.warnings.append(f"{path}: {len(no_wav)} labelled turn(s) without a wav: {listing(no_wav)}; left out")


def read_transcripts(path: Path, dialog: str, turns: dict[str, Turn], scan: Scan) -> None:
    """Set the transcript of each turn with a wav; lines of other turns (overlaps, `M: ...`) are skipped."""
    for lineno, line in _lines(path, scan.problems):
        name = line.split(maxsplit=1)[0] if line.strip() else ""
        if name not in turns:
            continue
        m = TRANSCRIPT_LINE.match(line)
        if not m:
            scan.problems.append(f"{path}:{lineno}: expected `{name} [start-end]: <text>`")
            continue
        if turns[name].text is not None:
            scan.problems.append(f"{path}:{lineno}: a second transcript for '{name}'")
            continue
        turns[name].text = " ".join(m.group(2).split())


def scan_dialog(session_dir: Path, dialog_dir: Path, session: str, scan: Scan) -> None:
    dialog = dialog_dir.name
    turns: dict[str, Turn] = {}
    for wav in sorted(dialog_dir.glob("*.wav")):
        if wav.name.startswith("."):
            continue  # macOS resource forks (._name.wav) in some copies
        m = TURN_ID.match(wav.stem)
        if not m or not wav.stem.startswith(dialog + "_") or m.group(1) != session:
            scan.problems.append(f"{wav}: not a turn name of dialog {dialog} (<dialog>_<F|M><number>)")
            continue
        turns[wav.stem] = Turn(wav=wav, speaker=m.group(1) + m.group(2))
    if not turns:
        return
    labels = session_dir / "dialog/EmoEvaluation" / f"{dialog}.txt"
    transcripts = session_dir / "dialog/transcriptions" / f"{dialog}.txt"
    for needed in (labels, transcripts):
        if not needed.is_file():
            scan.problems.append(f"{needed}: missing: the {len(turns)} wav(s) of {dialog_dir} need it")
            return
    read_labels(labels, dialog, turns, scan)
    read_transcripts(transcripts, dialog, turns, scan)
    unlabelled = [name for name, turn in turns.items() if turn.label is None]
    if unlabelled:
        scan.problems.append(f"{labels}: no label line for {len(unlabelled)} wav(s): {listing(unlabelled)}")
    for name, turn in turns.items():
        if turn.label is None:
            continue
        label = MERGED.get(turn.label, turn.label)
        if label not in CLASSES:
            scan.dropped[turn.label] += 1
            continue
        if not turn.text:
            what = "an empty transcript" if turn.text == "" else "no transcript line"
            scan.problems.append(f"{transcripts}: {what} for '{name}'")
            continue
        turn.label = label
        scan.turns[name] = turn


def scan_session(db_root: Path, n: int) -> Scan:
    scan = Scan()
    session_dir = db_root / f"Session{n}"
    wav_root = session_dir / "sentences/wav"
    if not wav_root.is_dir():
        scan.problems.append(f"{wav_root}: no such folder (expected Session{n}/sentences/wav/<dialog>/<turn>.wav)")
        return scan
    for dialog_dir in sorted(p for p in wav_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        scan_dialog(session_dir, dialog_dir, f"Ses0{n}", scan)
    if not scan.problems and not scan.turns:
        scan.problems.append(f"{wav_root}: no turn with one of the labels {', '.join(CLASSES)} or exc")
    return scan


def session_data(scan: Scan) -> DataDir:
    tables: dict[str, dict[str, str]] = {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2emotion")}
    for name, turn in scan.turns.items():
        uttid = f"{turn.speaker}-{name}"
        tables["wav.scp"][uttid] = os.path.abspath(turn.wav)
        tables["text"][uttid] = turn.text or ""
        tables["utt2spk"][uttid] = turn.speaker
        tables["utt2emotion"][uttid] = turn.label or ""
    return DataDir(tables=tables)


def merge(parts: list[DataDir]) -> DataDir:
    """Sessions have disjoint ids and the same tables, so merging is a union of each table."""
    out = DataDir(tables={name: {} for name in parts[0].tables})
    for part in parts:
        for name, table in part.tables.items():
            out.tables[name].update(table)
    return out


def split_dev(utt_ids: list[str], dev_ratio: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, dev): a seeded shuffle of the sorted ids, the first int((1 - ratio) * N) for training (SUPERB's rule)."""
    ids = sorted(utt_ids, key=lambda u: u.encode("utf-8"))
    random.Random(seed).shuffle(ids)
    n_train = int((1 - dev_ratio) * len(ids))
    return ids[:n_train], ids[n_train:]


def build_sets(sessions: dict[int, DataDir], dev_ratio: float, seed: int) -> dict[str, DataDir]:
    sets = {f"session{n}": data for n, data in sessions.items()}
    for k in SESSIONS:
        rest = merge([sessions[n] for n in SESSIONS if n != k])
        train, dev = split_dev(rest.utt_ids, dev_ratio, seed)
        sets[f"fold{k}_train"] = subset_data_dir(rest, train)
        sets[f"fold{k}_dev"] = subset_data_dir(rest, dev)
        sets[f"fold{k}_test"] = sessions[k]
    return sets


def write_sets(sets: dict[str, DataDir], out_dir: Path) -> None:
    """Each set to <name>.tmp, then every one renamed: an error while writing leaves no half-written set behind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in sets.items():
        tmp = out_dir / f"{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        write_data_dir(data, tmp)
    for name in sets:
        final = out_dir / name
        if final.exists():
            shutil.rmtree(final)
        os.rename(out_dir / f"{name}.tmp", final)
