"""SUPERB downstream training under torchrun: two gloo CPU processes share each epoch's batches, average their
gradients (so they train the head that one process gets from accumulating the same batches) and resume exactly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from test_downstream_train import config, labelled, make_upstream

from toolkit.bin.train_downstream import main as train_main
from toolkit.models.downstream_task import load_task
from toolkit.train.checkpoint import list_checkpoints

from conftest import REPO

# 8 training utterances in batches of 2: 4 batches an epoch, 2 per process under two processes.
CHANGES = {"batching.max_utts": 2, "epochs": 2, "checkpoint_every_steps": 1}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream_ddp")
    return {
        "root": root,
        "upstream": make_upstream(root / "upstream"),
        "train": labelled(root, "train", 8),
        "dev": labelled(root, "dev", 4),
    }


def args(setup, out, *extra, name="ddp.yaml", **changes) -> list[str]:
    path = config(setup, name, **{**CHANGES, **changes})
    return [
        "--config", str(path), "--train", str(setup["train"]), "--valid", str(setup["dev"]),
        "--upstream", str(setup["upstream"]), "--out", str(out), "--device", "cpu", *extra,
    ]  # fmt: skip


def torchrun(argv: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    proc = subprocess.run(
        [*cmd, "-m", "toolkit.bin.train_downstream", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def last_checkpoint(out) -> dict:
    return torch.load(list_checkpoints(out / "checkpoints")[-1][1], weights_only=False)


def head(out) -> dict[str, torch.Tensor]:
    return torch.load(out / "head.pt", weights_only=False)["head"]


@pytest.fixture(scope="module")
def ddp_run(setup):
    out = setup["root"] / "ddp"
    torchrun(args(setup, out))
    return out


def test_ddp_two_cpu_processes(setup, ddp_run, tmp_path):
    state = torch.load(ddp_run / "head.pt", weights_only=False)
    task, _ = load_task(ddp_run / "head.pt", num_layers=3, input_dim=16)
    assert task.kind == "ic" and state["upstream"] == str(setup["upstream"])
    ddp_state = last_checkpoint(ddp_run)
    assert ddp_state["world"] == 2
    # Only the main process writes: one log line and one curve row per epoch, though both processes took part.
    log = (ddp_run / "train.log").read_text()
    assert "2 batches per epoch per process (2 processes)" in log
    assert log.count("epoch 1 done: dev") == 1 and log.count("epoch 2 done: dev") == 1
    curves = (ddp_run / "curves.csv").read_text().splitlines()
    assert len(curves) == 1 + 4 + 2  # header, a train row per step, a dev row per epoch

    # One process, the same config: every batch an optimizer step, twice as many as each of two processes takes.
    single = tmp_path / "single"
    assert train_main(args(setup, single)) == 0
    single_state = last_checkpoint(single)
    assert "world" not in single_state
    assert "4 batches per epoch, " in (single / "train.log").read_text()
    assert ddp_state["progress"]["step"] * 2 == single_state["progress"]["step"] == 8
    assert [h["epoch"] for h in ddp_state["progress"]["history"]] == [1, 2]

    # Two processes averaging their gradients step like one process accumulating the same two batches.
    accumulated = tmp_path / "accumulated"
    assert train_main(args(setup, accumulated, name="accum.yaml", **{"optim.grad_accum": 2})) == 0
    assert last_checkpoint(accumulated)["progress"]["step"] == ddp_state["progress"]["step"]
    ddp_head, accumulated_head = head(ddp_run), head(accumulated)
    for key in accumulated_head:
        assert torch.allclose(ddp_head[key], accumulated_head[key], atol=1e-5), key
    assert [h["metric"] for h in ddp_state["progress"]["history"]] == [
        h["metric"] for h in last_checkpoint(accumulated)["progress"]["history"]
    ]


def test_ddp_resume_after_a_stop_gives_the_same_head(setup, ddp_run):
    out = setup["root"] / "ddp_parts"
    torchrun(args(setup, out, "--stop-after-steps", "1"))  # in the middle of the first epoch
    assert not (out / "head.pt").exists()
    assert last_checkpoint(out)["progress"]["step"] == 1
    torchrun(args(setup, out))
    assert "resumed from" in (out / "train.log").read_text()
    whole, parts = head(ddp_run), head(out)
    for key in whole:
        assert torch.equal(whole[key], parts[key]), key
