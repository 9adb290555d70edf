"""egs/mini_synth/asr1/run_comparison.sh's sequencing and its losses x discretizers table, with a stand-in run.sh
that records how it is called and writes a score for each training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Stages 7-9 calls write exp/<tag>/decode/test/score.json with a WER made from the tag, so the table is predictable.
FAKE_RUN = """#!/usr/bin/env bash
echo "$*" >> calls.txt
tag=""; prev=""
for a in "$@"; do
    [ "$prev" = "--tag" ] && tag=$a
    [ -n "${FAIL_TAG:-}" ] && [ "$a" = "$FAIL_TAG" ] && exit 3
    prev=$a
done
if [ -n "$tag" ]; then
    mkdir -p "exp/$tag/decode/test"
    seed=${tag##*_seed}
    case $tag in lm_*|*_lm_*) base=30 ;; ce_*|*_ce_*) base=20 ;; *) base=10 ;; esac
    echo "{\\"wer\\": $((base + seed)), \\"cer\\": 1.0, \\"n_utt\\": 5}" > "exp/$tag/decode/test/score.json"
fi
exit 0
"""


def recipe(tmp_path: Path) -> Path:
    root = tmp_path / "egs/corpus/asr1"
    (root / "conf/discretizer").mkdir(parents=True)
    for loss in ("lm", "ce", "sld"):
        (root / f"conf/train_{loss}.yaml").write_text("loss: {}\n")
    for disc in ("mfcc_kmeans", "encodec"):
        (root / f"conf/discretizer/{disc}.yaml").write_text(f"type: {disc}\n")
    report = {"phones": [{"pnmi": 0.5}], "codebook": [{"perplexity": 300.0, "num_units": 500}], "bitrate": {}}
    (root / "dump/units/encodec/test").mkdir(parents=True)
    (root / "dump/units/encodec/test/unit_report.json").write_text(json.dumps(report))
    (root / "run.sh").write_text(FAKE_RUN)
    (root / "run.sh").chmod(0o755)
    (root / "run_comparison.sh").symlink_to(REPO / "egs/mini_synth/asr1/run_comparison.sh")
    (root / "utils").symlink_to(REPO / "egs/TEMPLATE/asr1/utils")
    (root / "path.sh").symlink_to(REPO / "egs/TEMPLATE/asr1/path.sh")
    (root / "exp").mkdir()
    return root


def run(root: Path, *args: str, fail: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable, TOOLKIT_ROOT=str(REPO), FAIL_TAG=fail)
    return subprocess.run(["./run_comparison.sh", *args], cwd=root, capture_output=True, text=True, env=env)


def test_every_loss_discretizer_and_seed_runs_and_the_table_is_written(tmp_path):
    root = recipe(tmp_path)
    args = ["--losses", "lm sld", "--discretizers", "mfcc_kmeans encodec", "--seeds", "1 2", "--jobs", "2"]
    proc = run(root, *args, "--tag_prefix", "gpu_", "--", "--ngpu", "1")
    assert proc.returncode == 0, proc.stderr
    calls = (root / "calls.txt").read_text().splitlines()
    assert calls[:2] == [
        "--stage 1 --stop_stage 6 --discretizer mfcc_kmeans --ngpu 1",
        "--stage 1 --stop_stage 6 --discretizer encodec --ngpu 1",
    ]
    tags = sorted(c.split("--tag ")[1].split()[0] for c in calls[2:])
    assert tags == sorted(
        f"gpu_{loss}_{d}_seed{s}" for loss in ("lm", "sld") for d in ("mfcc_kmeans", "encodec") for s in (1, 2)
    )
    one = next(c for c in calls if "--tag gpu_sld_encodec_seed2" in c)
    assert "--discretizer encodec" in one and "--train_config conf/train_sld.yaml" in one
    assert "--set seed=2" in one and one.endswith("--ngpu 1")
    results = (root / "exp/RESULTS.md").read_text()
    grid = results[results.index("<!-- grid:begin -->") : results.index("<!-- grid:end -->")]
    # WER = base (lm 30, sld 10) + seed: seeds 1 and 2 give mean base + 1.5, sample std 0.71
    assert "| mfcc_kmeans | - | - | - | 31.50 ± 0.71 | 11.50 ± 0.71 | 1,2 |" in grid
    assert "| encodec | 0.500 | 300 / 500 | - | 31.50 ± 0.71 | 11.50 ± 0.71 | 1,2 |" in grid
    assert "<!-- results:begin -->" in results  # make_results' block too


def test_a_single_discretizer_with_the_old_option(tmp_path):
    root = recipe(tmp_path)
    proc = run(root, "--discretizer", "encodec", "--losses", "ce", "--seeds", "3")
    assert proc.returncode == 0, proc.stderr
    calls = (root / "calls.txt").read_text().splitlines()
    assert calls[0] == "--stage 1 --stop_stage 6 --discretizer encodec" and "--tag ce_encodec_seed3" in calls[1]


def test_a_failed_run_is_listed_and_the_others_go_on(tmp_path):
    root = recipe(tmp_path)
    proc = run(root, "--losses", "lm sld", "--seeds", "1", fail="lm_mfcc_kmeans_seed1")
    assert proc.returncode == 1
    assert "failed: lm_mfcc_kmeans_seed1" in proc.stderr
    assert (root / "exp/sld_mfcc_kmeans_seed1/decode/test/score.json").is_file()
    assert "(seed 1 only)" in (root / "exp/RESULTS.md").read_text()


def test_bad_options_are_clear_errors(tmp_path):
    root = recipe(tmp_path)
    for args, message in (
        (["--losses", "lm nosuch"], "unknown loss 'nosuch'"),
        (["--discretizers", "mfcc_kmeans wav2vec"], "unknown discretizer 'wav2vec'"),
        (["--seeds", "1 x"], "--seeds must list whole numbers"),
        (["--jobs", "0"], "--jobs must be a positive number"),
    ):
        proc = run(root, *args)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
        assert not (root / "calls.txt").exists()
