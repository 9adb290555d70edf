"""`--dry_run true` describes every stage of a pipeline (status, inputs, outputs, commands) and runs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = ("data", "dump", "exp", "downloads", "RESULTS.md")


def recipe_copy(tmp_path: Path, task: str) -> Path:
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(
        REPO / "egs/mini_synth", tmp_path / "egs/mini_synth", symlinks=True, ignore=shutil.ignore_patterns(*OUTPUTS)
    )
    return tmp_path / "egs/mini_synth" / task


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    ("task", "stages", "command"),
    [("asr1", 10, "python -m toolkit.bin.train"), ("slu1", 8, "python -m toolkit.bin.distill")],
)
def test_a_dry_run_describes_every_stage_and_writes_nothing(tmp_path, task, stages, command):
    recipe = recipe_copy(tmp_path, task)
    before = sorted(p.name for p in recipe.iterdir())
    proc = run(recipe, "--dry_run", "true")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for n in range(1, stages + 1):
        assert f"stage {n} (" in proc.stdout
    assert proc.stdout.count("would run (not run yet)") == stages
    assert "reads:" in proc.stdout and "writes:" in proc.stdout and command in proc.stdout
    assert sorted(p.name for p in recipe.iterdir()) == before  # no data/, exp/, dump/


def test_a_dry_run_says_which_stages_would_be_skipped(tmp_path):
    recipe = recipe_copy(tmp_path, "slu1")
    # Stage 1 recorded as done for exactly these inputs and options (what a finished stage 1 leaves behind).
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    for d in (
        "paired",
        "train",
        "dev",
        "ic_train",
        "ic_dev",
        "ic_test",
        "sf_train",
        "sf_dev",
        "sf_test",
        "ic_test_seen",
        "ic_test_accent",
        "sf_test_seen",
        "sf_test_accent",
    ):
        (recipe / "data" / d).mkdir(parents=True)
    described = run(recipe, "--dry_run", "true", "--stop_stage", "1").stdout
    options = next(line for line in described.splitlines() if "options:" in line).split("options: ", 1)[1]
    writes = next(line for line in described.splitlines() if "writes:" in line).split("writes: ", 1)[1].split()
    mark = [sys.executable, "-m", "toolkit.bin.stage", "mark", "--marker", "exp/.done/stage1"]
    subprocess.run(
        [*mark, "--inputs", "local", "--outputs", *writes, "--options", options], cwd=recipe, check=True, env=env
    )
    proc = run(recipe, "--dry_run", "true", "--stop_stage", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stage 1 (data preparation): would be skipped" in proc.stdout
    assert "stage 2 (format audio): would run" in proc.stdout


def test_a_bad_dry_run_value_is_an_error(tmp_path):
    proc = run(recipe_copy(tmp_path, "asr1"), "--dry_run", "maybe")
    assert proc.returncode != 0 and "--dry_run must be true or false" in proc.stderr


def test_the_quick_preset_sets_the_corpus_size_and_train_config_and_later_options_win(tmp_path):
    recipe = recipe_copy(tmp_path, "asr1")
    quick = run(recipe, "--preset", "quick", "--dry_run", "true", "--stop_stage", "7")
    assert quick.returncode == 0, quick.stderr[-2000:]
    assert "local_data_opts=--train_utts 15000" in quick.stdout
    assert "conf/train_sld_quick.yaml" in quick.stdout and "exp/train_sld_quick_mfcc_kmeans" in quick.stdout
    default = run(recipe, "--dry_run", "true", "--stop_stage", "7").stdout
    assert "--train_utts 15000" not in default and "train_sld_quick" not in default
    override = run(recipe, "--preset=quick", "--local_data_opts", "--train_utts 20000", "--dry_run", "true")
    assert "local_data_opts=--train_utts 20000" in override.stdout and "conf/train_sld_quick.yaml" in override.stdout
    bad = run(recipe, "--preset", "fast", "--dry_run", "true")
    assert bad.returncode != 0 and "error: --preset 'fast': use default or quick" in bad.stderr


def test_with_gpus_the_dump_and_decoding_jobs_each_get_one(tmp_path):
    # run_jobs --gpus gives job k GPU (k-1) mod ngpu (test/test_jobs.py); here: stages 5 and 8 ask for it.
    proc = run(recipe_copy(tmp_path, "asr1"), "--ngpu", "2", "--dry_run", "true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for stage in ("stage 5 (dump units)", "stage 8 (decoding)"):
        body = proc.stdout.split(stage, 1)[1].split("\nstage ", 1)[0]
        assert 'gpu_args=(--gpus "$ngpu")' in body and '"${gpu_args[@]}"' in body, body


def test_training_on_several_gpus_or_nodes_goes_through_the_launcher(tmp_path):
    proc = run(recipe_copy(tmp_path, "asr1"), "--ngpu", "8", "--num_nodes", "4", "--dry_run", "true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = proc.stdout.split("stage 7 (training)", 1)[1].split("\nstage ", 1)[0]
    assert "python -m toolkit.bin.launch" in body and '--nnodes "$num_nodes"' in body and "torchrun" not in body
    bad = run(recipe_copy(tmp_path / "b", "asr1"), "--num_nodes", "0", "--dry_run", "true")
    assert bad.returncode != 0 and "--num_nodes must be a positive number" in bad.stderr
