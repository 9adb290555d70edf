"""Learning-rate schedules as multipliers of the peak rate: linear warmup, then constant, linear or cosine decay."""

from __future__ import annotations

import math


def lr_multiplier(step: int, total_steps: int, warmup_steps: int, kind: str, final_ratio: float = 0.0) -> float:
    if kind not in ("constant", "linear", "cosine"):
        raise ValueError(f"unknown schedule '{kind}' (constant, linear or cosine)")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if kind == "linear":
        shape = 1.0 - progress
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    return final_ratio + (1.0 - final_ratio) * shape
