"""The shared pipeline (egs/TEMPLATE/asr1/asr.sh) on a recipe made by setup.sh, with a tiny tone corpus:
stage selection, .done skipping and rerunning, failing stages, unknown options, speed perturbation, duration limits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from toolkit.datadir import load_data_dir
from toolkit.fileio import read_table
from toolkit.validate import validate_data_dir

from conftest import build_data_dir

REPO = Path(__file__).resolve().parents[2]

DATA_SH = """#!/usr/bin/env bash
set -euo pipefail
nj=1
corpus=CORPUS
. ./path.sh
. utils/parse_options.sh
for d in train dev test; do rm -rf data/$d; mkdir -p data; cp -r $corpus/$d data/$d; done
"""


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    target = tmp_path / "egs/tiny/asr1"
    subprocess.run([str(REPO / "egs/TEMPLATE/asr1/setup.sh"), str(target)], check=True, capture_output=True)
    corpus = tmp_path / "corpus"
    build_data_dir(corpus, "train", num_utts=6, durations=[0.2, 0.6, 0.8, 1.0, 1.2, 5.0])
    build_data_dir(corpus, "dev", num_utts=2)
    build_data_dir(corpus, "test", num_utts=2)
    (target / "local/data.sh").write_text(DATA_SH.replace("CORPUS", str(corpus)))
    return target


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)


def test_setup_makes_a_recipe_with_shared_scripts(recipe):
    assert (recipe / "asr.sh").is_symlink() and (recipe / "utils").is_symlink()
    assert not (recipe / "cmd.sh").is_symlink()
    proc = subprocess.run([str(REPO / "egs/TEMPLATE/asr1/setup.sh"), str(recipe)], capture_output=True, text=True)
    assert proc.returncode == 1 and "already exists" in proc.stderr


def test_stages_run_skip_and_rerun(recipe):
    proc = run(recipe, "--stage", "1", "--stop_stage", "3", "--min_dur", "0.3", "--max_dur", "2")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    train = load_data_dir(recipe / "dump/raw/train")
    assert len(train.utt_ids) == 4
    assert set(read_table(recipe / "dump/raw/train/dropped_utts")) == {"spk0-utt000", "spk1-utt005"}
    assert "dropped 2 utterance(s) of train" in proc.stdout
    assert (recipe / "exp/logs/stage3.log").exists()
    assert len(load_data_dir(recipe / "dump/raw/test").utt_ids) == 2

    again = run(recipe, "--stop_stage", "3", "--min_dur", "0.3", "--max_dur", "2")
    assert again.returncode == 0
    assert "stage 1 (data preparation): skipped" in again.stdout
    assert "stage 3 (format audio): skipped" in again.stdout

    changed = run(recipe, "--stop_stage", "3", "--min_dur", "0.1", "--max_dur", "2")
    assert changed.returncode == 0
    assert "stage 3 (format audio): running (options changed)" in changed.stdout
    assert len(load_data_dir(recipe / "dump/raw/train").utt_ids) == 5


def test_speed_perturbation_stage(recipe):
    proc = run(recipe, "--stop_stage", "3", "--speed_perturb_factors", "0.9 1.0 1.1", "--max_dur", "4")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    train_sp = load_data_dir(recipe / "dump/raw/train_sp")
    assert len(train_sp.utt_ids) == 15  # 6 x 3 minus the 5 s utterance at 0.9 and 1.0 and 1.1
    assert "sp1.1-spk0-utt000" in train_sp.utt_ids


def test_discretizer_fits_on_the_unperturbed_utterances_when_asked(recipe):
    config = recipe / "conf/discretizer/tiny.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("type: mfcc_kmeans\nnum_units: 4\nfit_fraction: 1.0\nkmeans:\n  n_init: 1\n")
    common = ["--stop_stage", "4", "--speed_perturb_factors", "0.9 1.0 1.1", "--max_dur", "4", "--discretizer", "tiny"]
    proc = run(recipe, *common, "--discretizer_fit_perturbed", "false")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    fit_set = load_data_dir(recipe / "dump/raw/train_unperturbed")
    originals = [u for u in load_data_dir(recipe / "data/train").utt_ids if u != "spk1-utt005"]  # 5 s: dropped
    assert sorted(fit_set.utt_ids) == sorted(originals)
    info = yaml.safe_load((recipe / "exp/discretizer/tiny/fit_info.yaml").read_text())
    assert info["utterances"] == 5
    proc = run(
        recipe, "--stage", "4", *common
    )  # the default: every utterance of train_sp (a changed option reruns stage 4)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "stage 4 (fit discretizer): running (options changed)" in proc.stdout
    assert yaml.safe_load((recipe / "exp/discretizer/tiny/fit_info.yaml").read_text())["utterances"] == 15
    assert run(recipe, *common, "--discretizer_fit_perturbed", "no").returncode == 1


def test_failing_stage_prints_the_log_tail_and_writes_no_marker(recipe, tmp_path):
    (tmp_path / "corpus/audio/train/spk1-utt001.wav").write_bytes(b"junk")
    proc = run(recipe, "--stop_stage", "3", "--nj", "2")
    assert proc.returncode != 0
    assert "stage 3 (format audio) FAILED" in proc.stdout + proc.stderr
    assert "utterance 'spk1-utt001'" in proc.stderr
    assert not (recipe / "exp/.done/stage3").exists()
    assert (recipe / "exp/.done/stage1").exists()


def test_bad_options(recipe):
    proc = run(recipe, "--stop_stgae", "3")
    assert proc.returncode == 1 and "unknown option '--stop_stgae'" in proc.stderr
    proc = run(recipe, "--stop_stage", "11")
    assert proc.returncode == 1 and "the pipeline has stages 1-10" in proc.stderr
    proc = run(recipe, "--nj", "0")
    assert proc.returncode == 1 and "--nj must be a positive number" in proc.stderr


def test_slurm_backend_is_selectable(recipe, tmp_path):
    proc = run(recipe, "--stop_stage", "1", "--cmd_backend", "slurm")
    assert proc.returncode == 0  # stage 1 of this recipe runs no parallel jobs
    proc = run(recipe, "--stop_stage", "3", "--cmd_backend", "slurm")
    if not any(Path(p, "sbatch").exists() for p in os.environ["PATH"].split(os.pathsep)):
        assert proc.returncode != 0 and "sbatch not found" in proc.stderr
        assert not (recipe / "exp/.done/stage3").exists()


def test_a_failed_rerun_leaves_the_outputs_and_no_marker_to_trust(recipe):
    # A stage rerun with new options dies (here on a bad option value): the next run with the old options must not
    # say "skipped" on the strength of the old marker, and the old outputs are still whole.
    good = ["--stop_stage", "3", "--min_dur", "0.3", "--max_dur", "2"]
    assert run(recipe, *good).returncode == 0
    before = (recipe / "dump/raw/train/wav.scp").read_text()
    failed = run(recipe, "--stage", "3", "--stop_stage", "3", "--min_dur", "0.3", "--max_dur", "two")
    assert failed.returncode != 0
    assert not (recipe / "exp/.done/stage3").exists()
    assert (recipe / "dump/raw/train/wav.scp").read_text() == before
    assert not (recipe / "dump/raw/train.tmp/wav").exists()
    again = run(recipe, *good)
    assert again.returncode == 0 and "stage 3 (format audio): running (not run yet)" in again.stdout


def test_an_output_edited_after_its_stage_is_redone(recipe):
    assert run(recipe, "--stop_stage", "3").returncode == 0
    text = recipe / "dump/raw/dev/text"
    text.write_text(text.read_text().replace("light", "lamp"))
    again = run(recipe, "--stop_stage", "3")
    assert again.returncode == 0
    assert "stage 3 (format audio): running (output changed since the stage wrote it: dump/raw/" in again.stdout
    assert "lamp" not in text.read_text()


def test_audio_replaced_under_the_same_path_reruns_the_stages_that_read_it(recipe, tmp_path):
    import soundfile as sf

    from conftest import tone

    assert run(recipe, "--stop_stage", "3").returncode == 0
    sf.write(tmp_path / "corpus/audio/dev/spk0-utt000.wav", tone(0.9, 16000), 16000, subtype="PCM_16")
    again = run(recipe, "--stop_stage", "3")
    assert again.returncode == 0
    assert "stage 1 (data preparation): running (output changed" in again.stdout
    assert "stage 3 (format audio): running" in again.stdout
    assert read_table(recipe / "dump/raw/dev/utt2dur")["spk0-utt000"] == "0.900"


def test_a_stage_already_running_elsewhere_is_refused(recipe):
    import fcntl

    (recipe / "exp/.done").mkdir(parents=True)
    with open(recipe / "exp/.done/stage1.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run(recipe, "--stop_stage", "1")
    assert proc.returncode == 1
    assert "stage 1 (data preparation) is already running in another process" in proc.stderr
    assert not (recipe / "data/train").exists()
    assert run(recipe, "--stop_stage", "1").returncode == 0  # released with the process that held it


def test_stereo_audio_the_message_and_the_channel_option_it_suggests(recipe, tmp_path):
    import soundfile as sf

    from conftest import tone

    sf.write(tmp_path / "corpus/audio/dev/spk0-utt000.wav", tone(0.5, 16000, channels=2), 16000, subtype="PCM_16")
    refused = run(recipe, "--stop_stage", "3")
    assert refused.returncode != 0 and "2 channels; pick one with --channel N" in refused.stderr
    proc = run(recipe, "--stop_stage", "3", "--channel", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert validate_data_dir(recipe / "dump/raw/dev", sample_rate=16000) == []
    assert run(recipe, "--stop_stage", "3", "--channel", "x").returncode == 1
