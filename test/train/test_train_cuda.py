"""The GPU paths of every trainer and of decoding, on tiny models. Skipped on machines without CUDA (CI has none):
run them on a GPU machine with `python -m pytest -q test -k cuda`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from test_codec_train import tiny_config as tiny_codec_config
from test_distill import make_student, make_teacher, write_config
from transformers import EncodecModel

from toolkit.bin.decode import main as decode_main
from toolkit.bin.distill import main as distill_main
from toolkit.bin.train import main as train_main
from toolkit.fileio import read_table
from toolkit.train import codec as ct
from toolkit.train.checkpoint import list_checkpoints

from conftest import build_data_dir
from tiny_corpus import build, train_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny_cuda"))


def train_args(corpus, config, out, device="cuda") -> list[str]:
    args = ["--config", str(config), "--train", str(corpus["train"]), "--valid", str(corpus["dev"])]
    return [*args, "--tokenizers", str(corpus["tokenizers"]), "--out", str(out), "--device", device]


def history(out) -> list[dict]:
    return torch.load(list_checkpoints(out / "checkpoints")[-1][1], weights_only=False)["progress"]["history"]


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_cuda_training_learns_in_each_precision(corpus, tmp_path, precision):
    out = tmp_path / "run"
    config = train_config(tmp_path / "c.yaml", epochs=8, precision=precision)
    assert train_main(train_args(corpus, config, out)) == 0
    curve = history(out)
    assert len(curve) == 8
    assert curve[-1]["dev_loss"] < curve[0]["dev_loss"] - 1.0
    assert min(h["dev_wer"] for h in curve) < 75.0
    # The checkpoint holds CPU-loadable tensors, and the saved model loads on the CPU.
    state = torch.load(list_checkpoints(out / "checkpoints")[-1][1], map_location="cpu", weights_only=False)
    assert "cuda" in state["rng"]
    assert json.loads((out / "best/best.json").read_text())["dev_wer"] == min(h["dev_wer"] for h in curve)


@pytest.fixture(scope="module")
def trained_on_cuda(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda_run")
    out = root / "run"
    assert train_main(train_args(corpus, train_config(root / "c.yaml", epochs=8, precision="bf16"), out)) == 0
    return out


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_cuda_decoding_gives_the_cpu_hypotheses(corpus, trained_on_cuda, tmp_path, method):
    """A model trained on the GPU decodes on either device; fp32 decoding agrees across devices (argmax ties aside)."""
    hyps = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        args = ["--exp", str(trained_on_cuda), "--tokens", str(corpus["dev"]), "--out", str(out)]
        assert decode_main([*args, "--set", f"method={method}", "--set", "beam_size=3", "--device", device]) == 0
        hyps[device] = read_table(out / "text", allow_empty_value=True)
    assert hyps["cpu"].keys() == hyps["cuda"].keys() and len(hyps["cpu"]) == 20
    same = sum(hyps["cpu"][u] == hyps["cuda"][u] for u in hyps["cpu"])
    assert same >= 18, f"only {same}/20 hypotheses agree between CPU and CUDA"


def kill_after_first_checkpoint(cmd: list[str], out) -> None:
    """Start the training command and kill -9 it as soon as it has written a checkpoint."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list_checkpoints(out / "checkpoints") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make the run longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_cuda_training_resumes_after_kill_9(corpus, tmp_path):
    config = train_config(tmp_path / "c.yaml", epochs=6)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "toolkit.bin.train", *train_args(corpus, config, out)]
    kill_after_first_checkpoint(cmd, out)
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    assert len(history(out)) == 6


def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu(corpus, tmp_path):
    """A run that lost its GPU goes on on the CPU from the GPU's checkpoint (map_location and the RNG state)."""
    config = train_config(tmp_path / "c.yaml", epochs=3)
    out = tmp_path / "run"
    kill_after_first_checkpoint([sys.executable, "-m", "toolkit.bin.train", *train_args(corpus, config, out)], out)
    assert train_main(train_args(corpus, config, out, device="cpu")) == 0
    assert len(history(out)) == 3


