"""What this host runs fast: the CPU's description, a timed matmul probe, and the choices that follow from them.

`precision: auto`, the default of every trainer and of decoding, is resolved here at start-up (`compile: auto` is in
toolkit/train/compiling.py). Reduced precision is a large gain on some hosts and a large loss on others: a CPU with
avx512_bf16 or AMX runs bf16 matmuls about 3x faster than fp32, while one with only AVX2 emulates them about 50x
slower. Neither a config file nor the CPU's name can know which host a run lands on, so the choice is made where the
run starts:

- CUDA: bf16 where the GPU supports it (compute capability 8.0 and newer), else fp16 where the trainer supports it
  (with loss scaling), else fp32. GPUs that support these run them natively and faster, so no probe is needed.
- CPU: bf16 only if the CPU has native bf16 (avx512_bf16 or amx_bf16 on x86; on other architectures, where flags are
  not known here, the probe alone decides) AND a short timed probe measures bf16 matmuls at least
  `BF16_MIN_SPEEDUP` times faster than fp32. Otherwise fp32. Work that is not bound by large matmuls (token-by-token
  decoding) is fp32 on a CPU without a probe (see choose_precision).

An explicit `precision: bf16` on a CPU where bf16 is slow is kept (the user asked for it) but warned about loudly,
with the measured ratio. Every decision is logged with the figures it was made from.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import platform
import time
from dataclasses import dataclass

log = logging.getLogger("toolkit.hardware")

# bf16 must beat fp32 by this much in the probe: the rest of a training step (elementwise ops, the optimizer) gains
# less than the matmuls do, and a bf16 run on a host where it is only marginally faster is not worth its rounding.
BF16_MIN_SPEEDUP = 1.25
# The CPU flags (as /proc/cpuinfo spells them) that give native bf16 matmuls on x86.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The flags worth printing beside a timing: they decide which kernels the matmuls and elementwise ops use.
REPORTED_FLAGS = tuple("avx2 fma avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile neon asimd bf16".split())
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RESOLVED = ("fp32", "bf16", "fp16")  # what `auto` resolves to, and what autocast takes


def check_precision(value: str, allowed: tuple[str, ...] = PRECISIONS) -> None:
    """A config's `precision` check (its __post_init__): one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"precision must be one of {', '.join(allowed)}, got '{value}'")


