"""The training loop end to end on a tiny corpus: it learns, resumes exactly after kill -9, and runs under DDP."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from toolkit.bin.train import main as train_main
from toolkit.train import compiling
from toolkit.train.checkpoint import list_checkpoints
from toolkit.train.loop import forward_loss

from tiny_corpus import TINY_MODEL, build, train_config

# Without a C++ compiler compile=true trains uncompiled (tested below); the compiled path itself cannot run. The
# library's own check decides.
needs_cpp_compiler = pytest.mark.skipif(
    compiling.compiler_problem(torch.device("cpu")) is not None, reason="torch.compile on CPU needs a C++ compiler"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny"))


def train_args(corpus, config: Path, out: Path) -> list[str]:
    return [
        "--config",
        str(config),
        "--train",
        str(corpus["train"]),
        "--valid",
        str(corpus["dev"]),
        "--tokenizers",
        str(corpus["tokenizers"]),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--threads",
        "1",
    ]


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    _, path = list_checkpoints(out / "checkpoints")[-1]
    return torch.load(path, weights_only=False)["model"]


def test_training_learns_and_writes_its_outputs(corpus, tmp_path):
    out = tmp_path / "run"
    config = train_config(tmp_path / "c.yaml", epochs=12)
    assert train_main(train_args(corpus, config, out)) == 0
    history = torch.load(list_checkpoints(out / "checkpoints")[-1][1], weights_only=False)["progress"]["history"]
    assert len(history) == 12
    assert history[-1]["dev_loss"] < history[0]["dev_loss"] - 1.0
    assert min(h["dev_wer"] for h in history) < 75.0  # the first epochs sit at ~100%
    best = json.loads((out / "best/best.json").read_text())
    assert best["dev_wer"] == min(h["dev_wer"] for h in history)
    assert (out / "config.yaml").exists() and (out / "train.log").exists() and (out / "curves.csv").exists()
    assert (out / "best/config.json").exists()  # save_pretrained
    assert len(list_checkpoints(out / "checkpoints")) == 2  # keep_last


def test_schedule_spans_all_steps_when_sequences_per_batch_are_capped(corpus, tmp_path):
    """With batching.max_sequences the epochs have more batches than max_tokens alone gives; the linear decay must
    still end at the last step, not halfway through and then train at lr 0."""
    out = tmp_path / "run"
    config = train_config(
        tmp_path / "c.yaml",
        epochs=2,
        batching={"max_tokens": 600, "max_sequences": 2},
        optim={"lr": 1e-2, "warmup_steps": 0, "schedule": "linear"},
        dev={"max_utts": 2, "decode_wer": False},
        log_every_steps=1,
    )
    assert train_main(train_args(corpus, config, out)) == 0
    rows = [line.split(",") for line in (out / "curves.csv").read_text().splitlines()]
    lr = [float(r[rows[0].index("lr")]) for r in rows[1:] if r[rows[0].index("train_loss")]]
    assert len(lr) > 4 and all(v > 0 for v in lr[:-1])  # never at 0 before the end
    assert lr[-1] < 0.1 * lr[0]  # and decayed to ~0 at the end


def test_padding_batches_to_a_multiple_leaves_the_loss_unchanged(corpus):
    """batching.pad_to_multiple only adds masked padding: the same batch gives the same loss and statistics."""
    from toolkit.config import load_config
    from toolkit.models.speech_lm import build_speech_lm
    from toolkit.tokenizers.vocab import VocabLayout
    from toolkit.train.config import TrainConfig
    from toolkit.train.data import load_examples, sequence_length
    from toolkit.train.loop import compute_batch_loss

    layout = VocabLayout.load(corpus["tokenizers"] / "vocab.json")
    batch = load_examples(corpus["train"], layout)[:7]
    torch.manual_seed(0)
    cfg = load_config(TrainConfig, None, [f"model.{k}={v}" for k, v in TINY_MODEL.items()] + ["precision=fp32"])
    lengths = {sequence_length(e, cfg.use_bos) for e in batch}
    model = build_speech_lm(cfg.model, layout).eval()
    results = []
    for multiple in (1, 16):
        cfg.batching.pad_to_multiple = multiple
        with torch.no_grad():
            results.append(compute_batch_loss(model, batch, layout, cfg, torch.device("cpu")))
    (plain, plain_stats), (padded, padded_stats) = results
    assert max(lengths) % 16 != 0  # the padded batch is really longer
    assert padded.item() == pytest.approx(plain.item(), rel=1e-5)
    assert padded_stats == pytest.approx(plain_stats, rel=1e-5)


def test_resume_after_kill_9_matches_an_uninterrupted_run(corpus, tmp_path):
    config = train_config(tmp_path / "c.yaml")
    reference = tmp_path / "reference"
    assert train_main(train_args(corpus, config, reference)) == 0

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "toolkit.bin.train", *train_args(corpus, config, out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list_checkpoints(out / "checkpoints") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make the run longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    expected, got = final_weights(reference), final_weights(out)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def train_losses(out: Path) -> list[float]:
    rows = (out / "curves.csv").read_text().splitlines()
    column = rows[0].split(",").index("train_loss")
    return [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]


@needs_cpp_compiler
def test_compiled_training_steps_match_uncompiled_ones(corpus, tmp_path):
    """compile=true changes how a step is computed, not what: the same losses step by step (fp32). With
    eager_fast_dropout the dropout masks are drawn outside the compiled graph, so dropout stays on and they match."""
    losses = {}
    for compile_ in (False, True):
        out = tmp_path / f"compile_{compile_}"
        config = train_config(
            tmp_path / f"{compile_}.yaml",
            epochs=1,
            compile=compile_,
            model={**TINY_MODEL, "dropout": 0.1, "attn_implementation": "eager_fast_dropout"},
            dev={"max_utts": 4},
            log_every_steps=1,
        )
        assert train_main(train_args(corpus, config, out)) == 0
        losses[compile_] = train_losses(out)
        assert (out / "best/config.json").exists() and list_checkpoints(out / "checkpoints")
    assert "training steps run under torch.compile" in (tmp_path / "compile_True/train.log").read_text()
    assert "compile: auto" not in (tmp_path / "compile_True/train.log").read_text()
    assert "torch.compile" not in (tmp_path / "compile_False/train.log").read_text()
    assert len(losses[True]) == len(losses[False]) >= 5
    assert losses[True] == pytest.approx(losses[False], rel=1e-3)


def test_compile_without_a_cpp_compiler_trains_uncompiled(monkeypatch, caplog):
    import torch._inductor.cpp_builder as cpp_builder

    def no_compiler():
        raise RuntimeError("no C++ compiler found (searched g++)")

    cpu = torch.device("cpu")
    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    with caplog.at_level(logging.INFO, logger="toolkit.train"):
        assert compiling.compiled(forward_loss, cpu) is forward_loss
        assert compiling.StepCompiler(forward_loss, True, cpu, 10_000).forward is forward_loss
        auto = compiling.StepCompiler(forward_loss, "auto", cpu, 10_000)
    assert "no C++ compiler found" in caplog.text and "apt install g++" in caplog.text
    assert auto.forward is forward_loss and auto.decision is False  # decided at once: nothing to time


@needs_cpp_compiler
def test_compiled_run_resumes_exactly(corpus, tmp_path):
    """compile=true with dropout: the masks (eager_fast_dropout draws them outside the compiled graph) and the
    compiled kernels are the same after a restart, so a run resumed from an earlier checkpoint ends with the same
    weights. (Resuming after kill -9 itself is the test above; compiling three processes there would cost a minute.)"""
    model = {**TINY_MODEL, "dropout": 0.1, "attn_implementation": "eager_fast_dropout"}
    config = train_config(tmp_path / "c.yaml", compile=True, model=model)
    out = tmp_path / "run"
    assert train_main(train_args(corpus, config, out)) == 0
    checkpoints = list_checkpoints(out / "checkpoints")
    assert len(checkpoints) == 2
    expected = final_weights(out)
    checkpoints[-1][1].unlink()  # back to the checkpoint before the last
    assert train_main(train_args(corpus, config, out)) == 0
    assert "resumed from" in (out / "train.log").read_text()
    got = final_weights(out)
    assert list_checkpoints(out / "checkpoints")[-1][0] == checkpoints[-1][0]
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_changed_config_does_not_resume_silently(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(train_args(corpus, train_config(tmp_path / "a.yaml", epochs=1), out)) == 0
    other = train_config(tmp_path / "b.yaml", epochs=2)
    assert train_main(train_args(corpus, other, out)) == 1
    assert "holds a run of a different configuration" in capsys.readouterr().err


def test_bad_config_is_a_clear_error(corpus, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("optim:\n  lrr: 0.1\n")
    assert train_main(train_args(corpus, config, tmp_path / "run")) == 1
    assert "unknown key 'lrr'" in capsys.readouterr().err


def test_ddp_two_cpu_processes(corpus, tmp_path):
    out = tmp_path / "ddp"
    config = train_config(tmp_path / "c.yaml", epochs=2)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "toolkit.bin.train",
        *train_args(corpus, config, out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(list_checkpoints(out / "checkpoints")[-1][1], weights_only=False)
    single = tmp_path / "single"
    assert train_main(train_args(corpus, config, single)) == 0
    single_state = torch.load(list_checkpoints(single / "checkpoints")[-1][1], weights_only=False)
    # Two processes split each epoch's batches: half the optimizer steps of one process.
    assert state["progress"]["step"] * 2 <= single_state["progress"]["step"] + 2
    assert len(state["progress"]["history"]) == 2


def test_auto_precision_and_compile_are_decided_logged_and_kept_on_resume(corpus, tmp_path, monkeypatch):
    """precision: auto resolves through toolkit.hardware at start-up (here a host whose probe says bf16 is fast) and
    is logged, while config.yaml keeps `auto`; compile: auto times the first steps, decides, logs why, and stores
    the decision in the checkpoints so that a resumed run computes its steps the same way without timing again."""
    from toolkit import hardware

    monkeypatch.setattr(
        hardware, "cpu_info", lambda: hardware.CpuInfo("Test CPU", "x86_64", frozenset({"avx512_bf16"}), 1)
    )
    monkeypatch.setattr(hardware, "cpu_probe", lambda threads: hardware.Probe(fp32_gflops=100.0, bf16_gflops=300.0))
    monkeypatch.setattr(compiling, "SKIP_STEPS", 1)
    monkeypatch.setattr(compiling, "TIMED_STEPS", 2)
    monkeypatch.setattr(compiling, "should_compile", lambda seconds, steps: (True, "test: compiling from now on"))
    monkeypatch.setattr(compiling, "compiler_problem", lambda device: None)
    compiled_at: list[int] = []

    def fake_compiled(function, device):  # compiling for real is tested above; here only the decision matters
        compiled_at.append(len(compiled_at))
        return function

    monkeypatch.setattr(compiling, "compiled", fake_compiled)
    config = train_config(tmp_path / "c.yaml", epochs=2, precision="auto", compile="auto")
    out = tmp_path / "run"
    assert train_main(train_args(corpus, config, out)) == 0
    log_text = (out / "train.log").read_text()
    assert "precision bf16 (config: auto): native bf16, 3.00x fp32" in log_text
    assert "compile: auto: timing the first" in log_text and "compile: auto: test: compiling from now on" in log_text
    assert (
        "precision: auto" in (out / "config.yaml").read_text() and "compile: auto" in (out / "config.yaml").read_text()
    )
    assert len(compiled_at) == 1
    checkpoints = list_checkpoints(out / "checkpoints")
    assert torch.load(checkpoints[-1][1], weights_only=False)["progress"]["compiled"] is True
    first = torch.load(checkpoints[0][1], weights_only=False)["progress"]
    assert first["step"] >= 3 and first["compiled"] is True

    checkpoints[-1][1].unlink()  # resume from the first checkpoint: the stored decision is taken as it is
    monkeypatch.setattr(compiling, "should_compile", lambda seconds, steps: (False, "test: stays uncompiled"))
    assert train_main(train_args(corpus, config, out)) == 0
    assert len(compiled_at) == 2  # compiled again at the start, not timed again
    resumed_log = (out / "train.log").read_text()[len(log_text) :]
    assert "resumed from" in resumed_log and "timing the first" not in resumed_log


def test_the_schedule_ends_at_the_last_step_when_grad_accum_does_not_divide_the_batches(corpus, tmp_path):
    # An epoch's last, partial accumulation is a step too: rounding the steps per epoch down ended the schedule
    # before training did, and the last steps ran at the final learning rate.
    out = tmp_path / "run"
    config = train_config(
        tmp_path / "c.yaml",
        epochs=1,
        optim={"lr": 1e-2, "warmup_steps": 0, "schedule": "linear", "grad_accum": 3},
        dev={"max_utts": 2, "decode_wer": False},
    )
    assert train_main(train_args(corpus, config, out)) == 0
    log_text = (out / "train.log").read_text()
    batches = int(log_text.split(" batches per epoch")[0].rsplit(", ", 1)[1])
    planned = int(log_text.split(" optimizer steps")[0].rsplit(", ", 1)[1])
    assert batches % 3 != 0, "the test needs a batch count that 3 does not divide"
    assert planned == math.ceil(batches / 3)
    assert list_checkpoints(out / "checkpoints")[-1][0] == planned


def test_training_stops_at_the_first_non_finite_loss(corpus, tmp_path, monkeypatch, capsys):
    from toolkit.train import loop

    calls = []

    def nan_on_the_third(model, *args, **kwargs):
        loss, stats = forward_loss(model, *args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), stats

    monkeypatch.setattr(loop, "forward_loss", nan_on_the_third)
    config = train_config(tmp_path / "c.yaml", epochs=1, checkpoint_every_steps=1)
    assert train_main(train_args(corpus, config, tmp_path / "run")) == 1
    err = capsys.readouterr().err
    assert "the loss is nan at step 3 (epoch 1, batch 2) (utterances " in err and "training stopped" in err
    assert len(calls) == 3  # not one batch more
    assert list_checkpoints(tmp_path / "run" / "checkpoints")[-1][0] == 2


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    config = train_config(tmp_path / "c.yaml", epochs=1)
    assert train_main(train_args(corpus, config, out)) == 0
    witness = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (witness,))

    step, path = list_checkpoints(out / "checkpoints")[-1]
    state = torch.load(path, weights_only=True)
    state["progress"]["extra"] = Payload()
    torch.save(state, path)
    assert train_main(train_args(corpus, config, out)) == 1
    err = capsys.readouterr().err
    assert f"{path}: refusing to load it" in err and "could run code" in err
    assert not witness.exists()


def test_changed_training_data_does_not_resume_the_finished_run(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    config = train_config(tmp_path / "c.yaml", epochs=1)
    assert train_main(train_args(corpus, config, out)) == 0
    changed = tmp_path / "train_changed"
    shutil.copytree(corpus["train"], changed)
    speech = changed / "speech"
    speech.write_text("".join(speech.read_text().splitlines(keepends=True)[:-1]))  # one utterance fewer
    argv = train_args(corpus, config, out)
    argv[argv.index("--train") + 1] = str(changed)
    assert train_main(argv) == 1
    err = capsys.readouterr().err
    assert f"{out} was trained on other data: the training set ({changed}) has changed" in err
    moved = tmp_path / "train_moved"  # the same data under another path resumes (here: finds the run complete)
    shutil.copytree(corpus["train"], moved)
    argv[argv.index("--train") + 1] = str(moved)
    assert train_main(argv) == 0


def test_a_second_training_into_the_same_folder_is_refused(corpus, tmp_path, capsys):
    from toolkit.train import run_dir

    out = tmp_path / "run"
    config = train_config(tmp_path / "c.yaml", epochs=1)
    with run_dir.claimed(out):  # what a training in progress holds
        assert train_main(train_args(corpus, config, out)) == 1
        assert f"{out} is being trained by pid {os.getpid()}" in capsys.readouterr().err
        assert not (out / "checkpoints").exists()
    assert train_main(train_args(corpus, config, out)) == 0


def test_a_full_disk_while_writing_a_checkpoint_is_a_message_and_leaves_no_partial_file(
    corpus, tmp_path, monkeypatch, capsys
):
    import errno

    from toolkit.train import checkpoint

    def full_disk(state, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(f.name))

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    out = tmp_path / "run"
    assert train_main(train_args(corpus, train_config(tmp_path / "c.yaml", epochs=1), out)) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_one_optimizer_config_validates_for_every_trainer():
    # The trainers' optim sections are toolkit.train.engine.OptimConfig with their own defaults; the checks are one.
    from toolkit.config import ConfigError, from_dict
    from toolkit.train.codec import CodecOptimConfig
    from toolkit.train.distill import DistillOptimConfig
    from toolkit.train.downstream import DownstreamOptimConfig
    from toolkit.train.engine import OptimConfig

    for cls in (OptimConfig, DistillOptimConfig, DownstreamOptimConfig, CodecOptimConfig):
        for bad in ({"lr": 0}, {"betas": [0.9]}, {"schedule": "step"}, {"final_lr_ratio": 2}, {"warmup_steps": -1}):
            with pytest.raises(ConfigError):
                from_dict(cls, bad, "optim")
    assert from_dict(DownstreamOptimConfig, {"lr": 1e-3}, "optim").schedule == "constant"  # its own default stays
    with pytest.raises(ConfigError, match="does not accumulate"):
        from_dict(CodecOptimConfig, {"grad_accum": 2}, "optim")
