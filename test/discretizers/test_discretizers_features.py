import numpy as np
import pytest
import torch

from toolkit.discretizers.features import (
    FeatureSpec,
    add_deltas,
    apply_cmvn,
    compute_features,
    compute_features_batch,
    stack_frames,
)


def noise(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    # a tone under slowly varying noise, so every coefficient varies from frame to frame
    t = np.arange(n) / sr
    return (0.2 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t) + 0.05 * rng.normal(size=n)).astype(
        np.float32
    )


def test_mfcc_frames_are_100_hz_on_the_phone_alignment_grid():
    spec = FeatureSpec()
    assert spec.dim == 39 and spec.frame_rate == 100.0
    assert compute_features(noise(1.0), spec).shape == (100, 39)
    # round(duration * 100) frames, halves rounding up, like the corpus's phone_ali
    assert compute_features(noise(1.005), spec).shape == (101, 39)
    assert compute_features(noise(1.0049), spec).shape == (100, 39)
    static = FeatureSpec(deltas=False, cmvn=False)
    assert compute_features(noise(0.5), static).shape == (50, 13)


def test_stacking_gives_50_hz_and_covers_the_end():
    spec = FeatureSpec(stack_frames=2)
    assert spec.dim == 78 and spec.frame_rate == 50.0
    assert compute_features(noise(1.0), spec).shape == (50, 78)
    assert compute_features(noise(1.01), spec).shape == (51, 78)  # 101 frames: the last pair repeats frame 100
    x = torch.arange(10.0).reshape(5, 2)
    stacked = stack_frames(x, 2)
    assert stacked.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]]
    assert torch.equal(stack_frames(x, 1), x)


def test_cmvn_gives_zero_mean_unit_variance_per_utterance():
    feats = compute_features(noise(2.0), FeatureSpec())
    assert feats.mean(0).abs().max() < 1e-4
    assert torch.allclose(feats.std(0, unbiased=False), torch.ones(39), atol=1e-3)
    constant = apply_cmvn(torch.ones(20, 3) * 5)  # a constant dimension becomes 0, not NaN or inf
    assert torch.equal(constant, torch.zeros(20, 3))


def test_deltas_of_a_ramp_are_its_slope():
    ramp = torch.arange(20.0).unsqueeze(1).repeat(1, 2) * 3.0
    out = add_deltas(ramp)
    assert out.shape == (20, 6)
    assert torch.equal(out[:, :2], ramp)
    assert torch.allclose(out[5:15, 2:4], torch.full((10, 2), 3.0))  # away from the edges
    assert torch.allclose(out[5:15, 4:6], torch.zeros(10, 2), atol=1e-5)


def test_short_waves_and_bad_shapes():
    spec = FeatureSpec(stack_frames=2)
    assert compute_features(noise(0.02), spec).shape == (0, 78)  # shorter than one 25 ms window
    with pytest.raises(ValueError, match="1-D"):
        compute_features(np.zeros((2, 16000), np.float32), spec)


def test_features_are_deterministic_and_batch_equals_single():
    spec = FeatureSpec()
    waves = [noise(0.7, seed=1), noise(1.3, seed=2)]
    batch = compute_features_batch(waves, spec)
    for wave, feats in zip(waves, batch, strict=True):
        assert torch.equal(compute_features(wave, spec), feats)
