"""toolkit.hardware: the precision each kind of host gets, with the CPU's capabilities and the timed probe mocked
both ways, and the parts that read the real host (cpuinfo parsing, the probe itself)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from toolkit import hardware
from toolkit.hardware import CpuInfo, Probe, choose_precision, resolve_precision

AVX512_BF16 = CpuInfo("AMD EPYC 9B45", "x86_64", frozenset({"avx2", "fma", "avx512f", "avx512_bf16"}), 2)
AMX = CpuInfo("Intel Xeon Platinum 8480+", "x86_64", frozenset({"avx2", "avx512f", "amx_bf16", "amx_tile"}), 2)
AVX2_ONLY = CpuInfo("AMD EPYC 7B12", "x86_64", frozenset({"avx2", "fma"}), 2)
ARM_UNKNOWN = CpuInfo("unknown CPU", "arm64", frozenset(), 2)  # e.g. macOS: no /proc/cpuinfo
FAST_BF16 = Probe(fp32_gflops=150.0, bf16_gflops=420.0)
SLOW_BF16 = Probe(fp32_gflops=41.0, bf16_gflops=0.8)  # the AVX2-only host of the issue
TIE = Probe(fp32_gflops=100.0, bf16_gflops=110.0)


@pytest.fixture
def host(monkeypatch):
    """host(cpu, probe): make toolkit.hardware see this CPU and measure this probe; returns the probe's call log."""
    calls: list[int] = []

    def set_host(cpu: CpuInfo, probe: Probe) -> list[int]:
        monkeypatch.setattr(hardware, "cpu_info", lambda: cpu)

        def fake_probe(threads: int) -> Probe:
            calls.append(threads)
            return probe

        monkeypatch.setattr(hardware, "cpu_probe", fake_probe)
        return calls

    return set_host


@pytest.mark.parametrize(
    ("cpu", "probe", "expected"),
    [
        (AVX512_BF16, FAST_BF16, "bf16"),
        (AMX, FAST_BF16, "bf16"),
        (AVX512_BF16, TIE, "fp32"),  # native, but the probe finds no real gain
        (AVX2_ONLY, SLOW_BF16, "fp32"),
        (AVX2_ONLY, FAST_BF16, "fp32"),  # flags known and missing: never bf16, whatever a noisy probe says
        (ARM_UNKNOWN, FAST_BF16, "bf16"),  # flags not known here: the probe decides
        (ARM_UNKNOWN, SLOW_BF16, "fp32"),
    ],
)
def test_auto_on_cpu_takes_bf16_only_where_it_is_native_and_faster(host, cpu, probe, expected):
    host(cpu, probe)
    choice = choose_precision("auto", "cpu")
    assert choice.precision == expected
    assert choice.requested == "auto" and choice.probe == probe
    # The log line names the host and the measured figures behind the choice.
    assert cpu.model in choice.describe() and f"{probe.fp32_gflops:.1f} GFLOP/s" in choice.describe()


def test_auto_on_an_avx2_host_says_which_flag_is_missing(host):
    host(AVX2_ONLY, SLOW_BF16)
    reason = choose_precision("auto", "cpu").reason
    assert "no native bf16" in reason and "avx512_bf16" in reason and "0.02x fp32" in reason


def test_explicit_bf16_on_a_slow_host_is_kept_with_a_loud_warning(host, caplog):
    host(AVX2_ONLY, SLOW_BF16)
    with caplog.at_level(logging.WARNING, logger="toolkit.hardware"):
        choice = choose_precision("bf16", "cpu")
    assert choice.precision == "bf16"  # the user asked for it
    assert "WARNING" in caplog.text and "51.2x slower" in caplog.text and "precision: auto" in caplog.text


def test_explicit_bf16_on_a_fast_host_is_quiet(host, caplog):
    host(AVX512_BF16, FAST_BF16)
    with caplog.at_level(logging.WARNING, logger="toolkit.hardware"):
        assert choose_precision("bf16", "cpu").precision == "bf16"
    assert caplog.text == ""


