"""The embedded SLU recipe (egs/mini_synth/slu1) at a tiny size, run as a user runs it: every stage, a tiny HuBERT,
a few distillation steps with the real MiniLM teacher, one epoch of each downstream head, scoring and RESULTS.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mini_synth_recipe import HUBERT_ARGS, copy_recipe

from toolkit.datadir import load_data_dir
from toolkit.fileio import read_table

SIZES = "--train_utts 80 --dev_utts 30 --test_utts 30 --paired_utts 24 --ic_train_utts 20 --sf_train_utts 20 --seed 7"
DISTILL_ARGS = "--set max_steps=3 --set dev.max_utts=4"
DOWNSTREAM_ARGS = "--set epochs=1 --set slot_filling.hidden_size=16 --set slot_filling.projection_dim=16"


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    cmd = ["./run.sh", "--nj", "2", "--local_data_opts", SIZES, "--upstream_args", HUBERT_ARGS]
    cmd += ["--distill_args", DISTILL_ARGS, "--downstream_args", DOWNSTREAM_ARGS, *args]
    return subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, env=env)


def test_the_slu_recipe_end_to_end(tmp_path):
    recipe = copy_recipe(tmp_path, "slu1")
    proc = run(recipe)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    # stage 1: the task sets hold the right kinds of utterances
    ic = load_data_dir(recipe / "data/ic_train")
    assert len(ic.utt_ids) == 20 and all(label.count("|") == 2 for label in ic["utt2intent"].values())
    sf = load_data_dir(recipe / "data/sf_test")
    assert all("|" not in label and label != "chat" for label in sf["utt2intent"].values())
    assert len(load_data_dir(recipe / "data/paired").utt_ids) == 24
    # stages 3-4: the pretrained and the distilled upstream load like hub models
    assert (recipe / "exp/upstream/hubert/model/config.json").exists()
    assert (recipe / "exp/distill/pad_slocal/model/config.json").exists()
    # stages 5-7: heads, predictions for every dev/test utterance, scores, RESULTS.md
    for task, table, metric in (("ic", "utt2intent", "accuracy"), ("sf", "text.slots", "slot_type_f1")):
        for dset in (f"{task}_dev", f"{task}_test"):
            eval_dir = recipe / f"exp/{task}_pad_slocal/eval/{dset}"
            hyp = (eval_dir / f"hyp.{table}").read_text().splitlines()
            assert len(hyp) == len(load_data_dir(recipe / f"data/{dset}").utt_ids)
            score = json.loads((eval_dir / "score.json").read_text())
            assert score["task"] == task and 0.0 <= score[metric] <= 100.0
    results = (recipe / "exp/RESULTS.md").read_text()
    assert "intent classification" in results and "slot filling" in results and "ic_pad_slocal" in results

    # stage 8: the packed model, moved away from exp/, gives stage 6's predictions on the same audio
    moved = tmp_path / "elsewhere"
    shutil.copytree(recipe / "exp/slu_pad_slocal/model", moved)
    understand = [sys.executable, "-m", "toolkit.bin.understand", "--model", str(moved), "--device", "cpu"]
    for task, table in (("ic", "utt2intent"), ("sf", "text.slots")):
        scp = recipe / f"dump/raw/{task}_test/wav.scp"
        out = tmp_path / f"understood_{task}"
        proc = subprocess.run(
            [*understand, "--wav-scp", str(scp), "--task", task, "--out", str(out)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        stage6 = read_table(recipe / f"exp/{task}_pad_slocal/eval/{task}_test/hyp.{table}", allow_empty_value=True)
        assert read_table(out / f"hyp.{table}", allow_empty_value=True) == stage6

    # A second run skips every stage; the no-distillation baseline reuses stages 1-3 and reads the HuBERT itself.
    again = run(recipe)
    assert again.returncode == 0 and "train the upstream" not in again.stdout and "distil with" not in again.stdout
    base = run(recipe, "--distill_config", "none", "--stage", "4")
    assert base.returncode == 0, base.stdout[-4000:] + base.stderr[-4000:]
    assert "no distillation" in base.stdout
    head = (recipe / "exp/ic_none/train.log").read_text()
    assert "exp/upstream/hubert/model" in head
    assert "sf_none" in (recipe / "exp/RESULTS.md").read_text()

    # The test sets' two conditions partition them by base voice.
    for task in ("ic", "sf"):
        test = load_data_dir(recipe / f"data/{task}_test")
        seen = load_data_dir(recipe / f"data/{task}_test_seen")
        accent = load_data_dir(recipe / f"data/{task}_test_accent")
        assert sorted(seen.utt_ids + accent.utt_ids) == sorted(test.utt_ids)
        assert all("base=en-gb-scotland" in accent["spk2voice"][s] for s in accent["utt2spk"].values())
        assert not any("base=en-gb-scotland" in seen["spk2voice"][s] for s in seen["utt2spk"].values())

    # The diagnosis trains the same heads on a reference upstream and scores both conditions (each upstream has its
    # own test in test/train/test_downstream_train.py; one shows the script end to end).
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    options = ["--nj", "2", "--local_data_opts", SIZES, "--upstream_args", HUBERT_ARGS, "--downstream_args"]
    cmd = ["./run_diagnosis.sh", "--upstreams", "text", "--", *options, DOWNSTREAM_ARGS]
    diag = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, env=env)
    assert diag.returncode == 0, diag.stdout[-4000:] + diag.stderr[-4000:]
    for name in ("text",):
        for task, metric in (("ic", "accuracy"), ("sf", "slot_type_f1")):
            for dset in (f"{task}_test_seen", f"{task}_test_accent"):
                score = json.loads((recipe / f"exp/{task}_diag_{name}_seed1/eval/{dset}/score.json").read_text())
                assert 0.0 <= score[metric] <= 100.0


def test_bad_options_are_clear_errors(tmp_path):
    recipe = copy_recipe(tmp_path, "slu1")
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    for args, message in (
        (["--tasks", "ic xx"], "unknown task 'xx'"),
        (["--ic_sets", "a b"], "needs a train, a dev and at least one test set"),
        (["--upstream_trainer", ""], "give --upstream"),
    ):
        proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr[-2000:])
