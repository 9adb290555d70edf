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
import sys
from collections import Counter
from pathlib import Path

from toolkit.corpora.common import read_durations, report
from toolkit.corpora.iemocap import CLASSES, SESSIONS, build_sets, scan_session, session_data, write_sets
from toolkit.fileio import describe_error


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
