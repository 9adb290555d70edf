"""`compile: true | false | auto` for the speech-text LM's training step.

torch.compile fuses the many small elementwise ops of a small model's step (the model and the loss compile together,
so that the loss's passes over the [tokens, vocabulary] logits fuse with the output layer). It changes how a step is
computed, not what: fp32 losses match the uncompiled ones step by step. But compiling takes minutes before the first
compiled step, and the gain per step is modest on CPU. Measured on the embedded recipe's model (2,000-token batches):

    host (2 cores)                    precision  uncompiled step  compiled step  compiling (cold cache)
    AMD EPYC, Zen 4, avx512_bf16      fp32       0.456 s          0.414 s        ~88 s (~190 uncompiled steps)
    AMD EPYC, Zen 4, avx512_bf16      bf16       0.290 s          0.258 s        ~74 s (~255 steps)
    AMD EPYC, AVX2 only               fp32       ~0.8 s           not measured   ~160 s (~200 steps)

So compiling costs about `COST_STEPS` uncompiled steps (at least `MIN_COST_SECONDS`) and then saves about 10% of
every step. `compile: auto` times the first steps uncompiled and compiles only when the rest of the run would save
more than that: about 2,750 steps or more on these CPUs (the embedded recipe's 4,364-step default compiles, a short
run does not); on a GPU, where steps take milliseconds, only runs with many minutes of steps. The decision is stored
in the checkpoints, so a resumed run keeps it (its steps are computed the same way as before the interruption).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

log = logging.getLogger("toolkit.train")

STEP_SPEEDUP = 1.10  # measured, see above: fp32 1.10x, bf16 1.13x
COST_STEPS = 250.0  # what compiling costs, in uncompiled steps of the same host (measured 190-255, see above)
MIN_COST_SECONDS = 90.0  # and at least this (a cold compile of the small model took 74-88 s on a fast CPU)
SKIP_STEPS = 5  # the first steps build oneDNN kernels for new shapes: not representative
TIMED_STEPS = 20


def compiler_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot build kernels for `device` here, or None when it can. Inductor builds CPU kernels
    with a C++ compiler and GPU kernels with triton."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError as error:
            return f"triton is not installed ({error})"
        return None
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as error:  # no compiler found, or an inductor without this helper
        return f"torch.compile cannot build CPU kernels here ({error}); install a C++ compiler (e.g. `apt install g++`)"
    return None


def compiled(function: Callable, device: torch.device) -> Callable:
    """`function` under torch.compile with dynamic shapes (every batch has its own length and size), or `function`
    itself, with a warning saying what to install, where it cannot be compiled here."""
    problem = compiler_problem(device)
    if problem:
        log.warning(f"compile: training uncompiled: {problem}")
        return function
    log.info("training steps run under torch.compile; the first compiled steps compile")
    return torch.compile(function, dynamic=True)


class StepCompiler:
    """Which forward function the training steps use: `forward` is the one to call for the next step.

    setting: the config's compile (True, False or "auto"); decided: the decision stored in a checkpoint (None when
    none was made yet); agree: makes every DDP process take the main process's decision (identity for one process).
    """

    def __init__(
        self,
        function: Callable,
        setting: bool | str,
        device: torch.device,
        total_steps: int,
        decided: bool | None = None,
        agree: Callable = lambda value: value,
    ):
        self.function, self.device, self.total_steps, self.agree = function, device, total_steps, agree
        self.forward = function
        self.decision: bool | None = setting if isinstance(setting, bool) else decided
        self._start: tuple[int, float] | None = None
        if self.decision is None and (problem := compiler_problem(device)):
            log.info(f"compile: auto: training uncompiled ({problem})")
            self.decision = False
        if self.decision:
            self.forward = compiled(function, device)
        elif setting == "auto" and self.decision is None:
            log.info(f"compile: auto: timing the first {SKIP_STEPS + TIMED_STEPS} steps uncompiled to decide")

    def step_done(self, step: int) -> None:
        """Call after every optimizer step (`step` counts the steps done): times the first steps of an undecided
        `compile: auto` run and decides once they are timed."""
        if self.decision is not None:
            return
        if self._start is None:
            if step >= SKIP_STEPS:
                self._start = (step, time.perf_counter())
            return
        first, began = self._start
        if step - first < TIMED_STEPS:
            return
        seconds_per_step = (time.perf_counter() - began) / (step - first)
        decision, reason = should_compile(seconds_per_step, self.total_steps - step)
        self.decision = bool(self.agree(decision))
        log.info(f"compile: auto: {reason}" if self.decision == decision else "compile: auto: as the main process")
        if self.decision:
            self.forward = compiled(self.function, self.device)


def should_compile(seconds_per_step: float, remaining_steps: int) -> tuple[bool, str]:
    """The `compile: auto` rule, with the sentence that explains it for the log."""
    eager = seconds_per_step * remaining_steps
    saved = eager * (1 - 1 / STEP_SPEEDUP)
    cost = max(MIN_COST_SECONDS, COST_STEPS * seconds_per_step)
    figures = (
        f"uncompiled steps take {seconds_per_step:.3f} s here, so the remaining {remaining_steps} steps would take "
        f"{eager / 60:.1f} min; compiling would save about {saved / 60:.1f} min of that and cost about "
        f"{cost / 60:.1f} min"
    )
    if saved > cost:
        return True, f"{figures}: compiling from now on"
    return False, f"{figures}: training stays uncompiled"
