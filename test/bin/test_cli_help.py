"""Every `python -m toolkit.bin.<verb> --help` answers without importing torch or transformers: the heavy imports
happen only once a command has work to do (test/bench/bench_cli_help.py times them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(__file__).resolve().parents[2] / "toolkit/bin"
COMMANDS = sorted(p.stem for p in BIN.glob("*.py") if p.stem != "__init__")
PROBE = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_module("toolkit.bin." + sys.argv[0], run_name="__main__")
except SystemExit as e:
    assert e.code in (0, None), e.code
heavy = sorted(m for m in ("torch", "transformers", "torchaudio") if m in sys.modules)
print("HEAVY", " ".join(heavy))
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_no_torch(command):
    proc = subprocess.run([sys.executable, "-c", PROBE, command], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout
    heavy = proc.stdout.splitlines()[-1].removeprefix("HEAVY").strip()
    assert heavy == "", f"{command} --help imports {heavy}"
