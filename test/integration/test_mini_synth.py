"""The embedded recipe (egs/mini_synth/asr1) at a tiny size, run exactly as a user runs it: stages 1-3 checked in
detail, then stages 4-9 with shrunken configs (a few hundred utterances cannot fill 500 clusters)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import soundfile
import yaml
from mini_synth_recipe import SIZES, copy_recipe

from toolkit.audio import resample
from toolkit.datadir import load_data_dir
from toolkit.fileio import read_table
from toolkit.validate import validate_data_dir


def voices(data_dir: Path) -> dict[str, str]:
    data = load_data_dir(data_dir)
    return {spk: dict(kv.split("=") for kv in v.split())["base"] for spk, v in data["spk2voice"].items()}


def test_stages_1_to_3(tmp_path):
    recipe = copy_recipe(tmp_path)
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    cmd = ["./run.sh", "--stage", "1", "--stop_stage", "3", "--nj", "2", "--local_data_opts", SIZES]
    proc = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    sets = {}
    for name, size in (("train", 60), ("dev", 12), ("test", 12)):
        raw = recipe / "dump/raw" / name
        assert validate_data_dir(raw, sample_rate=16000) == []
        data = load_data_dir(raw)
        assert len(data.utt_ids) + len((raw / "dropped_utts").read_text().splitlines()) == size
        for table in ("text", "utt2intent", "text.slots", "phone_ali", "utt2dur"):
            assert data.has(table), f"{raw} lacks {table}"
        sets[name] = data

    train_speakers = set(sets["train"]["utt2spk"].values())
    for held_out in ("dev", "test"):
        assert not train_speakers & set(sets[held_out]["utt2spk"].values())
    train_voices = set(voices(recipe / "data/train").values())
    assert set(voices(recipe / "data/test").values()) - train_voices, "test needs a base voice unseen in train"

    again = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, env=env)
    assert again.returncode == 0
    assert "stage 1 (data preparation): skipped" in again.stdout
    assert "stage 3 (format audio): skipped" in again.stdout


def shrink_configs(recipe: Path) -> None:
    """Sizes that a corpus of a few hundred utterances supports; every other setting stays the recipe's own."""
    disc = recipe / "conf/discretizer/mfcc_kmeans.yaml"
    disc.write_text(disc.read_text().replace("num_units: 500", "num_units: 50"))
    tok = recipe / "conf/tokenizer.yaml"
    tok.write_text(tok.read_text().replace("vocab_size: 1000", "vocab_size: 200"))


def test_all_stages(tmp_path):
    recipe = copy_recipe(tmp_path)
    shrink_configs(recipe)
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    train_args = "--set epochs=1 --set model.hidden_size=64 --set model.intermediate_size=128 --set dev.max_utts=10"
    cmd = ["./run.sh", "--nj", "2", "--local_data_opts", "--train_utts 200 --dev_utts 12 --test_utts 12"]
    curated = (recipe / "RESULTS.md").read_text()
    proc = subprocess.run([*cmd, "--train_args", train_args], cwd=recipe, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tag = "train_sld_mfcc_kmeans"
    for dset in ("dev", "test"):
        score = json.loads((recipe / "exp" / tag / "decode" / dset / "score.json").read_text())
        assert score["n_utt"] == 12 and score["wer"] >= 0
        assert (recipe / "exp" / tag / "decode" / dset / "score_wer/result.txt").exists()
    # The run reports into exp/RESULTS.md; the recipe's curated RESULTS.md is left as it was.
    assert f"| {tag} | test | 12 |" in (recipe / "exp/RESULTS.md").read_text()
    assert (recipe / "RESULTS.md").read_text() == curated

    # Stage 10 packed the model; the transcribe CLI on the formatted test wavs gives stage 8's hypotheses, also
    # after the whole exp/ tree has moved (the pack names nothing outside itself).
    stage8 = read_table(recipe / "exp" / tag / "decode/test/text", allow_empty_value=True)
    moved = tmp_path / "moved_exp"
    shutil.move(recipe / "exp", moved)
    transcribe = [sys.executable, "-m", "toolkit.bin.transcribe", "--model", str(moved / tag / "model")]
    scp = recipe / "dump/raw/test/wav.scp"
    proc = subprocess.run([*transcribe, "--wav-scp", str(scp)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hyps = dict((line.split(" ", 1) + [""])[:2] for line in proc.stdout.splitlines())
    assert hyps == stage8
    # A file at another rate and format (22.05 kHz, 24-bit FLAC) is resampled, not refused.
    first = sorted(stage8)[0]
    wave, rate = soundfile.read(read_table(scp)[first], dtype="float32")
    flac = tmp_path / "resampled.flac"
    soundfile.write(flac, resample(wave, rate, 22050), 22050, subtype="PCM_24")
    proc = subprocess.run([*transcribe, str(flac)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("resampled"), proc.stderr[-3000:]
    shutil.move(moved, recipe / "exp")

    # A second decoding config keeps its results beside the first's, and the report has a row for each.
    decode = yaml.safe_load((recipe / "conf/decode.yaml").read_text())
    (recipe / "conf/decode_beam2.yaml").write_text(yaml.safe_dump({**decode, "method": "beam", "beam_size": 2}))
    again = [*cmd, "--train_args", train_args, "--stage", "8", "--stop_stage", "9"]
    proc = subprocess.run(
        [*again, "--decode_config", "conf/decode_beam2.yaml"], cwd=recipe, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert read_table(recipe / "exp" / tag / "decode/test/text", allow_empty_value=True) == stage8
    assert (recipe / "exp" / tag / "decode_beam2/test/score.json").is_file()
    report = (recipe / "exp/RESULTS.md").read_text()
    assert f"| {tag} | test | 12 |" in report and f"| {tag}/decode_beam2 | test | 12 |" in report
    units = (recipe / "dump/units/mfcc_kmeans/test/units").read_text().splitlines()
    assert len(units) == 12 and all(int(u) < 50 for line in units for u in line.split()[1:])

    # A rerun of stage 8 that fails (here on a bad decode config, edited in place) leaves the previous hypotheses and
    # scores in place and no marker behind.
    hyp = recipe / "exp" / tag / "decode/dev/text"
    before = hyp.read_text()
    (recipe / "conf/decode.yaml").write_text(yaml.safe_dump({**decode, "beam_size": 0}))
    bad = [*cmd, "--train_args", train_args, "--stage", "8", "--stop_stage", "8"]
    proc = subprocess.run(bad, cwd=recipe, capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "beam_size" in proc.stdout + proc.stderr
    assert hyp.read_text() == before and (recipe / "exp" / tag / "decode/dev/score.json").exists()
    assert not (recipe / "exp/.done" / f"stage8.{tag}.decode").exists()