def test_ddp_on_one_gpu_with_nccl(corpus, tmp_path):
    """torchrun with --device cuda initialises NCCL and trains (one process: this machine has one GPU)."""
    out = tmp_path / "ddp"
    config = train_config(tmp_path / "c.yaml", epochs=2)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    cmd += ["-m", "toolkit.bin.train", *train_args(corpus, config, out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(history(out)) == 2


def codec_corpus(root):
    train = build_data_dir(root, "train", num_utts=3, durations=[0.2, 0.03, 0.3])
    return train, build_data_dir(root, "dev", num_utts=2, durations=[0.1, 0.15])


def test_codec_trains_on_cuda_and_encodes_like_the_cpu(tmp_path):
    train, dev = codec_corpus(tmp_path)
    cfg = tiny_codec_config(steps=4, precision="bf16")
    result = ct.train_codec(cfg, ct.CodecPaths(train, dev, tmp_path / "cuda"), device="cuda")
    assert result["steps"] == 4
    model = EncodecModel.from_pretrained(tmp_path / "cuda/model")
    assert next(model.parameters()).device.type == "cpu"
    wave = torch.randn(1, 1, model.config.sampling_rate // 2)
    codes = {}
    for device in ("cpu", "cuda"):
        m = model.to(device).eval()
        with torch.inference_mode():
            codes[device] = m.encode(wave.to(device), bandwidth=m.config.target_bandwidths[0]).audio_codes.cpu()
    assert (codes["cpu"] == codes["cuda"]).float().mean() > 0.9


def test_cuda_and_cpu_codec_runs_start_from_the_same_weights(tmp_path):
    train, dev = codec_corpus(tmp_path)
    cfg = tiny_codec_config(steps=1)
    states = {}
    for device in ("cpu", "cuda"):
        ct.train_codec(cfg, ct.CodecPaths(train, dev, tmp_path / device), device=device, stop_after=0)
        states[device] = torch.load(list_checkpoints(tmp_path / device / "checkpoints")[-1][1], weights_only=False)
    for name, value in states["cpu"]["model"].items():
        torch.testing.assert_close(states["cuda"]["model"][name].cpu(), value, rtol=1e-3, atol=1e-3, msg=name)


def test_distillation_on_cuda(tmp_path):
    setup = {
        "root": tmp_path,
        "teacher": make_teacher(tmp_path / "teacher"),
        "student": make_student(tmp_path / "student16"),
        "data": build_data_dir(tmp_path, "paired", num_utts=6, durations=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
    }
    for precision in ("bf16", "fp16"):
        config = write_config(tmp_path / f"{precision}.yaml", setup, precision=precision)
        out = tmp_path / f"out_{precision}"
        args = ["--config", str(config), "--data", str(setup["data"]), "--out", str(out), "--device", "cuda"]
        assert distill_main(args) == 0
        assert (out / "model" / "config.json").is_file() and (out / "done.json").is_file()
        saved = yaml.safe_load((out / "config.yaml").read_text())
        assert saved["precision"] == precision


@pytest.mark.parametrize("task", ["ic", "sf"])
def test_downstream_trains_and_infers_on_cuda(tmp_path, task):
    from test_downstream_train import labelled, make_upstream
    from test_downstream_train import train as train_head

    from toolkit.bin.infer_downstream import main as infer_main

    setup = {
        "root": tmp_path,
        "upstream": make_upstream(tmp_path / "upstream"),
        "train": labelled(tmp_path, "train", 8),
        "dev": labelled(tmp_path, "dev", 4),
    }
    changes = {"task": task} if task == "ic" else {"task": task, "label_fields": None}
    assert train_head(setup, tmp_path / "run", extra=["--device", "cuda"], **changes) == 0
    assert "epoch 3 done: dev" in (tmp_path / "run" / "train.log").read_text()
    hyp = tmp_path / "hyp"
    argv = ["--model", str(tmp_path / "run"), "--data", str(setup["dev"]), "--out", str(hyp), "--device", "cuda"]
    assert infer_main(argv) == 0
    assert len(read_table(hyp, allow_empty_value=True)) == 4
