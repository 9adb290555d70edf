"""The install: setup.py asks for compatible ranges (so the toolkit can join an environment with its own torch), and
tools/constraints.txt pins every one of them exactly (the tested environment tools/install.sh builds)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def setup_requirements() -> list[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    value = next(k.value for k in call.keywords if k.arg == "install_requires")
    return [ast.literal_eval(e) for e in value.elts]


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_requirements_are_ranges_and_constraints_pin_them():
    requirements = setup_requirements()
    assert requirements and not [r for r in requirements if "==" in r], "install_requires must not pin exact versions"
    pins = {}
    for line in (REPO / "tools/constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    assert pins["torch"] == "2.14.1" and pins["torchaudio"] == "2.11.0"
    assert [r for r in requirements if name_of(r) not in pins] == []
