"""The IEMOCAP recipe's data preparation (egs/iemocap/slu1/local/data.sh, toolkit.bin.prepare_iemocap) on a tiny
fixture with the corpus' real layout: Session<n>/sentences/wav/<dialog>/<turn>.wav, Session<n>/dialog/EmoEvaluation
and Session<n>/dialog/transcriptions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toolkit.bin import prepare_iemocap
from toolkit.corpora import iemocap as iemocap_corpus
from toolkit.datadir import load_data_dir
from toolkit.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs/iemocap/slu1"
SR = 16000
TURNS = ("F000", "F001", "M000", "M001", "M002")
# The labels of the turns, in order over the corpus; exc is merged into hap, the last four are dropped.
LABELS = ("neu", "hap", "exc", "ang", "sad", "neu", "fru", "xxx", "sur", "ang", "sad")
KEPT = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
EVALUATORS = "C-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n"
SETS = [f"session{n}" for n in range(1, 6)] + [f"fold{k}_{s}" for k in range(1, 6) for s in ("train", "dev", "test")]


def build_corpus(root: Path) -> dict[int, dict[str, tuple[str, str, str, float]]]:
    """IEMOCAP_full_release/ with two dialogs per session; session -> uttid -> (speaker, label, text, seconds) of the
    turns SUPERB's ER keeps."""
    rng = np.random.default_rng(0)
    expected: dict[int, dict[str, tuple[str, str, str, float]]] = {}
    count = 0
    for n in range(1, 6):
        expected[n] = {}
        session = root / f"Session{n}"
        for dialog in (f"Ses0{n}F_impro01", f"Ses0{n}M_script01_1"):
            wav_dir = session / "sentences/wav" / dialog
            wav_dir.mkdir(parents=True)
            emo, trans = [EMO_HEADER], []
            for k, turn in enumerate(TURNS):
                name = f"{dialog}_{turn}"
                seconds = 0.25 + 0.03125 * k + 0.0625 * (n - 1)
                start = 2.0 + 3 * k
                wave = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
                sf.write(wav_dir / f"{name}.wav", wave, SR, subtype="PCM_16")
                label = LABELS[count % len(LABELS)]
                count += 1
                emo.append(f"[{start:.4f} - {start + seconds:.4f}]\t{name}\t{label}\t[2.5000, 3.0000, 2.0000]\n")
                emo.append(EVALUATORS)
                text = f"Excuse  me, turn {k} of {dialog}."
                trans.append(f"{name} [{start:08.4f}-{start + seconds:08.4f}]: {text}\n")
                if label in KEPT:
                    speaker = f"Ses0{n}{turn[0]}"
                    expected[n][f"{speaker}-{name}"] = (speaker, KEPT[label], " ".join(text.split()), seconds)
            # Lines of turns without a wav: overlapping speech and unsegmented noises.
            trans.insert(2, f"{dialog}_MXX0 [010.0000-011.0000]: Yeah.\n")
            trans.append("M: [BREATHING]\n")
            (session / "dialog/EmoEvaluation/Categorical").mkdir(parents=True, exist_ok=True)
            (session / "dialog/EmoEvaluation" / f"{dialog}.txt").write_text("".join(emo))
            (session / "dialog/EmoEvaluation/Categorical" / f"{dialog}_e2_cat.txt").write_text(
                f"{dialog}_F000 :Neutral; ()\n"
            )
            (session / "dialog/transcriptions").mkdir(parents=True, exist_ok=True)
            (session / "dialog/transcriptions" / f"{dialog}.txt").write_text("".join(trans))
            (session / "dialog/wav").mkdir(parents=True, exist_ok=True)  # whole dialogs: not turns, not read
            shutil.copy(wav_dir / f"{dialog}_F000.wav", session / "dialog/wav" / f"{dialog}.wav")
            (wav_dir / f"._{dialog}_F000.wav").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("corpus") / "IEMOCAP_full_release"
    return root, build_corpus(root)


