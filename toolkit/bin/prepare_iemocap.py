"""Kaldi data dirs of IEMOCAP for SUPERB's emotion recognition (ER): four classes, five leave-one-session-out folds.

    python -m toolkit.bin.prepare_iemocap --db-root /data/IEMOCAP_full_release --out data \\
        [--dev-ratio 0.2] [--seed 0] [--nj 4]

The corpus folder (IEMOCAP_full_release/, from sail.usc.edu/iemocap) holds Session1 ... Session5, each with

    sentences/wav/<dialog>/<utt>.wav            one turn, 16 kHz mono, e.g. Ses01F_impro01/Ses01F_impro01_F000.wav
    dialog/EmoEvaluation/<dialog>.txt           `[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, ...]`
                                                per turn (the consensus label); the other lines (header, each
                                                evaluator's `C-E2:` / `A-E3:` lines, blank lines) are skipped
    dialog/transcriptions/<dialog>.txt          `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`; lines of
                                                turns without a wav (`..._MXX0`, `M: [BREATHING]`) are skipped

SUPERB's ER (s3prl downstream/emotion, read for facts only) keeps neu, hap, ang, sad with exc merged into hap
(5531 turns) and drops the other labels (fru, sur, fea, dis, oth, xxx; counted in the log). Its test set of fold k
is Session k; its dev set is a random 20% of the turns of the four other sessions (utterance level, so dev shares
speakers with train: `random_split` with `valid_ratio: 0.2`, `torch.manual_seed(0)`, train length int(0.8 N)).
This script does the same split with Python's own generator (--seed), so the proportions and the rule match
SUPERB, not the exact membership. Written to --out:

    session1 ... session5       every kept turn of that session
    fold<k>_train fold<k>_dev   the other four sessions, split (--dev-ratio) at random with --seed
    fold<k>_test                Session k

each with wav.scp, text (the transcript, case and punctuation kept, e.g. `Excuse me.`), utt2spk, spk2utt, utt2dur
(from the wav headers) and utt2emotion (neu, hap, ang, sad). The speaker is the session and the gender of the one
who speaks the turn (the letter before its number: Ses01F_impro01_M000 is spoken by Ses01M), and the utterance id is
`<speaker>-<turn>` (Ses01M-Ses01F_impro01_M000) so that ids sort by speaker. (s3prl's meta data calls the dialog
prefix, the actor wearing the motion markers, the "speaker" instead.)

Every problem is reported with its file (and line), then the exit status is 1 and nothing is written: a missing
session, label or transcript file; a malformed label or transcript line; an unknown label; a wav without a label;
a kept turn without a transcript; unreadable audio. Every set is written to <set>.tmp first and renamed when all
are complete.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.bin.prepare_librispeech import read_durations, report
from toolkit.datadir import DataDir, subset_data_dir, write_data_dir
from toolkit.fileio import describe_error

SESSIONS = (1, 2, 3, 4, 5)
CLASSES = ("neu", "hap", "ang", "sad")
MERGED = {"exc": "hap"}  # SUPERB's ER counts excitement as happiness
ALL_LABELS = ("neu", "hap", "ang", "sad", "exc", "fru", "sur", "fea", "dis", "oth", "xxx")
TURN_ID = re.compile(r"^(Ses0[1-5])[FM]_\S+_([FM])[0-9]+$")
LABEL_LINE = re.compile(r"^\[\s*[0-9.]+\s*-\s*[0-9.]+\s*\]\t(\S+)\t(\S+)\t\[[^\]]*\]\s*$")
TRANSCRIPT_LINE = re.compile(r"^(\S+) \[[0-9.]+-[0-9.]+\]:(.*)$")
MAX_EXAMPLES = 5


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


def _listing(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:MAX_EXAMPLES])
    return shown + (f" ... ({len(names)} in all)" if len(names) > MAX_EXAMPLES else "")


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
        scan.warnings.append(f"{path}: {len(no_wav)} labelled turn(s) without a wav: {_listing(no_wav)}; left out")


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
        scan.problems.append(f"{labels}: no label line for {len(unlabelled)} wav(s): {_listing(unlabelled)}")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toolkit.bin.prepare_iemocap",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-root", required=True, help="the IEMOCAP_full_release folder (Session1 ...)")
    p.add_argument("--out", default="data", help="the folder the data dirs go into (default: data)")
    p.add_argument("--dev-ratio", type=float, default=0.2, help="dev share of each fold (SUPERB: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dev split")
    p.add_argument("--nj", type=int, default=4, help="threads reading the wav headers")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be >= 1, got {args.nj}")
    if not 0 < args.dev_ratio < 1:
        parser.error(f"--dev-ratio must be between 0 and 1, got {args.dev_ratio}")
    db_root = Path(args.db_root)
    missing = [f"Session{n}" for n in SESSIONS if not (db_root / f"Session{n}").is_dir()]
    if missing:
        print(
            f"error: {db_root}: no {', '.join(missing)} folder(s) (expected IEMOCAP_full_release/, holding "
            "Session1 ... Session5)",
            file=sys.stderr,
        )
        return 1
    try:
        scans = {n: scan_session(db_root, n) for n in SESSIONS}
        for scan in scans.values():
            for warning in scan.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        problems = [p for scan in scans.values() for p in scan.problems]
        sessions = {n: session_data(scan) for n, scan in scans.items()}
        if not problems:
            for data in sessions.values():
                data.tables["utt2dur"], more = read_durations(data.tables["wav.scp"], args.nj)
                problems += more
        if problems:
            report(problems)
            print(f"{db_root}: {len(problems)} problem(s); nothing written to {args.out}", file=sys.stderr)
            return 1
        sets = build_sets(sessions, args.dev_ratio, args.seed)
        write_sets(sets, Path(args.out))
    except (OSError, ValueError) as e:
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 1
    kept = Counter(label for data in sessions.values() for label in data.tables["utt2emotion"].values())
    dropped = sum((scan.dropped for scan in scans.values()), Counter())
    counts = ", ".join(f"{label} {kept[label]}" for label in CLASSES)
    other = ", ".join(f"{label} {n}" for label, n in dropped.most_common()) or "none"
    print(f"{args.out}: kept {sum(kept.values())} turns ({counts}; exc counted as hap)")
    print(f"{args.out}: dropped {sum(dropped.values())} turns with other labels ({other})")
    for name, data in sets.items():
        hours = sum(float(d) for d in data.tables["utt2dur"].values()) / 3600
        print(f"{args.out}/{name}: {len(data.utt_ids)} utterances, {hours:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
