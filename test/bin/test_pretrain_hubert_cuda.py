"""HuBERT pretraining on the GPU (bf16 autocast): it trains and saves an encoder that loads on the CPU. Skipped
without CUDA (CI has none)."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from test_pretrain_hubert import args, corpus  # noqa: F401 - corpus is a fixture

from toolkit.bin.pretrain_hubert import main

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_pretraining_on_cuda(corpus, tmp_path):  # noqa: F811
    from transformers import AutoModel

    out = tmp_path / "cuda"
    argv = [a if a != "cpu" else "cuda" for a in args(corpus, out)]
    assert "cuda" in argv
    assert main(argv) == 0
    with open(out / "curves.csv", newline="") as f:
        losses = [float(r["train_loss"]) for r in csv.DictReader(f) if r["train_loss"]]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    model = AutoModel.from_pretrained(out / "model")
    assert next(model.parameters()).device.type == "cpu"
    assert "resumed" not in (out / "train.log").read_text()
