"""The Audio SNIPS recipe's data preparation (egs/snips/slu1/local/data.sh, toolkit.bin.prepare_snips) on a tiny
fixture with the layout SUPERB's preprocessing makes: SNIPS/all.iob.snips.txt and SNIPS/{train,valid,test}/*.wav."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toolkit.bin import prepare_snips
from toolkit.corpora import snips as snips_corpus
from toolkit.datadir import load_data_dir
from toolkit.scoring.slu import parse_slots, strip_tags
from toolkit.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs/snips/slu1"
SR = 16000
VOICES = "Aditi Amy Brian Emma Geraint Ivy Joanna Joey Justin Kendra Kimberly Matthew Nicole Raveena Russell Salli"
SUPERB = {
    "train": ["Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"],
    "valid": ["Aditi", "Amy", "Geraint", "Nicole"],
    "test": ["Brian", "Emma", "Raveena", "Russell"],
}
# split -> (WORDS, tags, intent, expected text.slots), the upper-case words and per-word slot types of the real file
SENTENCES = {
    "train": [
        (
            "ADD SABRINA SALERNO TO THE GRIME INSTRUMENTALS PLAYLIST",
            "O artist artist O O playlist playlist O",
            "AddToPlaylist",
            "add B-artist sabrina salerno E-artist to the B-playlist grime instrumentals E-playlist playlist",
        ),
        (
            "PLAY SOME ROCK & ROLL ?",
            "O O genre genre genre O",
            "PlayMusic",
            "play some B-genre rock and roll E-genre",
        ),
    ],
    "valid": [
        (
            "RATE THIS ESSAY FOUR OF SIX STARS",
            "O object_select object_type rating_value O best_rating rating_unit",
            "RateBook",
            "rate B-object_select this E-object_select B-object_type essay E-object_type B-rating_value four "
            "E-rating_value of B-best_rating six E-best_rating B-rating_unit stars E-rating_unit",
        ),
    ],
    "test": [
        (
            "WEATHER IN KANEVILLE MARYLAND",
            "O O city state",
            "GetWeather",
            "weather in B-city kaneville E-city B-state maryland E-state",
        ),
        (
            "WILL IT BE COLDER FOUR MONTHS FROM NOW IN SUWANEE AK",
            "O O O condition_temperature timeRange timeRange timeRange timeRange O city state",
            "GetWeather",
            "will it be B-condition_temperature colder E-condition_temperature B-timeRange four months from now "
            "E-timeRange in B-city suwanee E-city B-state ak E-state",
        ),
    ],
}


def build_corpus(root: Path) -> dict[str, dict[str, tuple[str, str, float]]]:
    """SNIPS/ with every voice in every split, as SUPERB's preprocessing leaves it; split -> uttid -> (slots, intent, s)
    for SUPERB's voices of the split."""
    rng = np.random.default_rng(0)
    lines = []
    expected: dict[str, dict[str, tuple[str, str, float]]] = {s: {} for s in SENTENCES}
    for split, sentences in SENTENCES.items():
        (root / split).mkdir(parents=True)
        for v, voice in enumerate(VOICES.split()):
            for n, (words, tags, intent, slots) in enumerate(sentences):
                uttid = f"{voice}-snips-{split}-{n}"
                lines.append(f"{uttid} BOS {words} EOS\tO {tags} {intent}\n")
                seconds = 0.25 + 0.0625 * n + 0.015625 * v
                wave = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
                sf.write(root / split / f"{uttid}.wav", wave, SR, subtype="PCM_16")
                if voice in SUPERB[split]:
                    expected[split][uttid] = (slots, intent, seconds)
    (root / "all.iob.snips.txt").write_text("".join(lines))
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("corpus") / "SNIPS"
    return root, build_corpus(root)


def copy_recipe(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(RECIPE, tmp_path / "egs/snips/slu1", symlinks=True, ignore=shutil.ignore_patterns("data", "exp"))
    return tmp_path / "egs/snips/slu1"


def data_sh(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    env.pop("SNIPS", None)
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


def test_data_sh_splits_by_superb_voices(tmp_path, corpus):
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
        assert sorted(set(data["utt2spk"].values())) == SUPERB[split]
        for uttid, (slots, intent, seconds) in utts.items():
            assert data["text.slots"][uttid] == slots
            assert data["text"][uttid] == strip_tags(slots)
            assert data["utt2intent"][uttid] == intent
            assert data["utt2spk"][uttid] == uttid.split("-")[0]
            assert float(data["utt2dur"][uttid]) == pytest.approx(seconds, abs=1e-3)
            path = Path(data["wav.scp"][uttid])
            assert path.is_absolute() and path == root / split / f"{uttid}.wav"
    test = load_data_dir(recipe / "data/test")
    assert test["text"]["Brian-snips-test-1"] == "will it be colder four months from now in suwanee ak"
    # The scorer of toolkit/scoring/slu.py reads the slots back.
    assert parse_slots(test["text.slots"]["Brian-snips-test-1"]) == [
        ("condition_temperature", "colder"),
        ("timeRange", "four months from now"),
        ("city", "suwanee"),
        ("state", "ak"),
    ]
    assert load_data_dir(recipe / "data/train")["text"]["Ivy-snips-train-1"] == "play some rock and roll"
    assert not list((recipe / "data").glob("*.tmp"))


def test_data_sh_without_the_corpus(tmp_path, corpus):
    root, _ = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe)
    assert proc.returncode == 1
    assert "the corpus folder is not set" in proc.stderr and "SNIPS" in proc.stderr and "--db_root" in proc.stderr
    assert "https://github.com/aws-samples/aws-lex-noisy-spoken-language-understanding" in proc.stderr
    proc = data_sh(recipe, "--db_root", str(root.parent))
    assert proc.returncode == 1 and f"use --db_root {root}" in proc.stderr
    assert not (recipe / "data").exists()


def test_tag_schemes():
    # SUPERB's plain types: a run of one type is one slot. B-/I- tags: a B- opens a new slot even after the same type.
    words = "FROM BOSTON TO DENVER".split()
    assert (
        snips_corpus.tagged_text(words, ["O", "city", "O", "city"])[1]
        == "from B-city boston E-city to B-city denver E-city"
    )
    words = "PARIS LONDON".split()
    assert snips_corpus.tagged_text(words, ["city", "city"])[1] == "B-city paris london E-city"
    assert snips_corpus.tagged_text(words, ["B-city", "B-city"])[1] == "B-city paris E-city B-city london E-city"
    assert snips_corpus.tagged_text(words, ["B-city", "I-city"])[1] == "B-city paris london E-city"
    # A slot of punctuation only loses its tags.
    assert snips_corpus.tagged_text(["HI", "!"], ["O", "genre"]) == ("hi", "hi")


# ---- bad inputs: `error: <file>:<line>: ...`, exit status 1, nothing written ----


def corpus_copy(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root, tmp_path / "SNIPS")
    return tmp_path / "SNIPS"


def replace_line(path: Path, lineno: int, new: str) -> str:
    lines = path.read_text().splitlines(keepends=True)
    old = lines[lineno - 1]
    lines[lineno - 1] = new
    path.write_text("".join(lines))
    return old


def prepare(root: Path, out: Path, split: str = "train", *extra: str) -> int:
    return prepare_snips.main(["--db-root", str(root), "--split", split, "--out", str(out), "--nj", "1", *extra])


def line_of(root: Path, uttid: str) -> int:
    lines = (root / "all.iob.snips.txt").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.startswith(uttid + " "))


