"""SincResampler: torchaudio's sinc resampling on the non-zero taps only, the same output up to float rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio

from toolkit.synth.resample import SincResampler


@pytest.mark.parametrize("orig,new", [(22050, 16000), (22050, 8000), (16000, 22050), (48000, 16000)])
@pytest.mark.parametrize("length", [1, 7, 441, 1000, 33077])
def test_matches_torchaudio(orig, new, length):
    signal = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    expected = torchaudio.transforms.Resample(orig, new)(torch.from_numpy(signal)).numpy()
    got = SincResampler(orig, new)(signal)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def test_uses_only_the_nonzero_taps():
    resampler = SincResampler(22050, 16000)
    assert resampler.taps == 459 and resampler.compact.shape == (320, 17)  # 17 of 459 taps per phase


def test_same_rate_is_a_copy():
    signal = np.arange(5, dtype=np.float32)
    out = SincResampler(16000, 16000)(signal)
    assert np.array_equal(out, signal) and out is not signal
