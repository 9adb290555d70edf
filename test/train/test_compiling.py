"""compile: true | false | auto: the decision rule and when the training steps switch to the compiled function."""

from __future__ import annotations

import pytest
import torch

from toolkit.train import compiling
from toolkit.train.compiling import StepCompiler, should_compile

CPU = torch.device("cpu")


def step(*args):
    return "eager"


@pytest.fixture
def fake_compiler(monkeypatch):
    """A host that can compile, with torch.compile replaced by a marker (the real one is tested in test_train_loop)."""
    monkeypatch.setattr(compiling, "compiler_problem", lambda device: None)
    monkeypatch.setattr(compiling, "compiled", lambda function, device: "compiled")


def test_compiling_pays_off_only_for_long_runs():
    # 0.8 s per fp32 step on a 2-core AVX2 host: the embedded recipe's default run (4,364 steps) compiles ...
    decision, reason = should_compile(0.8, 4364)
    assert decision and "58.2 min" in reason and "cost about 3.3 min" in reason and "compiling from now on" in reason
    assert should_compile(0.29, 4364)[0]  # ... and so it does at 0.29 s per bf16 step (cost: 90 s at least)
    decision, reason = should_compile(0.8, 2000)  # a short run does not
    assert not decision and "stays uncompiled" in reason
    assert not should_compile(0.29, 2500)[0]
    assert not should_compile(0.02, 40_000)[0]  # a GPU's 20 ms steps: 13 min would save 1.2 min, less than 90 s
    assert should_compile(0.02, 100_000)[0]


def test_true_and_false_are_taken_as_they_are(fake_compiler):
    assert StepCompiler(step, True, CPU, 10).forward == "compiled"
    never = StepCompiler(step, False, CPU, 10**9)
    for n in range(1, 100):
        never.step_done(n)
    assert never.forward is step and never.decision is False


def test_auto_times_the_first_steps_then_decides(fake_compiler, monkeypatch):
    clock = iter(float(t) for t in range(1000))
    monkeypatch.setattr(compiling.time, "perf_counter", lambda: next(clock) * 10.0)  # 10 s per step: compile
    auto = StepCompiler(step, "auto", CPU, total_steps=5000)
    for n in range(1, compiling.SKIP_STEPS + compiling.TIMED_STEPS):
        auto.step_done(n)
        assert auto.forward is step and auto.decision is None
    auto.step_done(compiling.SKIP_STEPS + compiling.TIMED_STEPS)
    assert auto.forward == "compiled" and auto.decision is True


def test_auto_with_a_stored_decision_does_not_time_again(fake_compiler):
    assert StepCompiler(step, "auto", CPU, 10, decided=True).forward == "compiled"
    kept = StepCompiler(step, "auto", CPU, 10**9, decided=False)
    for n in range(1, 100):
        kept.step_done(n)
    assert kept.forward is step


def test_auto_under_ddp_takes_the_main_process_decision(fake_compiler):
    worker = StepCompiler(step, "auto", CPU, total_steps=10**9, agree=lambda value: False)
    for n in range(1, compiling.SKIP_STEPS + compiling.TIMED_STEPS + 1):
        worker.step_done(n)
    assert worker.decision is False and worker.forward is step
