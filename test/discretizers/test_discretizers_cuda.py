"""Discretizers on the GPU: the SSL model and the codec run on CUDA and give the CPU's units; k-means fits there.
Skipped without CUDA (CI has none); the `--device` override itself is tested on the CPU in test_discretizers_cli."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from test_encodec import make_tiny_model as make_tiny_codec
from test_encodec import noise
from test_ssl_features import make_tiny_model

from toolkit.bin.dump_units import main as dump_main
from toolkit.discretizers import fit_discretizer, load_discretizer
from toolkit.discretizers.kmeans import load_centers
from toolkit.fileio import read_table

from conftest import build_data_dir

os.environ["HF_HUB_OFFLINE"] = "1"
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

KMEANS = {"batch_size": 64, "n_init": 2, "max_iter": 3}


def agreement(a: dict[str, str], b: dict[str, str]) -> float:
    """Share of frames with the same unit (the GPU's TF32 convolutions may flip near-ties)."""
    assert a.keys() == b.keys()
    same = total = 0
    for utt in a:
        x, y = a[utt].split(), b[utt].split()
        assert len(x) == len(y), utt
        same += sum(p == q for p, q in zip(x, y, strict=True))
        total += len(x)
    return same / total


def dump_on(device: str, exp, data, out) -> dict[str, str]:
    argv = ["--discretizer", str(exp), "--data", str(data), "--out", str(out), "--no-progress", "--device", device]
    assert dump_main(argv) == 0
    return read_table(out)


def test_ssl_kmeans_fits_and_dumps_on_cuda_like_on_the_cpu(tmp_path):
    model = make_tiny_model(tmp_path / "model", "hubert_stable")
    data = build_data_dir(tmp_path, num_utts=6, durations=[0.5, 0.8, 1.1, 1.4, 0.65, 0.95])
    options = {"model": model, "layer": 2, "num_units": 6, "fit_fraction": 1.0, "kmeans": KMEANS}
    fit_discretizer("ssl_kmeans", [data], tmp_path / "cpu", options)
    fit_discretizer("ssl_kmeans", [data], tmp_path / "cuda", {**options, "device": "cuda"})
    # The fits start alike but need not end alike: cuDNN's TF32 convolutions move features by ~1e-3, enough to
    # change a k-means tie. Both must be proper fits.
    for device in ("cpu", "cuda"):
        centers = load_centers(tmp_path / device / "centers.npy")
        assert centers.shape == (6, 32) and torch.isfinite(centers).all()
    assert load_discretizer(tmp_path / "cpu", device="cuda").extractor.device.type == "cuda"
    units = {d: dump_on(d, tmp_path / "cpu", data, tmp_path / f"units.{d}") for d in ("cpu", "cuda")}
    assert agreement(units["cpu"], units["cuda"]) > 0.98


def test_encodec_dumps_on_cuda_like_on_the_cpu(tmp_path):
    folder = make_tiny_codec(tmp_path / "codec")
    data = build_data_dir(tmp_path, num_utts=3, sr=8000, durations=[0.2, 0.25, 0.3])
    fit_discretizer("encodec", [data], tmp_path / "exp", {"model": str(folder), "bandwidth": 12.0})
    disc = load_discretizer(tmp_path / "exp", device="cuda")
    assert next(disc.model.parameters()).device.type == "cuda"
    assert disc.encode(noise(0.1), 16000).size == 2 * 100
    units = {d: dump_on(d, tmp_path / "exp", data, tmp_path / f"units.{d}") for d in ("cpu", "cuda")}
    assert agreement(units["cpu"], units["cuda"]) > 0.95


def test_kmeans_assignment_on_cuda_equals_brute_force():
    from toolkit.discretizers.kmeans import assign

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((5000, 16)).astype(np.float32))
    centers = torch.from_numpy(rng.standard_normal((50, 16)).astype(np.float32)).cuda()
    labels, _ = assign(x, centers)
    brute = torch.cdist(x.double(), centers.cpu().double()).argmin(1)
    assert labels.device.type == "cuda"
    assert (labels.cpu() == brute).float().mean() > 0.999