def copy_recipe(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(RECIPE, tmp_path / "egs/iemocap/slu1", symlinks=True, ignore=shutil.ignore_patterns("data", "exp"))
    return tmp_path / "egs/iemocap/slu1"


def data_sh(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    env.pop("IEMOCAP", None)
    return subprocess.run(["local/data.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)


def test_data_sh_sessions_and_folds(tmp_path, corpus):
    root, expected = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n_kept = sum(len(e) for e in expected.values())
    assert f"data: kept {n_kept} turns (" in proc.stdout
    assert f"data: dropped {50 - n_kept} turns with other labels (" in proc.stdout and "fru " in proc.stdout
    cmd = [
        sys.executable,
        "-m",
        "toolkit.bin.validate_data_dir",
        "--data",
        "data/session1",
        "--sample-rate",
        str(SR),
        "--nj",
        "1",
    ]
    check = subprocess.run(cmd, capture_output=True, text=True, cwd=recipe)
    assert check.returncode == 0 and check.stdout.strip() == "data/session1: valid", check.stderr
    data = {name: load_data_dir(recipe / "data" / name) for name in SETS}
    for n, utts in expected.items():
        session = data[f"session{n}"]
        assert validate_data_dir(session.path, sample_rate=SR, num_threads=1) == []
        assert session.utt_ids == sorted(utts, key=lambda u: u.encode())
        for uttid, (speaker, label, text, seconds) in utts.items():
            assert session["utt2spk"][uttid] == speaker
            assert session["utt2emotion"][uttid] == label
            assert session["text"][uttid] == text
            assert float(session["utt2dur"][uttid]) == pytest.approx(seconds, abs=1e-3)
            assert Path(session["wav.scp"][uttid]).name == uttid.split("-", 1)[1] + ".wav"
    assert data["session1"]["utt2spk"]["Ses01M-Ses01F_impro01_M000"] == "Ses01M"  # the one who speaks the turn
    assert set(data["session1"]["utt2emotion"].values()) <= {"neu", "hap", "ang", "sad"}
    emotions = {u: e for n in range(1, 6) for u, e in data[f"session{n}"]["utt2emotion"].items()}
    wavs = {u: w for n in range(1, 6) for u, w in data[f"session{n}"]["wav.scp"].items()}
    for k in range(1, 6):
        train, dev, test = (data[f"fold{k}_{s}"] for s in ("train", "dev", "test"))
        for part in (train, dev, test):
            assert validate_data_dir(part.path, check_audio=False) == []
            assert part.tables.keys() >= {"wav.scp", "text", "utt2spk", "utt2dur", "utt2emotion"}
        assert test.tables == data[f"session{k}"].tables
        rest = {u for n in range(1, 6) if n != k for u in expected[n]}
        assert not set(train.utt_ids) & set(dev.utt_ids) and set(train.utt_ids) | set(dev.utt_ids) == rest
        assert len(train.utt_ids) == int(0.8 * len(rest))  # SUPERB's int((1 - valid_ratio) * N)
        for part in (train, dev):
            assert all(part["utt2emotion"][u] == emotions[u] and part["wav.scp"][u] == wavs[u] for u in part.utt_ids)
    assert not list((recipe / "data").glob("*.tmp"))

    # The same seed gives the same folds; another seed another dev set.
    dev1 = (recipe / "data/fold1_dev/utt2spk").read_text()
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert (recipe / "data/fold1_dev/utt2spk").read_text() != dev1


def test_split_dev_is_seeded():
    ids = [f"Ses0{n}F-Ses0{n}F_impro01_F{k:03d}" for n in range(1, 5) for k in range(20)]
    train, dev = iemocap_corpus.split_dev(ids, 0.2, seed=0)
    assert (train, dev) == iemocap_corpus.split_dev(list(reversed(ids)), 0.2, seed=0)
    assert len(train) == 64 and len(dev) == 16 and sorted(train + dev) == sorted(ids)
    assert iemocap_corpus.split_dev(ids, 0.2, seed=1)[1] != dev


def test_data_sh_without_the_corpus(tmp_path, corpus):
    root, _ = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe)
    assert proc.returncode == 1
    assert "the corpus folder is not set" in proc.stderr and "IEMOCAP" in proc.stderr and "--db_root" in proc.stderr
    assert "https://sail.usc.edu/iemocap/" in proc.stderr
    proc = data_sh(recipe, "--db_root", str(root.parent))
    assert proc.returncode == 1 and f"use --db_root {root}" in proc.stderr
    assert not (recipe / "data").exists()


# ---- bad inputs: `error: <file>:<line>: ...`, exit status 1, nothing written ----


def corpus_copy(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root, tmp_path / "IEMOCAP_full_release")
    return tmp_path / "IEMOCAP_full_release"


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first line holding `old` by `new` (a whole line, or '' to delete it); returns its number."""
    lines = path.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if old in line)
    lines[i] = new
    path.write_text("".join(lines))
    return i + 1


def prepare(root: Path, out: Path) -> int:
    return prepare_iemocap.main(["--db-root", str(root), "--out", str(out), "--nj", "1"])


def test_unknown_label_through_data_sh(tmp_path, corpus):
    root = corpus_copy(corpus[0], tmp_path)
    emo = root / "Session3/dialog/EmoEvaluation/Ses03M_script01_1.txt"
    n = edit(
        emo, "Ses03M_script01_1_M001", "[3.0000 - 4.0000]\tSes03M_script01_1_M001\thapy\t[2.5000, 2.5000, 2.5000]\n"
    )
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1")
    assert proc.returncode == 1
    assert f"error: {emo}:{n}: unknown label 'hapy' of 'Ses03M_script01_1_M001' (IEMOCAP's: neu, hap," in proc.stderr
    assert list((recipe / "data").iterdir()) == []  # nothing at all, not even the sessions that were fine


def test_malformed_label_and_transcript_lines(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    emo = root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    n = edit(emo, "Ses01F_impro01_F001", "[3.0000 - 4.0000] Ses01F_impro01_F001 hap\n")
    trans = root / "Session2/dialog/transcriptions/Ses02F_impro01.txt"
    m = edit(trans, "Ses02F_impro01_F000", "Ses02F_impro01_F000 [002.0000]: Excuse me.\n")
    assert prepare(root, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {emo}:{n}: expected `[start - end]<TAB><turn><TAB><label><TAB>[V, A, D]`" in err
    assert f"error: {trans}:{m}: expected `Ses02F_impro01_F000 [start-end]: <text>`" in err
    assert not (tmp_path / "out").exists()


def test_missing_files_and_lines(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    (root / "Session4/dialog/transcriptions/Ses04M_script01_1.txt").unlink()
    edit(root / "Session5/dialog/EmoEvaluation/Ses05F_impro01.txt", "Ses05F_impro01_M002", "")
    trans = root / "Session2/dialog/transcriptions/Ses02M_script01_1.txt"
    kept = [u.split("-", 1)[1] for u in corpus[1][2] if "Ses02M_script01_1" in u]
    edit(trans, kept[0], "")
    assert prepare(root, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {root}/Session4/dialog/transcriptions/Ses04M_script01_1.txt: missing: the 5 wav(s) of" in err
    emo = root / "Session5/dialog/EmoEvaluation/Ses05F_impro01.txt"
    assert f"error: {emo}: no label line for 1 wav(s): Ses05F_impro01_M002" in err
    assert f"error: {trans}: no transcript line for '{kept[0]}'" in err
    assert not (tmp_path / "out").exists()


def test_missing_session(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    shutil.rmtree(root / "Session5")
    assert prepare(root, tmp_path / "out") == 1
    assert f"error: {root}: no Session5 folder(s)" in capsys.readouterr().err
