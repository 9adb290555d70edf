"""The embedded recipe (egs/mini_synth/asr1) at a tiny size, run exactly as a user runs it: stages 1-3 checked in
detail, then stages 4-9 with shrunken configs (a few hundred utterances cannot fill 500 clusters)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from toolkit.datadir import load_data_dir
from toolkit.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]
SIZES = "--train_utts 60 --dev_utts 12 --test_utts 12 --seed 7"
OUTPUTS = ("data", "dump", "exp", "downloads")


def copy_recipe(tmp_path: Path) -> Path:
    """The recipe and the shared template, without any outputs a developer may have in the checkout."""
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(
        REPO / "egs/mini_synth", tmp_path / "egs/mini_synth", symlinks=True, ignore=shutil.ignore_patterns(*OUTPUTS)
    )
    return tmp_path / "egs/mini_synth/asr1"


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
    proc = subprocess.run([*cmd, "--train_args", train_args], cwd=recipe, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tag = "train_sld_mfcc_kmeans"
    for dset in ("dev", "test"):
        score = json.loads((recipe / "exp" / tag / "decode" / dset / "score.json").read_text())
        assert score["n_utt"] == 12 and score["wer"] >= 0
        assert (recipe / "exp" / tag / "decode" / dset / "score_wer/result.txt").exists()
    results = (recipe / "RESULTS.md").read_text()
    assert f"| {tag} | test | 12 |" in results
    units = (recipe / "dump/units/mfcc_kmeans/test/units").read_text().splitlines()
    assert len(units) == 12 and all(int(u) < 50 for line in units for u in line.split()[1:])


# Tiny upstream models: a few steps are enough to check that stage 4 trains them and the discretizer reads them.
HUBERT_ARGS = (
    "--set model.hidden_size=32 --set model.num_layers=2 --set model.num_heads=2 --set model.intermediate_size=64 "
    "--set model.conv_dim=[32,32,32,32] --set model.conv_pos_kernel=8 --set model.conv_pos_groups=2 "
    "--set loss.final_dim=16 --set targets.num_units=20 --set max_steps=3 --set dev.max_utts=4 "
    "--set batching.max_batch_seconds=20"
)
CODEC_ARGS = (
    "--set model.num_filters=4 --set model.hidden_size=16 --set model.codebook_size=32 --set steps=3 "
    "--set batch_size=2 --set dev_max_utts=4 --set eval_every_steps=3"
)


def test_trained_discretizers_run_through_the_recipe(tmp_path):
    """--discretizer hubert_kmeans and encodec: stage 4 trains the model first, then stages 5-6 use its units."""
    recipe = copy_recipe(tmp_path)
    disc = recipe / "conf/discretizer/hubert_kmeans.yaml"
    disc.write_text(disc.read_text().replace("layer: 3", "layer: 2").replace("num_units: 500", "num_units: 16"))
    for name in ("tokenizer.yaml", "tokenizer_encodec.yaml"):  # run.sh picks the second for encodec
        tok = recipe / "conf" / name
        tok.write_text(
            tok.read_text().replace("vocab_size: 256", "vocab_size: 100").replace("subwords: true", "subwords: false")
        )
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    base = ["./run.sh", "--nj", "2", "--local_data_opts", SIZES, "--stop_stage", "6"]
    for name, args in (("hubert_kmeans", HUBERT_ARGS), ("encodec", CODEC_ARGS)):
        proc = subprocess.run(
            [*base, "--discretizer", name, "--upstream_args", args], cwd=recipe, capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "train the discretizer's model" in proc.stdout
        units = (recipe / f"dump/units/{name}/test/units").read_text().splitlines()
        assert len(units) == 12
        assert (recipe / f"dump/tokens/{name}/test/speech").exists()
        report = json.loads((recipe / f"dump/units/{name}/test/unit_report.json").read_text())
        assert 0.0 <= report["phones"][0]["pnmi"] <= 1.0, report["phones"]
        tokenizer = yaml.safe_load((recipe / f"exp/tokenizers/{name}/config.yaml").read_text())
        assert tokenizer["units"]["hard_vocab_limit"] is (name != "encodec")  # only tokenizer_encodec.yaml sets it
    assert (recipe / "exp/upstream/hubert/model/config.json").exists()
    assert (recipe / "exp/codec/encodec_small/model/config.json").exists()
    # The default encodec config keeps the first of the bandwidth's codebooks: 50 units/s, ids below 32.
    info = yaml.safe_load((recipe / "exp/discretizer/encodec/encodec_info.yaml").read_text())
    assert info["codebook_size"] == 32 and info["num_codebooks"] == 1 and info["model_codebooks_at_bandwidth"] >= 2
    assert info["units_per_second"] == 50.0
    units = (recipe / "dump/units/encodec/test/units").read_text().splitlines()
    assert all(int(u) < 32 for line in units for u in line.split()[1:])
    # With every codebook of the bandwidth (encodec_2cb.yaml: two with the recipe's 1024 codes, four with this tiny
    # codec's 32; stage 4 only refits the discretizer, the codec is kept) the units are serialised frame by frame,
    # codebook c's codes in [c * 32, (c + 1) * 32).
    two = [*base[:-2], "--stage", "4", "--stop_stage", "5", "--discretizer", "encodec"]
    two += ["--discretizer_config", "conf/discretizer/encodec_2cb.yaml", "--upstream_args", CODEC_ARGS]
    proc = subprocess.run(two, cwd=recipe, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = yaml.safe_load((recipe / "exp/discretizer/encodec/encodec_info.yaml").read_text())
    books = info["num_codebooks"]
    assert books >= 2 and info["units_per_second"] == 50.0 * books
    first = [int(u) for u in (recipe / "dump/units/encodec/test/units").read_text().split("\n")[0].split()[1:]]
    assert len(first) % books == 0
    for c in range(books):
        assert all(c * 32 <= u < (c + 1) * 32 for u in first[c::books])