def test_unknown_intent_through_data_sh(tmp_path, corpus):
    root = corpus_copy(corpus[0], tmp_path)
    iob = root / "all.iob.snips.txt"
    n = line_of(root, "Joey-snips-train-0")
    old = replace_line(iob, n, "")
    replace_line(iob, n, old.replace("AddToPlaylist", "AddToPlayList"))
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1")
    assert proc.returncode == 1
    assert f"error: {iob}:{n}: unknown intent 'AddToPlayList' of 'Joey-snips-train-0' (SNIPS' intents:" in proc.stderr
    assert not (recipe / "data/train").exists() and not list((recipe / "data").glob("*.tmp"))


def test_malformed_lines(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    iob = root / "all.iob.snips.txt"
    replace_line(iob, 1, "Aditi-snips-train-0 BOS ADD SABRINA EOS O O artist AddToPlaylist\n")
    replace_line(iob, 2, "Aditi-snips-train-1 BOS PLAY SOME ROCK EOS\tO O genre PlayMusic\n")
    replace_line(iob, 3, "Amy-snips-train-0 BOS ADD SABRINA EOS\tO O Bad-Tag AddToPlaylist\n")
    replace_line(iob, 4, "Amy-snips-train-0 BOS ADD SABRINA EOS\tO O artist AddToPlaylist\n")
    assert prepare(root, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {iob}:1: 0 tab(s) in the line; expected `<voice>-snips-<split>-<n> BOS" in err
    assert f"error: {iob}:2: 'Aditi-snips-train-1' has 3 word(s) but 2 tag(s); one tag per word" in err
    assert f"error: {iob}:3: 'Bad-Tag' of 'Amy-snips-train-0' is not a slot tag" in err
    assert not (tmp_path / "out").exists()


def test_wav_without_line(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    iob = root / "all.iob.snips.txt"
    replace_line(iob, line_of(root, "Brian-snips-test-1"), "")
    assert prepare(root, tmp_path / "out", "test") == 1
    err = capsys.readouterr().err
    assert f"error: {root}/test/Brian-snips-test-1.wav: no line for 'Brian-snips-test-1' in {iob}" in err
    assert not (tmp_path / "out").exists()


def test_missing_audio(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    # A missing wav of a chosen voice leaves that utterance out with a warning (a partial download shows there) ...
    (root / "test/Emma-snips-test-1.wav").unlink()
    (root / "test/README.txt").write_text("stray files are not audio")
    assert prepare(root, tmp_path / "out", "test") == 0
    err = capsys.readouterr().err
    assert f"warning: {root}/all.iob.snips.txt: 1 line(s) of the chosen voices have no wav" in err
    assert "Emma-snips-test-1" in err and "Emma-snips-test-1" not in load_data_dir(tmp_path / "out").utt_ids
    # ... and a voice with no wav at all is an error: the audio is incomplete, or --speakers is misspelt.
    assert prepare(root, tmp_path / "out2", "valid", "--speakers", "Aditi,Emmma") == 1
    err = capsys.readouterr().err
    assert f"error: {root}/valid: no wav of voice 'Emmma' (expected Emmma-snips-valid-<n>.wav)" in err
    assert not (tmp_path / "out2").exists()
    assert prepare(root, tmp_path / "out3", "valid", "--speakers", "Aditi,Nicole") == 0
    assert load_data_dir(tmp_path / "out3").utt_ids == ["Aditi-snips-valid-0", "Nicole-snips-valid-0"]


def test_missing_iob_file(tmp_path, capsys):
    (tmp_path / "SNIPS/train").mkdir(parents=True)
    assert prepare(tmp_path / "SNIPS", tmp_path / "out") == 1
    assert "SNIPS/all.iob.snips.txt: no such file or folder" in capsys.readouterr().err
