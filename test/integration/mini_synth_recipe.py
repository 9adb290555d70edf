"""Copying the embedded recipe into a test's tmp dir, shared by the integration tests (they run in parallel, one
file per worker, so the long ones live in separate files)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIZES = "--train_utts 60 --dev_utts 12 --test_utts 12 --seed 7"
OUTPUTS = ("data", "dump", "exp", "downloads")


def copy_recipe(tmp_path: Path) -> Path:
    """The recipe and the shared template, without any outputs a developer may have in the checkout."""
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(
        REPO / "egs/mini_synth", tmp_path / "egs/mini_synth", symlinks=True, ignore=shutil.ignore_patterns(*OUTPUTS)
    )
    return tmp_path / "egs/mini_synth/asr1"
