"""Copying the embedded recipes into a test's tmp dir, and the tiny HuBERT they train, shared by the integration
tests (they run in parallel, one file per worker, so the long ones live in separate files)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIZES = "--train_utts 60 --dev_utts 12 --test_utts 12 --seed 7"
OUTPUTS = ("data", "dump", "exp", "downloads")
# A tiny upstream HuBERT: a few steps are enough to check that a recipe trains it and reads its features.
HUBERT_ARGS = (
    "--set model.hidden_size=32 --set model.num_layers=2 --set model.num_heads=2 --set model.intermediate_size=64 "
    "--set model.conv_dim=[32,32,32,32] --set model.conv_pos_kernel=8 --set model.conv_pos_groups=2 "
    "--set loss.final_dim=16 --set targets.num_units=20 --set max_steps=3 --set dev.max_utts=4 "
    "--set batching.max_batch_seconds=20"
)


def copy_recipe(tmp_path: Path, task: str = "asr1") -> Path:
    """egs/mini_synth/<task> and the shared template, without any outputs a developer may have in the checkout."""
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(
        REPO / "egs/mini_synth", tmp_path / "egs/mini_synth", symlinks=True, ignore=shutil.ignore_patterns(*OUTPUTS)
    )
    return tmp_path / "egs/mini_synth" / task
