"""toolkit.bin.select_subset: a seeded selection of utterances up to a number of hours (the PAD paper's 10 h set)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.bin import select_subset
from toolkit.datadir import DataDir, load_data_dir, write_data_dir
from toolkit.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]


def make_data_dir(path: Path, num_utts: int = 60, with_durations: bool = True) -> Path:
    """A data dir of `num_utts` utterances (6 speakers, 30 to 89 s each) without audio: the selection reads none."""
    tables: dict[str, dict[str, str]] = {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2dur", "utt2intent")}
    for i in range(num_utts):
        spk = f"spk{i % 6}"
        uttid = f"{spk}-utt{i:03d}"
        tables["wav.scp"][uttid] = f"/corpus/{uttid}.flac"
        tables["text"][uttid] = f"SENTENCE NUMBER {i}"
        tables["utt2spk"][uttid] = spk
        tables["utt2dur"][uttid] = f"{30 + i:.3f}"
        tables["utt2intent"][uttid] = "activate|lights|none"
    if not with_durations:
        del tables["utt2dur"]
    write_data_dir(DataDir(tables=tables), path)
    return path


def run(*args: str) -> int:
    return select_subset.main(list(args))


def test_selection_is_seeded_and_bounded(tmp_path, capsys):
    src = make_data_dir(tmp_path / "train")
    seconds = {u: float(d) for u, d in load_data_dir(src)["utt2dur"].items()}
    assert run("--data", str(src), "--hours", "0.5", "--seed", "3", "--out", str(tmp_path / "a")) == 0
    printed = capsys.readouterr().out
    a = load_data_dir(tmp_path / "a")
    total = sum(seconds[u] for u in a.utt_ids)
    assert 1800 - max(seconds.values()) < total <= 1800  # within the hours, short by less than one utterance
    assert f"{tmp_path / 'a'}: {len(a.utt_ids)} of 60 utterances, {total / 3600:.3f} h of " in printed
    assert f"{len(set(a['utt2spk'].values()))} of 6 speakers (seed 3)" in printed
    assert validate_data_dir(tmp_path / "a", check_audio=False) == []
    assert set(a.tables) == {"wav.scp", "text", "utt2spk", "utt2dur", "utt2intent"}
    assert all(a["text"][u] == load_data_dir(src)["text"][u] for u in a.utt_ids)
    assert not (tmp_path / "a.tmp").exists()

    # The same seed gives the same selection (written again over the old one); another seed another.
    assert run("--data", str(src), "--hours", "0.5", "--seed", "3", "--out", str(tmp_path / "a")) == 0
    assert load_data_dir(tmp_path / "a").tables == a.tables
    assert run("--data", str(src), "--hours", "0.5", "--seed", "4", "--out", str(tmp_path / "b")) == 0
    assert load_data_dir(tmp_path / "b").utt_ids != a.utt_ids
    # The order of the table does not matter, only its content and the seed.
    assert select_subset.select(dict(reversed(seconds.items())), 0.5, 3) == select_subset.select(seconds, 0.5, 3)


def test_all_hours_and_through_the_command_line(tmp_path):
    src = make_data_dir(tmp_path / "train", num_utts=12)
    total_hours = sum(30 + i for i in range(12)) / 3600
    cmd = [sys.executable, "-m", "toolkit.bin.select_subset", "--data", str(src), "--hours", repr(total_hours)]
    proc = subprocess.run([*cmd, "--out", str(tmp_path / "all")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert load_data_dir(tmp_path / "all").tables == load_data_dir(src).tables
    assert "12 of 12 utterances" in proc.stdout and "6 of 6 speakers (seed 0)" in proc.stdout


def test_errors(tmp_path, capsys):
    src = make_data_dir(tmp_path / "train", num_utts=10)
    assert run("--data", str(src), "--hours", "1", "--out", str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert (
        f"error: {src}: --hours 1 is more than the data dir holds (0.096 h in 10 utterances); ask for at most 0.096"
        in err
    )
    assert not (tmp_path / "out").exists()

    no_dur = make_data_dir(tmp_path / "nodur", with_durations=False)
    assert run("--data", str(no_dur), "--hours", "0.1", "--out", str(tmp_path / "out")) == 1
    assert f"error: {no_dur}/utt2dur: missing; the selection needs each utterance's duration" in capsys.readouterr().err

    (src / "utt2dur").write_text((src / "utt2dur").read_text().replace("spk1-utt001 31.000", "spk1-utt001 -2"))
    assert run("--data", str(src), "--hours", "0.01", "--out", str(tmp_path / "out")) == 1
    assert f"error: {src}/utt2dur:3: duration '-2' of 'spk1-utt001' is not a positive number" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    src = make_data_dir(tmp_path / "ok", num_utts=4)
    assert run("--data", str(src), "--hours", "0.001", "--out", str(tmp_path / "out")) == 1
    assert "no utterance fits in --hours 0.001" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("--data", str(src), "--hours", "0", "--out", str(tmp_path / "out"))
    with pytest.raises(SystemExit):
        run("--data", str(src), "--hours", "0.01", "--out", str(src))
    assert not (tmp_path / "out").exists()
