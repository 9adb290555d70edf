"""pretrain_hubert end to end on tiny tone data: it trains, saves a loadable encoder, resumes exactly, says when it is
complete, does an iteration-2 run, and reports bad input clearly."""

from __future__ import annotations

import csv
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.bin.pretrain_hubert import main
from toolkit.train.checkpoint import list_checkpoints

from conftest import build_data_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_CONFIG = """
model:
  hidden_size: 32
  num_layers: 2
  num_heads: 2
  intermediate_size: 64
  conv_dim: [16, 16, 16, 16]
  conv_pos_kernel: 8
  conv_pos_groups: 4
loss:
  final_dim: 16
targets:
  num_units: 8
  fit_fraction: 1.0
  max_fit_frames: null
  n_init: 1
mask:
  length: 5
optim:
  lr: 2.0e-3
  warmup_steps: 2
batching:
  max_batch_seconds: 2.5
  max_seconds: 1.0
epochs: 3
precision: bf16
checkpoint_every_steps: 2
log_every_steps: 1
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubert")
    config = root / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    train = build_data_dir(root, "train", durations=[0.8, 1.2, 1.6, 2.0])
    dev = build_data_dir(root, "dev", num_utts=2)
    return {"root": root, "config": config, "train": train, "dev": dev}


def args(corpus, out: Path, *extra: str) -> list[str]:
    base = ["--config", str(corpus["config"]), "--train", str(corpus["train"]), "--valid", str(corpus["dev"])]
    return [*base, "--out", str(out), "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def reference(corpus):
    out = corpus["root"] / "reference"
    assert main(args(corpus, out)) == 0
    return out


def last_weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(list_checkpoints(out / "checkpoints")[-1][1], weights_only=False)["model"]


def test_training_runs_and_saves_a_loadable_encoder(corpus, reference, capsys):
    from transformers import AutoFeatureExtractor, AutoModel

    with open(reference / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-2:]) < sum(losses[:2])  # it learns something even in 6 steps
    dev = [float(r["dev_loss"]) for r in rows if r["dev_loss"]]
    assert len(dev) == 3 and all(math.isfinite(v) for v in dev)
    units = (reference / "targets" / "train.units").read_text().splitlines()
    assert len(units) == 4 and all(len(line.split()) > 10 for line in units)
    assert (reference / "config.yaml").is_file() and "resumed" not in (reference / "train.log").read_text()

    model = AutoModel.from_pretrained(reference / "model")
    extractor = AutoFeatureExtractor.from_pretrained(reference / "model")
    assert type(model).__name__ == "HubertModel" and extractor.do_normalize and extractor.return_attention_mask
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    inputs = extractor([wave], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    assert len(out.hidden_states) == 3 and out.last_hidden_state.shape == (1, 49, 32)  # 20 ms frames
    weights = last_weights(reference)
    assert all(torch.equal(v, weights[f"hubert.{k}"]) for k, v in model.state_dict().items())

    capsys.readouterr()
    assert main(args(corpus, reference)) == 0
    assert "complete" in capsys.readouterr().out


def test_resume_gives_the_weights_of_an_uninterrupted_run(corpus, reference, caplog):
    out = corpus["root"] / "resumed"
    # Stops mid-epoch 1 with a checkpoint, as if killed right after it; the next runs pick up from there.
    assert main(args(corpus, out, "--stop-after-steps", "1")) == 0
    assert not (out / "model").exists()
    units = out / "targets" / "train.units"
    stamp = units.stat().st_mtime_ns
    assert main(args(corpus, out, "--stop-after-steps", "2")) == 0
    assert main(args(corpus, out)) == 0
    assert units.stat().st_mtime_ns == stamp  # targets computed once
    assert units.read_text() == (reference / "targets" / "train.units").read_text()
    assert "resumed from" in (out / "train.log").read_text()
    expected, got = last_weights(reference), last_weights(out)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


def test_iteration_two_clusters_a_layer_of_the_first_model(corpus, reference):
    out = corpus["root"] / "iteration2"
    extra = ["--targets-from", str(reference), "--layer", "1", "--set", "max_steps=2", "--set", "targets.num_units=6"]
    assert main(args(corpus, out, *extra)) == 0
    assert (out / "model" / "config.json").is_file()
    units = [line.split()[1:] for line in (out / "targets" / "train.units").read_text().splitlines()]
    assert all(0 <= int(u) < 6 for line in units for u in line)
    # Killed after the last checkpoint, before the model was written: the rerun only writes the model.
    shutil.rmtree(out / "model")
    assert main(args(corpus, out, *extra)) == 0
    assert (out / "model" / "config.json").is_file() and list_checkpoints(out / "checkpoints")[-1][0] == 2


def test_a_bad_config_key_is_a_clear_error(corpus, tmp_path, capsys):
    assert main(args(corpus, tmp_path / "out", "--set", "model.hiden_size=8")) == 1
    assert "unknown key 'hiden_size'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_missing_train_dir_is_a_clear_error(corpus, tmp_path, capsys):
    argv = args(corpus, tmp_path / "out")
    argv[argv.index("--train") + 1] = str(tmp_path / "nowhere")
    assert main(argv) == 1
    assert f"{tmp_path / 'nowhere'} (the training set) does not exist" in capsys.readouterr().err