@dataclass(frozen=True)
class CpuInfo:
    model: str  # e.g. "AMD EPYC 7B13"
    arch: str  # platform.machine(): x86_64, aarch64, arm64
    flags: frozenset[str]  # as /proc/cpuinfo spells them; empty where unknown (macOS, Windows)
    threads: int  # torch's intra-op threads

    @property
    def native_bf16(self) -> bool | None:
        """True or False where the flags tell (x86 with /proc/cpuinfo); None where they are not known here."""
        if self.arch in ("x86_64", "AMD64", "i686") and self.flags:
            return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)
        return None

    def describe(self) -> str:
        shown = [flag for flag in REPORTED_FLAGS if flag in self.flags]
        flags = " ".join(shown) if shown else ("none of " + ", ".join(NATIVE_BF16_FLAGS) if self.flags else "unknown")
        return f"{self.model} ({self.arch}, {self.threads} threads; flags: {flags})"


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str, frozenset[str]]:
    model, flags = "", frozenset()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:  # x86: flags; arm: Features
                    flags = frozenset(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def cpu_info() -> CpuInfo:
    import torch

    model, flags = _read_cpuinfo()
    return CpuInfo(model or platform.processor() or "unknown CPU", platform.machine(), flags, torch.get_num_threads())


def matmul_gflops(dtype_name: str, device: str = "cpu", size: int = 512, min_seconds: float = 0.05) -> float:
    """GFLOP/s of a square `size` matmul in `dtype_name` (fp32, bf16, fp16) on `device`: one warm-up, then as many
    repetitions as fill `min_seconds` (at least two). An emulated bf16 matmul of 512 takes about 0.1 s on a 2-core
    AVX2 CPU, so the probe stays well under a second there."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        a @ b
        sync()
        reps, start = 0, time.perf_counter()
        while True:
            a @ b
            reps += 1
            sync()
            elapsed = time.perf_counter() - start
            if reps >= 2 and elapsed >= min_seconds:
                break
    return 2 * size**3 * reps / elapsed / 1e9


@dataclass(frozen=True)
class Probe:
    fp32_gflops: float
    bf16_gflops: float

    @property
    def bf16_speedup(self) -> float:
        return self.bf16_gflops / self.fp32_gflops

    def describe(self) -> str:
        return (
            f"matmul probe: fp32 {self.fp32_gflops:.1f} GFLOP/s, bf16 {self.bf16_gflops:.1f} GFLOP/s "
            f"(bf16 {self.bf16_speedup:.2f}x fp32)"
        )


@functools.cache
def cpu_probe(threads: int) -> Probe:
    """The CPU matmul probe, once per process and thread count (a process that trains and then decodes probes once)."""
    return Probe(matmul_gflops("fp32"), matmul_gflops("bf16"))


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # fp32 | bf16 | fp16: what the run uses
    requested: str  # what the config said
    reason: str  # one sentence, for the log
    probe: Probe | None = None

    def describe(self) -> str:
        return f"precision {self.precision} (config: {self.requested}): {self.reason}"


def _gpu_choice(requested: str, device, allowed: tuple[str, ...]) -> PrecisionChoice:
    import torch

    name = torch.cuda.get_device_name(device)
    major, minor = torch.cuda.get_device_capability(device)
    if requested != "auto":
        return PrecisionChoice(requested, requested, f"as configured, on {name}")
    if "bf16" in allowed and torch.cuda.is_bf16_supported(including_emulation=False):
        return PrecisionChoice("bf16", requested, f"{name} (compute capability {major}.{minor}) runs bf16 natively")
    if "fp16" in allowed and major >= 7:
        return PrecisionChoice("fp16", requested, f"{name} (compute capability {major}.{minor}) has fp16 tensor cores")
    return PrecisionChoice("fp32", requested, f"{name} (compute capability {major}.{minor}): no faster precision")


def choose_precision(
    requested: str, device, allowed: tuple[str, ...] = RESOLVED, cpu_matmul_bound: bool = True
) -> PrecisionChoice:
    """Resolve a config's `precision` for `device` (a torch.device or its name). `allowed` lists what the caller can
    run (some trainers have no fp16 loss scaling). `cpu_matmul_bound=False` says that the work's CPU time is not in
    large matmuls, so that bf16 cannot pay off on a CPU and `auto` is fp32 there without a probe: token-by-token
    decoding of the small models (measured on the embedded recipe's model, beam 5, 2-core Zen 4 with avx512_bf16:
    bf16 0.92x the speed of fp32, and 23 of 500 hypotheses changed). Raises ValueError for a precision the device
    cannot run."""
    import torch

    device = torch.device(device)
    check_precision(requested)
    if requested != "auto" and requested not in allowed:
        raise ValueError(f"precision {requested} is not supported here (use {', '.join(('auto', *allowed))})")
    if device.type == "cuda":
        return _gpu_choice(requested, device, allowed)
    if device.type != "cpu":  # mps, xpu, ...: no rule here; what was asked for, and fp32 for auto
        return PrecisionChoice("fp32" if requested == "auto" else requested, requested, f"on {device.type}: not probed")
    if requested == "fp16":
        raise ValueError("precision fp16 needs a GPU; on CPU use auto, bf16 or fp32")
    if requested == "fp32":
        return PrecisionChoice("fp32", requested, "as configured")
    if requested == "auto" and not cpu_matmul_bound:
        return PrecisionChoice(
            "fp32", requested, "this work is not bound by large matmuls: bf16 is not faster on a CPU"
        )
    cpu = cpu_info()
    probe = cpu_probe(cpu.threads)
    native = cpu.native_bf16
    fast = probe.bf16_speedup >= BF16_MIN_SPEEDUP
    figures = f"{cpu.describe()}; {probe.describe()}"
    if requested == "bf16":
        if native is False or not fast:
            log.warning(
                "WARNING: precision bf16 was asked for, but this CPU has no fast bf16 "
                f"({figures}): every matmul runs about {1 / probe.bf16_speedup:.1f}x slower than in fp32, and "
                "training with it may take many times longer. Use precision: auto (or fp32) on this host."
            )
            return PrecisionChoice("bf16", requested, f"as configured, although slow here ({figures})", probe)
        return PrecisionChoice("bf16", requested, f"as configured ({figures})", probe)
    if native is False:
        why = f"no native bf16 ({' or '.join(NATIVE_BF16_FLAGS)} missing)"
        return PrecisionChoice("fp32", requested, f"{why}; {figures}", probe)
    if not fast:
        why = f"bf16 is less than {BF16_MIN_SPEEDUP}x faster than fp32 here"
        return PrecisionChoice("fp32", requested, f"{why}; {figures}", probe)
    return PrecisionChoice("bf16", requested, f"native bf16, {probe.bf16_speedup:.2f}x fp32; {figures}", probe)


def resolve_precision(requested: str, device, allowed: tuple[str, ...] = RESOLVED, dist=None) -> str:
    """choose_precision for a run, logged; returns the precision to run. Under DDP (`dist`, a
    toolkit.train.distributed.Distributed) only the main process probes, and every process takes its choice."""
    if dist is None or dist.world == 1:
        choice = choose_precision(requested, device, allowed)
    else:
        choice = dist.from_main(choose_precision(requested, device, allowed) if dist.is_main else None)
    log.info(choice.describe())
    return choice.precision


def host_peaks(size: int = 1024) -> dict[str, float]:
    """The host's measured CPU matmul rates in GFLOP/s, {"fp32": ..., "bf16": ...}: square `size` matmuls (1024 is
    the size host figures in this toolkit's docs use). An emulated bf16 matmul of 1024 takes ~2.5 s on AVX2."""
    return {name: matmul_gflops(name, size=size, min_seconds=0.3) for name in ("fp32", "bf16")}


def host_summary(device: str = "cpu", peaks: dict[str, float] | None = None, size: int = 1024) -> str:
    """The lines a benchmark prints at its top: the CPU (model, flags, threads) and its measured fp32 and bf16 matmul
    rates (`peaks`, or measured now at `size`); the GPU's name when one is used."""
    import torch

    cpu = cpu_info()
    lines = [f"host: {cpu.describe()}; torch {torch.__version__}"]
    peaks = peaks or host_peaks(size)
    lines.append(
        f"host matmul peak ({size}x{size}, CPU): fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s"
    )
    if device.startswith("cuda") and torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name(torch.device(device))}")
    return "\n".join(lines)


def autocast(precision: str, device):
    """The autocast context of a resolved precision (fp32: none; bf16; fp16) on `device`."""
    import torch

    device = torch.device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in RESOLVED:
        raise ValueError(f"autocast needs a resolved precision (fp32, bf16 or fp16), got '{precision}'")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
