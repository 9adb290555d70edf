"""`--device` of every entry point: auto, explicit devices, and the two mistakes (a device torch does not know, a CUDA
device on a machine without CUDA) refused with a usage error before anything is read or written."""

import importlib

import pytest
import torch

from toolkit.device import resolve_device

# Each entry point with its required options (paths that do not exist: the device check must come first).
ENTRY_POINTS = {
    "decode": ["--exp", "E", "--tokens", "T", "--out", "O"],
    "distill": ["--config", "C", "--data", "D", "--out", "O"],
    "infer_downstream": ["--model", "M", "--data", "D", "--out", "O"],
    "pretrain_hubert": ["--config", "C", "--train", "T", "--valid", "V", "--out", "O"],
    "train": ["--config", "C", "--train", "T", "--valid", "V", "--tokenizers", "K", "--out", "O"],
    "train_codec": ["--config", "C", "--train", "T", "--valid", "V", "--out", "O"],
    "train_downstream": ["--config", "C", "--train", "T", "--out", "O"],
    "dump_units": ["--discretizer", "X", "--data", "D", "--out", "O"],
}


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_auto_is_cuda_only_where_there_is_one(no_cuda):
    assert resolve_device("auto") == "cpu"


def test_auto_picks_cuda_when_available(with_cuda):
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"


def test_explicit_devices_pass_through(no_cuda):
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("meta") == "meta"


def test_cuda_without_cuda_is_refused(no_cuda):
    for name in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(ValueError, match="CUDA is not available on this machine"):
            resolve_device(name)


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("device, message", [("cuda", "CUDA is not available"), ("gpu", "unknown device 'gpu'")])
def test_entry_points_refuse_a_bad_device_first(name, device, message, no_cuda, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(f"toolkit.bin.{name}").main
    with pytest.raises(SystemExit) as exit_info:
        main([*ENTRY_POINTS[name], "--device", device])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--device: {'device' if device == 'cuda' else 'unknown device'}" in err
    assert message in err
    assert list(tmp_path.iterdir()) == []  # nothing written
