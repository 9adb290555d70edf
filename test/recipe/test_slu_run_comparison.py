"""egs/TEMPLATE/slu1/run_comparison.sh's sequencing, with a stand-in run.sh that records how it is called."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FAKE_RUN = """#!/usr/bin/env bash
# records its arguments; fails for the tag named in $FAIL_TAG
echo "$*" >> calls.txt
for a in "$@"; do [ -n "${FAIL_TAG:-}" ] && [ "$a" = "$FAIL_TAG" ] && exit 3; done
exit 0
"""


def recipe(tmp_path: Path) -> Path:
    root = tmp_path / "egs/corpus/slu1"
    (root / "conf/distill").mkdir(parents=True)
    for method in ("glob", "pad_slocal"):
        (root / f"conf/distill/{method}.yaml").write_text("loss: {}\n")
    (root / "conf/distill/ablations.txt").write_text(
        "# method base changes\npad_slocal_stride pad_slocal loss.anchors=stride\n"
    )
    (root / "run.sh").write_text(FAKE_RUN)
    (root / "run.sh").chmod(0o755)
    (root / "run_comparison.sh").symlink_to(REPO / "egs/TEMPLATE/slu1/run_comparison.sh")
    (root / "utils").symlink_to(REPO / "egs/TEMPLATE/asr1/utils")
    (root / "path.sh").symlink_to(REPO / "egs/TEMPLATE/asr1/path.sh")
    (root / "exp").mkdir()
    return root


def run(root: Path, *args: str, fail: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable, TOOLKIT_ROOT=str(REPO), FAIL_TAG=fail)
    return subprocess.run(["./run_comparison.sh", *args], cwd=root, capture_output=True, text=True, env=env)


def test_every_method_and_seed_runs_stages_4_to_7_after_shared_stages(tmp_path):
    root = recipe(tmp_path)
    proc = run(root, "--methods", "none glob", "--seeds", "1 2", "--jobs", "2", "--", "--tasks", "ic")
    assert proc.returncode == 0, proc.stderr
    calls = (root / "calls.txt").read_text().splitlines()
    assert calls[0] == "--stage 1 --stop_stage 3 --tasks ic"
    runs = sorted(calls[1:])
    assert len(runs) == 4
    tags = sorted(c.split("--tag ")[1].split()[0] for c in runs)
    assert tags == ["glob_seed1", "glob_seed2", "none_seed1", "none_seed2"]
    none = next(c for c in runs if "--tag none_seed2" in c)
    assert "--distill_config none" in none and "--set seed=2" in none and none.endswith("--tasks ic")
    glob = next(c for c in runs if "--tag glob_seed1" in c)
    assert "--distill_config conf/distill/glob.yaml" in glob and "--teacher-cache exp/distill/teacher_cache" in glob


def test_a_failed_run_is_listed_and_the_others_go_on(tmp_path):
    root = recipe(tmp_path)
    proc = run(root, "--methods", "glob pad_slocal", "--seeds", "1", fail="glob_seed1")
    assert proc.returncode == 1
    assert "failed: glob_seed1" in proc.stderr
    assert any("--tag pad_slocal_seed1" in c for c in (root / "calls.txt").read_text().splitlines())


def test_bad_options_are_clear_errors(tmp_path):
    root = recipe(tmp_path)
    for args, message in (
        (["--methods", "glob nosuch"], "unknown method 'nosuch'"),
        (["--methods", "glob", "--seeds", "1 x"], "--seeds must list whole numbers"),
        (["--methods", "glob", "--jobs", "0"], "--jobs must be a positive number"),
    ):
        proc = run(root, *args)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
        assert not (root / "calls.txt").exists()


def test_an_ablation_runs_its_base_config_with_its_change(tmp_path):
    root = recipe(tmp_path)
    proc = run(root, "--methods", "pad_slocal_stride", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr
    call = next(c for c in (root / "calls.txt").read_text().splitlines() if "--tag pad_slocal_stride_seed1" in c)
    assert "--distill_config conf/distill/pad_slocal.yaml" in call and "--set loss.anchors=stride" in call
    bad = run(root, "--methods", "pad_glob_uniform", "--seeds", "1")
    assert bad.returncode == 1 and "unknown method 'pad_glob_uniform'" in bad.stderr