def test_fp32_needs_no_probe_and_bad_values_are_refused(host):
    calls = host(AVX2_ONLY, SLOW_BF16)
    assert choose_precision("fp32", "cpu").precision == "fp32"
    assert calls == []
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        choose_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, fp16, got 'fp64'"):
        choose_precision("fp64", "cpu")
    with pytest.raises(ValueError, match="not supported here"):
        choose_precision("fp16", "cpu", allowed=("fp32", "bf16"))


@pytest.fixture
def gpu(monkeypatch):
    def set_gpu(name: str, capability: tuple[int, int], bf16: bool) -> None:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)

    return set_gpu


def test_auto_on_gpus_follows_their_native_precisions(gpu, host):
    calls = host(AVX2_ONLY, SLOW_BF16)
    gpu("NVIDIA H100", (9, 0), True)
    assert choose_precision("auto", "cuda:0").precision == "bf16"
    gpu("Tesla V100", (7, 0), False)
    assert choose_precision("auto", "cuda").precision == "fp16"
    assert choose_precision("auto", "cuda", allowed=("fp32", "bf16")).precision == "fp32"  # a trainer with no fp16
    gpu("Tesla K80", (3, 7), False)
    assert choose_precision("auto", "cuda").precision == "fp32"
    assert choose_precision("fp16", "cuda").precision == "fp16"
    assert calls == []  # the CPU probe is not run for a GPU
    assert choose_precision("auto", "mps").precision == "fp32" and calls == []  # a device with no rule: fp32


def test_under_ddp_only_the_main_process_probes(host):
    calls = host(AVX512_BF16, FAST_BF16)
    received = []

    def from_main(value):
        received.append(value)
        return hardware.PrecisionChoice("fp32", "auto", "the main process's choice")

    worker = SimpleNamespace(world=2, is_main=False, from_main=from_main)
    assert resolve_precision("auto", "cpu", dist=worker) == "fp32"
    assert calls == [] and received == [None]
    main = SimpleNamespace(world=2, is_main=True, from_main=lambda value: value)
    assert resolve_precision("auto", "cpu", dist=main) == "bf16"
    assert len(calls) == 1


def test_cpuinfo_is_read_for_x86_and_arm(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse avx2 fma\n"
    )
    assert hardware._read_cpuinfo(str(x86)) == ("AMD EPYC 7B12", frozenset({"fpu", "sse", "avx2", "fma"}))
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd bf16 sve\nCPU implementer\t: 0x41\n")
    assert hardware._read_cpuinfo(str(arm)) == ("", frozenset({"fp", "asimd", "bf16", "sve"}))
    assert hardware._read_cpuinfo(str(tmp_path / "missing")) == ("", frozenset())
    assert CpuInfo("x", "x86_64", frozenset({"avx2"}), 1).native_bf16 is False
    assert CpuInfo("x", "aarch64", frozenset({"bf16"}), 1).native_bf16 is None  # the probe decides there


def test_the_real_probe_and_host_summary_measure_this_host():
    assert hardware.matmul_gflops("fp32", size=64, min_seconds=0.001) > 0
    assert hardware.matmul_gflops("bf16", size=64, min_seconds=0.001) > 0
    cpu = hardware.cpu_info()
    assert cpu.threads == torch.get_num_threads() and cpu.model
    summary = hardware.host_summary(size=64)
    assert summary.startswith("host: ") and "fp32" in summary and "bf16" in summary and "GFLOP/s" in summary


def test_autocast_takes_only_resolved_precisions():
    with hardware.autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with hardware.autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="resolved precision"):
        hardware.autocast("auto", "cpu")


def test_auto_for_work_that_is_not_matmul_bound_is_fp32_on_cpus_only(host, gpu):
    calls = host(AVX512_BF16, FAST_BF16)
    choice = choose_precision("auto", "cpu", cpu_matmul_bound=False)
    assert choice.precision == "fp32" and "not bound by large matmuls" in choice.reason and calls == []
    assert choose_precision("bf16", "cpu", cpu_matmul_bound=False).precision == "bf16"  # asked for: kept
    gpu("NVIDIA H100", (9, 0), True)
    assert choose_precision("auto", "cuda", cpu_matmul_bound=False).precision == "bf16"
