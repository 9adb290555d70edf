"""Stage 7 then 8 on the tiny corpus: the decode entry point reads what training wrote and writes a Kaldi text."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from toolkit.bin.decode import main as decode_main
from toolkit.bin.train import main as train_main
from toolkit.fileio import read_table

from tiny_corpus import build, train_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    corpus = build(root, train_utts=120)
    out = root / "run"
    args = ["--config", str(train_config(root / "c.yaml", epochs=2)), "--train", str(corpus["train"])]
    args += ["--valid", str(corpus["dev"]), "--tokenizers", str(corpus["tokenizers"]), "--out", str(out)]
    assert train_main([*args, "--device", "cpu"]) == 0
    return corpus, out


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_decode_writes_a_hypothesis_per_utterance(trained, tmp_path, method):
    corpus, exp = trained
    out = tmp_path / "decode"
    args = ["--exp", str(exp), "--tokens", str(corpus["dev"]), "--out", str(out), "--set", f"method={method}"]
    assert decode_main([*args, "--set", "beam_size=3", "--device", "cpu"]) == 0
    hyps = read_table(out / "text", allow_empty_value=True)
    assert list(hyps) == sorted(read_table(corpus["dev"] / "text"))


def test_sharded_decoding_partitions_the_set(trained, tmp_path):
    corpus, exp = trained
    out = tmp_path / "decode"
    for shard in (1, 2):
        args = ["--exp", str(exp), "--tokens", str(corpus["dev"]), "--out", str(out)]
        assert decode_main([*args, "--shard", str(shard), "--num-shards", "2", "--device", "cpu"]) == 0
    parts = [read_table(out / f"text.{k}", allow_empty_value=True) for k in (1, 2)]
    assert not parts[0].keys() & parts[1].keys()
    assert len(parts[0]) + len(parts[1]) == 20


def test_decode_without_a_trained_model_is_a_clear_error(trained, tmp_path, capsys):
    corpus, _ = trained
    assert decode_main(["--exp", str(tmp_path), "--tokens", str(corpus["dev"]), "--out", str(tmp_path / "o")]) == 1
    assert "best does not exist" in capsys.readouterr().err


def test_prompts_longer_than_the_model_get_empty_hypotheses(trained, tmp_path, capsys):
    """A model whose position limit is below some prompts decodes the rest and leaves those empty, with a warning."""
    import json
    import shutil

    corpus, exp = trained
    small = tmp_path / "exp"
    shutil.copytree(exp, small)
    lengths = sorted(len(line.split()) - 1 for line in (corpus["dev"] / "speech").read_text().splitlines())
    limit = lengths[len(lengths) // 2] + 2  # about half of the dev prompts reach it (prompt: <bos> speech <speech_end>)
    config = json.loads((small / "best/config.json").read_text())
    config["max_position_embeddings"] = limit
    (small / "best/config.json").write_text(json.dumps(config))
    out = tmp_path / "decode"
    assert decode_main(["--exp", str(small), "--tokens", str(corpus["dev"]), "--out", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert f"prompts of {limit} tokens or more" in err and "scored as deletions" in err
    hyps = read_table(out / "text", allow_empty_value=True)
    assert len(hyps) == 20 and any(not h for h in hyps.values())


def test_decode_precision_is_resolved_and_reported(trained, tmp_path, capsys):
    """precision: auto decodes in fp32 on a CPU (bf16 is not faster there for token-by-token decoding); an explicit
    bf16 runs under bf16 autocast; an unknown precision is a config error that names the key."""
    corpus, exp = trained
    args = ["--exp", str(exp), "--tokens", str(corpus["dev"]), "--device", "cpu"]
    assert decode_main([*args, "--out", str(tmp_path / "auto")]) == 0
    assert "precision fp32 (config: auto): this work is not bound by large matmuls" in capsys.readouterr().err
    assert decode_main([*args, "--out", str(tmp_path / "bf16"), "--set", "precision=bf16"]) == 0
    assert "precision bf16 (config: bf16)" in capsys.readouterr().err
    assert list(read_table(tmp_path / "bf16/text", allow_empty_value=True)) == sorted(
        read_table(corpus["dev"] / "text")
    )
    assert decode_main([*args, "--out", str(tmp_path / "bad"), "--set", "precision=fp64"]) == 1
    assert "precision must be one of auto, fp32, bf16, fp16, got 'fp64'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_training_draws_its_curves(trained):
    # matplotlib is a dependency of the toolkit, so every run has a picture beside curves.csv.
    _, exp = trained
    png = exp / "curves.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_in_a_log_file_is_one_line_per_interval(tmp_path):
    # Written to a file (no terminal), the bar redraws every PROGRESS_INTERVAL_S (30 s), not at every step: the
    # per-step loss shown by set_postfix must not force a redraw. 40 steps in a few seconds: the opening and closing
    # draws only.
    corpus = build(tmp_path / "c", train_utts=200)
    args = ["--config", str(train_config(tmp_path / "c.yaml", epochs=1, batching={"max_tokens": 150}))]
    args += ["--train", str(corpus["train"]), "--valid", str(corpus["dev"]), "--tokenizers", str(corpus["tokenizers"])]
    env = {k: v for k, v in os.environ.items() if k != "TOOLKIT_INTERACTIVE"}
    with open(tmp_path / "stage7.log", "w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "toolkit.bin.train", *args, "--out", str(tmp_path / "run"), "--device", "cpu"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    text = (tmp_path / "stage7.log").read_text()
    assert proc.returncode == 0, text[-2000:]
    steps = int(re.search(r"(\d+) batches per epoch", text).group(1))
    draws = [part for part in re.split(r"[\r\n]", text) if part.startswith("epoch 1/1:")]
    assert steps >= 20 and len(draws) <= 3, draws
