"""The check every trainer makes on each batch's loss: training stops at the first non-finite one.

A NaN or infinite loss poisons the weights at the next optimizer step, and every later loss with them; stopping at
once, naming the step and the batch, points at the cause (a learning rate too high, an empty target, bad audio)
instead of at the first check downstream that happens to notice.
"""

from __future__ import annotations

from collections.abc import Sequence


def non_finite_loss(value: float, step: int, epoch: int, batch: int, utts: Sequence[str] = ()) -> FloatingPointError:
    """The error to raise for a non-finite loss at optimizer step `step` (1-based), epoch (0-based), batch index."""
    shown = ", ".join(utts[:3]) + (", ..." if len(utts) > 3 else "")
    which = f" (utterances {shown})" if utts else ""
    return FloatingPointError(
        f"the loss is {value} at step {step} (epoch {epoch + 1}, batch {batch}){which}; training stopped before "
        "the weights were updated with it. Lower optim.lr, or check those utterances' targets and audio"
    )
