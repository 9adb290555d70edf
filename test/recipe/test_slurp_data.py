"""The SLURP recipe's data preparation (egs/slurp/slu1/local/data.sh, toolkit.bin.prepare_slurp) on a tiny fixture
with the real layout: dataset/slurp/*.jsonl, dataset/slurp/metadata.json, audio/slurp_real and audio/slurp_synth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toolkit.bin import prepare_slurp
from toolkit.corpora import slurp as slurp_corpus
from toolkit.datadir import load_data_dir
from toolkit.scoring.slu import parse_slots
from toolkit.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs/slurp/slu1"
SR = 16000
# split -> prompts: (slurp_id, annotation, scenario, action, [(recording stem, usrid)])
PROMPTS = {
    "train": [
        (4489, "wake me up at [time : eight] o'clock", "alarm", "set", [("audio-1502099775", "FO-460")]),
        (16421, "how many unread emails do i have", "email", "query", [("audio-1499695168", "UNK-323")]),
    ],
    "devel": [
        (
            13804,
            "siri what is one [currency_name : american dollar] in [currency_name : japanese yen]",
            "qa",
            "currency",
            [("audio-1434542201", "ME-146"), ("audio--1504194195", "FO-488")],
        ),
    ],
    "test": [
        (
            6925,
            "is there any program for [date : tomorrow] [timeofday : evening]",
            "calendar",
            "query",
            [("audio-1501414241", "MO-433")],
        ),
    ],
    "train_synthetic": [
        (3843, "order me [food_type : chinese] food", "takeaway", "order", [("audio-1490201253", None)]),
    ],
}


def entry(slurp_id: int, annotation: str, scenario: str, action: str, files: list[str]) -> dict:
    sentence = slurp_corpus.tagged_annotation(annotation)[0]
    return {
        "slurp_id": slurp_id,
        "sentence": sentence,
        "sentence_annotation": annotation,
        "intent": f"{scenario}_{action}",
        "action": action,
        "tokens": [{"surface": w, "id": i, "lemma": w, "pos": "NN"} for i, w in enumerate(sentence.split())],
        "scenario": scenario,
        "recordings": [{"file": f, "wer": 0.0, "ent_wer": 0.0, "status": "correct"} for f in files],
        "entities": [],
    }


def build_corpus(root: Path) -> dict[str, dict[str, tuple[str, str, str, str, float]]]:
    """The SLURP repository folder with its audio; split -> uttid -> (speaker, text, slots, intent, seconds)."""
    rng = np.random.default_rng(0)
    (root / "dataset/slurp").mkdir(parents=True)
    metadata: dict[str, dict] = {}
    expected: dict[str, dict[str, tuple[str, str, str, str, float]]] = {}
    for name, prompts in PROMPTS.items():
        split = "train_synth" if name == "train_synthetic" else name
        audio = root / "audio" / ("slurp_synth" if split == "train_synth" else "slurp_real")
        audio.mkdir(parents=True, exist_ok=True)
        expected[split] = {}
        lines = []
        for slurp_id, annotation, scenario, action, recordings in prompts:
            files = []
            for stem, usrid in recordings:
                # Each reading is recorded by a close-talk (-headset) and a far-field microphone.
                for suffix in ("-headset", ""):
                    file = f"{stem}{suffix}.flac"
                    files.append(file)
                    seconds = 0.375 + 0.0625 * len(files)
                    wave = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
                    sf.write(audio / file, wave, SR, format="FLAC", subtype="PCM_16")
                    speaker = usrid or "synth"
                    if usrid:
                        metadata.setdefault(str(slurp_id), {"nlub_id": slurp_id + 1, "recordings": {}})
                        metadata[str(slurp_id)]["recordings"][file] = {"ansid": 1, "recid": 2, "usrid": usrid}
                    text, slots = slurp_corpus.tagged_annotation(annotation)
                    expected[split][f"{speaker}-{stem}{suffix}"] = (
                        speaker,
                        text,
                        slots,
                        f"{scenario}_{action}",
                        seconds,
                    )
            lines.append(json.dumps(entry(slurp_id, annotation, scenario, action, files)) + "\n")
        (root / "dataset/slurp" / f"{name}.jsonl").write_text("".join(lines))
    (root / "dataset/slurp/metadata.json").write_text(json.dumps(metadata, indent=4))
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("corpus") / "slurp"
    return root, build_corpus(root)


def copy_recipe(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(RECIPE, tmp_path / "egs/slurp/slu1", symlinks=True, ignore=shutil.ignore_patterns("data", "exp"))
    return tmp_path / "egs/slurp/slu1"


def data_sh(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    env.pop("SLURP", None)
    return subprocess.run(["local/data.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)


def test_data_sh_one_utterance_per_recording(tmp_path, corpus):
    root, expected = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cmd = [
        sys.executable,
        "-m",
        "toolkit.bin.validate_data_dir",
        "--data",
        "data/devel",
        "--sample-rate",
        str(SR),
        "--nj",
        "1",
    ]
    check = subprocess.run(cmd, capture_output=True, text=True, cwd=recipe)
    assert check.returncode == 0 and check.stdout.strip() == "data/devel: valid", check.stderr
    for split, utts in expected.items():
        out = recipe / "data" / split
        assert validate_data_dir(out, sample_rate=SR, num_threads=1) == []
        data = load_data_dir(out)
        assert data.utt_ids == sorted(utts, key=lambda u: u.encode())
        for uttid, (speaker, text, slots, intent, seconds) in utts.items():
            assert data["utt2spk"][uttid] == speaker
            assert data["text"][uttid] == text and data["text.slots"][uttid] == slots
            assert data["utt2intent"][uttid] == intent
            assert float(data["utt2dur"][uttid]) == pytest.approx(seconds, abs=1e-3)
            assert Path(data["wav.scp"][uttid]).name == uttid[len(speaker) + 1 :] + ".flac"
    devel = load_data_dir(recipe / "data/devel")
    uttid = "FO-488-audio--1504194195-headset"
    assert devel["text.slots"][uttid] == (
        "siri what is one B-currency_name american dollar E-currency_name "
        "in B-currency_name japanese yen E-currency_name"
    )
    assert devel["text"][uttid] == "siri what is one american dollar in japanese yen"
    assert parse_slots(devel["text.slots"][uttid]) == [
        ("currency_name", "american dollar"),
        ("currency_name", "japanese yen"),
    ]
    assert load_data_dir(recipe / "data/train")["text.slots"]["FO-460-audio-1502099775"] == (
        "wake me up at B-time eight E-time o'clock"
    )
    assert set(load_data_dir(recipe / "data/train_synth")["utt2spk"].values()) == {"synth"}
    assert not list((recipe / "data").glob("*.tmp"))


def test_data_sh_without_the_corpus(tmp_path, corpus):
    root, _ = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe)
    assert proc.returncode == 1
    assert "the corpus folder is not set" in proc.stderr and "SLURP" in proc.stderr and "--db_root" in proc.stderr
    assert "https://zenodo.org/record/4274930" in proc.stderr
    proc = data_sh(recipe, "--db_root", str(root.parent))
    assert proc.returncode == 1 and f"use --db_root {root}" in proc.stderr
    assert not (recipe / "data").exists()


def test_tagged_annotation():
    assert slurp_corpus.tagged_annotation("set alarm at [time : 7:30 am]  please") == (
        "set alarm at 7:30 am please",
        "set alarm at B-time 7:30 am E-time please",
    )
    for bad in ("wake me [time : eight", "wake me time : eight]", "wake [ [time : x] ]", "[time eight]", "[ : x]"):
        with pytest.raises(ValueError):
            slurp_corpus.tagged_annotation(bad)


# ---- bad inputs: `error: <file>:<line>: ...`, exit status 1, nothing written ----


def corpus_copy(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root, tmp_path / "slurp")
    return tmp_path / "slurp"


def prepare(root: Path, out: Path, split: str = "train") -> int:
    return prepare_slurp.main(["--db-root", str(root), "--split", split, "--out", str(out), "--nj", "1"])


def test_missing_audio_through_data_sh(tmp_path, corpus):
    root = corpus_copy(corpus[0], tmp_path)
    (root / "audio/slurp_real/audio-1501414241.flac").unlink()
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--db_root", str(root), "--nj", "1", "--synth", "false")
    assert proc.returncode == 1
    jsonl = root / "dataset/slurp/test.jsonl"
    missing = root / "audio/slurp_real/audio-1501414241.flac"
    assert f"error: {jsonl}:1: {missing} does not exist; is the audio fully extracted?" in proc.stderr
    assert (recipe / "data/devel").is_dir() and not (recipe / "data/test").exists()
    assert not list((recipe / "data").glob("*.tmp"))


def test_malformed_entries(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    jsonl = root / "dataset/slurp/train.jsonl"
    first, second = jsonl.read_text().splitlines()
    broken = json.loads(second)
    broken["sentence_annotation"] = "how many [unread emails do i have"
    spaced = json.loads(first)
    spaced["intent"] = "alarm set"
    jsonl.write_text("\n".join([first[:-1], json.dumps(broken), json.dumps(spaced)]) + "\n")
    assert prepare(root, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {jsonl}:1: not valid JSON (" in err
    assert f"error: {jsonl}:2: sentence_annotation of slurp_id 16421: unbalanced '[' or ']'" in err
    assert f"error: {jsonl}:3: intent 'alarm set' is not a label (one word, `<scenario>_<action>`" in err
    assert not (tmp_path / "out").exists()


def test_speaker_missing_and_duplicates(tmp_path, corpus, capsys):
    root = corpus_copy(corpus[0], tmp_path)
    meta_file = root / "dataset/slurp/metadata.json"
    metadata = json.loads(meta_file.read_text())
    del metadata["13804"]["recordings"]["audio-1434542201.flac"]
    meta_file.write_text(json.dumps(metadata))
    assert prepare(root, tmp_path / "out", "devel") == 1
    err = capsys.readouterr().err
    jsonl = root / "dataset/slurp/devel.jsonl"
    assert f"error: {jsonl}:1: recording 'audio-1434542201.flac' has no usrid in metadata.json" in err

    # A recording listed by two entries keeps the first (with a warning).
    jsonl = root / "dataset/slurp/test.jsonl"
    jsonl.write_text(jsonl.read_text() * 2)
    assert prepare(root, tmp_path / "out", "test") == 0
    assert "2 recording(s) listed again; their first entry is kept" in capsys.readouterr().err
    assert len(load_data_dir(tmp_path / "out").utt_ids) == 2
