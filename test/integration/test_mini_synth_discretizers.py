"""The embedded recipe with the discretizers whose model stage 4 trains first (hubert_kmeans, encodec), at a tiny
size: stages 1-6, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from mini_synth_recipe import HUBERT_ARGS, SIZES, copy_recipe

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
