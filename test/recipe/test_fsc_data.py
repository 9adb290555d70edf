"""The Fluent Speech Commands recipe's data preparation (egs/fsc/slu1/local/data.sh, toolkit.bin.prepare_fsc) on a
tiny fixture with the corpus' real layout: data/{train,valid,test}_data.csv and wavs/speakers/<speakerId>/<uuid>.wav."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toolkit.bin import prepare_fsc
from toolkit.datadir import load_data_dir
from toolkit.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs/fsc/slu1"
SR = 16000
HEADER = ["", "path", "speakerId", "transcription", "action", "object", "location"]

# split -> speakers (FSC's speakers are disjoint across splits) and rows (transcription, action, object, location)
SPEAKERS = {
    "train": ["2BqVo8kVB2Skwgyb", "4aGjX3AG5xcxeL7a"],
    "valid": ["5BEzPgPKe8taG9OB"],
    "test": ["4BrX8aDqK2cLZRYl"],
}
ROWS = [
    ("Change language", "change language", "none", "none"),
    ("Turn on the lights in the kitchen", "activate", "lights", "kitchen"),
    ("Bring me my  shoes", "bring", "shoes", "none"),  # FSC has such double spaces; text collapses them
    ("Okay, now switch to Chinese", "change language", "Chinese", "none"),  # a quoted comma in the csv
]


def build_corpus(root: Path) -> dict[str, dict[str, tuple[str, str, float]]]:
    """fluent_speech_commands_dataset/ with the three csv files and 16 kHz wavs; split -> uttid -> (text, intent, s)."""
    rng = np.random.default_rng(0)
    expected: dict[str, dict[str, tuple[str, str, float]]] = {}
    index = 0
    for split, speakers in SPEAKERS.items():
        expected[split] = {}
        lines = [HEADER]
        for s, spk in enumerate(speakers):
            (root / "wavs/speakers" / spk).mkdir(parents=True)
            for k, (text, action, obj, location) in enumerate(ROWS):
                name = f"{k:x}{s:x}3129c0-4474-11e9-a9a5-5dbec3b8816a"
                seconds = 0.5 + 0.125 * k + 0.0625 * s
                wave = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
                sf.write(root / "wavs/speakers" / spk / f"{name}.wav", wave, SR, subtype="PCM_16")
                lines.append([str(index), f"wavs/speakers/{spk}/{name}.wav", spk, text, action, obj, location])
                index += 1
                intent = "|".join(v.replace(" ", "_") for v in (action, obj, location))
                expected[split][f"{spk}-{name}"] = (" ".join(text.split()), intent, seconds)
        (root / "data").mkdir(exist_ok=True)
        with open(root / "data" / f"{split}_data.csv", "w", newline="") as f:
            csv.writer(f).writerows(lines)
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("corpus") / "fluent_speech_commands_dataset"
    return root, build_corpus(root)


def copy_recipe(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(RECIPE, tmp_path / "egs/fsc/slu1", symlinks=True, ignore=shutil.ignore_patterns("data", "exp"))
    return tmp_path / "egs/fsc/slu1"


def data_sh(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    env.pop("FSC", None)
    return subprocess.run(["local/data.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)


def validate(recipe: Path, data_dir: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "toolkit.bin.validate_data_dir",
        "--data",
        data_dir,
        "--sample-rate",
        str(SR),
        "--nj",
        "1",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=recipe)


def test_data_sh_writes_the_three_splits(tmp_path, corpus):
    root, expected = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The command line once (data.sh ran it on every split), the library on every split.
    proc = validate(recipe, "data/train")
    assert proc.returncode == 0 and proc.stdout.strip() == "data/train: valid", proc.stderr
    for split, utts in expected.items():
        out = recipe / "data" / split
        assert validate_data_dir(out, sample_rate=SR, num_threads=1) == []
        data = load_data_dir(out)
        assert data.utt_ids == sorted(utts, key=lambda u: u.encode())
        for uttid, (text, intent, seconds) in utts.items():
            spk = uttid.split("-")[0]
            assert data["text"][uttid] == text
            assert data["utt2intent"][uttid] == intent
            assert data["utt2spk"][uttid] == spk
            assert float(data["utt2dur"][uttid]) == pytest.approx(seconds, abs=1e-3)
            path = Path(data["wav.scp"][uttid])
            assert path.is_absolute() and path.parent.name == spk and uttid.endswith(path.stem)
    train = load_data_dir(recipe / "data/train")
    assert "change_language|none|none" in train["utt2intent"].values()
    assert "Okay, now switch to Chinese" in train["text"].values()
    assert "Bring me my shoes" in train["text"].values()
    spk2utt = (recipe / "data/train/spk2utt").read_text().splitlines()
    assert [line.split()[0] for line in spk2utt] == SPEAKERS["train"] and len(spk2utt[0].split()) == 1 + len(ROWS)
    assert not list((recipe / "data").glob("*.tmp"))


def test_data_sh_without_the_corpus(tmp_path, corpus):
    root, _ = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe)  # db.sh's default is empty
    assert proc.returncode == 1
    assert "the corpus folder is not set" in proc.stderr and "FSC" in proc.stderr and "--db_root" in proc.stderr
    assert "https://fluent.ai/" in proc.stderr

    # The folder above fluent_speech_commands_dataset/ is a common mistake: the message points at the right one.
    proc = data_sh(recipe, "--db_root", str(root.parent))
    assert proc.returncode == 1
    assert f"use --db_root {root}" in proc.stderr
    assert not (recipe / "data").exists()

    proc = data_sh(recipe, "--db_root", str(root), "--bogus", "1")
    assert proc.returncode == 1 and "unknown option '--bogus'" in proc.stderr
    proc = data_sh(recipe, "--help")
    assert proc.returncode == 0 and "--db_root" in proc.stdout


# ---- bad inputs: `error: <file>:<line>: ...`, exit status 1, nothing written ----


def corpus_copy(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root, tmp_path / "fsc")
    return tmp_path / "fsc"


def edit_row(csv_file: Path, line: int, column: int, value: str) -> None:
    rows = list(csv.reader(open(csv_file, newline="")))
    rows[line - 1][column] = value
    with open(csv_file, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def prepare(root: Path, out: Path, split: str = "train") -> int:
    return prepare_fsc.main(["--db-root", str(root), "--split", split, "--out", str(out), "--nj", "1"])


def test_missing_wav_through_data_sh(tmp_path, corpus):
    root = corpus_copy(corpus[0], tmp_path)
    rows = list(csv.reader(open(root / "data/valid_data.csv", newline="")))
    missing = root / rows[2][1]
    missing.unlink()
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1")
    assert proc.returncode == 1
    assert (
        f"error: {root}/data/valid_data.csv:3: {missing} does not exist; is the corpus fully extracted?" in proc.stderr
    )
    assert (recipe / "data/train").is_dir()  # complete splits stay; the failed one leaves nothing behind
    assert not (recipe / "data/valid").exists() and not list((recipe / "data").glob("*.tmp"))


def test_unknown_label(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    edit_row(root / "data/train_data.csv", 3, 4, "activat")
    assert prepare(root, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {root}/data/train_data.csv:3: unknown action 'activat' (FSC's action values: activate," in err
    assert not (tmp_path / "out").exists()


def test_malformed_rows(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    csv_file = root / "data/test_data.csv"
    lines = csv_file.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0]  # a field short
    lines[2] = lines[2].replace("wavs/speakers/", "wavs/")
    csv_file.write_text("\n".join(lines + [lines[3]]) + "\n")  # and a duplicate row
    assert prepare(root, tmp_path / "out", "test") == 1
    err = capsys.readouterr().err
    assert f"error: {csv_file}:2: 6 fields, the header has 7; a transcription with a comma must be quoted" in err
    assert f"error: {csv_file}:3: path 'wavs/" in err and "is not of the form wavs/speakers/<speakerId>/" in err
    assert f"error: {csv_file}:6: 'wavs/speakers/" in err and "appears twice (first on line 4)" in err
    assert not (tmp_path / "out").exists()


def test_header_and_speaker_mismatch(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    edit_row(root / "data/train_data.csv", 2, 2, "SomeoneElse00000")
    assert prepare(root, tmp_path / "out") == 1
    assert "is in the folder of speaker '2BqVo8kVB2Skwgyb', the row says 'SomeoneElse00000'" in capsys.readouterr().err
    edit_row(root / "data/train_data.csv", 1, 6, "place")
    assert prepare(root, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {root}/data/train_data.csv:1: no column 'location' in the header; expected the FSC header" in err


def test_missing_csv(tmp_path, capsys):
    assert prepare(tmp_path / "nowhere", tmp_path / "out") == 1
    assert "nowhere/data/train_data.csv: no such file" in capsys.readouterr().err


def test_the_advice_without_librispeech_works_through_run_sh(tmp_path, corpus):
    # Without LIBRISPEECH, the message suggests --local_data_opts "--distill_data false": through run.sh that must
    # prepare and format the task data and plan the no-distillation baseline, not fail on data/librispeech_10h.
    root, _ = corpus
    recipe = copy_recipe(tmp_path)
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    for name in ("FSC", "LIBRISPEECH"):
        env.pop(name, None)
    base = ["./run.sh", "--ngpu", "0", "--nj", "1"]
    refused = subprocess.run(
        [*base, "--stop_stage", "1", "--local_data_opts", f"--db_root {root}"],
        cwd=recipe,
        capture_output=True,
        text=True,
        env=env,
    )
    assert refused.returncode != 0 and '--local_data_opts \\"--distill_data false\\"' not in refused.stderr
    assert '--local_data_opts "--distill_data false"' in refused.stdout + refused.stderr
    opts = ["--local_data_opts", f"--distill_data false --db_root {root}"]
    proc = subprocess.run([*base, "--stop_stage", "2", *opts], cwd=recipe, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in (recipe / "dump/raw").iterdir()) == ["test", "train", "valid"]
    plan = subprocess.run(
        [*base, "--stage", "4", "--stop_stage", "4", "--dry_run", "true", *opts],
        cwd=recipe,
        capture_output=True,
        text=True,
        env=env,
    )
    assert plan.returncode == 0 and "distill_config=none" in plan.stdout
