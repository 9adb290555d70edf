"""HuBERT masked prediction: span masks, the cosine/temperature loss by hand, target alignment, the encoder's masking."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from toolkit.discretizers.features import FeatureSpec, compute_features
from toolkit.models.hubert_pretrain import (
    EncoderConfig,
    HubertPretrainModel,
    LossConfig,
    MaskConfig,
    align_targets,
    build_hubert_config,
    hubert_loss,
    num_frames,
    span_mask,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = dict(
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    conv_dim=[16, 16, 16, 16],
    conv_pos_kernel=8,
    conv_pos_groups=4,
    dropout=0.0,
)


def test_span_starts_follow_prob_in_expectation():
    cfg = MaskConfig(prob=0.08, length=1, min_masks=0)
    mask = span_mask([1000] * 200, 1000, cfg, np.random.default_rng(0))
    counts = mask.sum(dim=1).float()
    assert set(counts.tolist()) <= {80.0}  # 0.08 * 1000 is whole: no random rounding
    mask = span_mask([1005] * 400, 1005, cfg, np.random.default_rng(1))
    counts = mask.sum(dim=1).float()
    assert set(counts.tolist()) <= {80.0, 81.0}  # 80.4 rounded at random
    assert counts.mean().item() == pytest.approx(80.4, abs=0.1)


def test_spans_have_the_configured_length_and_cover_the_expected_share():
    cfg = MaskConfig(prob=0.08, length=10, min_masks=0)
    mask = span_mask([1000] * 100, 1000, cfg, np.random.default_rng(0)).numpy()
    # 80 distinct starts among 991 positions: a frame is masked unless none of the 10 starts before it was drawn.
    expected = 1.0 - (1.0 - 80 / 991) ** 10
    assert mask.mean() == pytest.approx(expected, abs=0.03)
    for row in mask[:20]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        runs = edges[1::2] - edges[::2]
        assert runs.min() >= 10  # overlapping spans merge, none is shorter than a span


def test_padding_and_too_short_utterances_are_never_masked():
    cfg = MaskConfig(prob=0.5, length=10, min_masks=2)
    lengths = [100, 37, 12, 5]
    mask = span_mask(lengths, 100, cfg, np.random.default_rng(3))
    for row, n in enumerate(lengths):
        assert not mask[row, n:].any()
    assert mask[0].any() and mask[1].any() and mask[2].any()
    assert not mask[3].any()  # shorter than one span
    sparse = span_mask([30], 30, MaskConfig(prob=0.01, length=10, min_masks=2), np.random.default_rng(0))
    assert sparse.sum() >= 10  # min_masks spans even where prob * n rounds to 0


def test_masks_are_reproducible_from_the_seed():
    cfg = MaskConfig()
    a = span_mask([300, 250], 300, cfg, np.random.default_rng([1, 2, 3]))
    b = span_mask([300, 250], 300, cfg, np.random.default_rng([1, 2, 3]))
    c = span_mask([300, 250], 300, cfg, np.random.default_rng([1, 2, 4]))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_loss_is_cross_entropy_of_cosine_over_temperature_on_masked_frames():
    projected = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 2.0], [5.0, 5.0]]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    targets = torch.tensor([[0, 2, 1, 0]])
    masked = torch.tensor([[True, True, False, True]])
    valid = torch.tensor([[True, True, True, False]])  # the last frame is padding: ignored although "masked"
    cfg = LossConfig(final_dim=2, temperature=0.5, masked_weight=1.0, unmasked_weight=0.0)
    loss, stats = hubert_loss(projected, labels, targets, masked, valid, cfg)
    # cosines x 2: frame 0 [2, 0, -2] target 0; frame 1 [0, 2, 0] target 2; frame 2 [a, 2a, -a] (a = 2 / sqrt 5)
    # target 1
    ce0 = math.log(1 + math.exp(-2) + math.exp(-4))
    ce1 = math.log(2 + math.exp(2))
    a = 2 / math.sqrt(5)
    ce2 = math.log(math.exp(a) + math.exp(2 * a) + math.exp(-a)) - 2 * a
    assert loss.item() == pytest.approx((ce0 + ce1) / 2, rel=1e-5)
    assert stats["acc_masked"] == 0.5 and stats["n_masked"] == 2 and stats["n_unmasked"] == 1
    assert stats["loss_unmasked"] == pytest.approx(ce2, rel=1e-5) and stats["acc_unmasked"] == 1.0
    both = LossConfig(final_dim=2, temperature=0.5, masked_weight=1.0, unmasked_weight=0.5)
    loss, _ = hubert_loss(projected, labels, targets, masked, valid, both)
    assert loss.item() == pytest.approx((ce0 + ce1) / 2 + 0.5 * ce2, rel=1e-5)


def test_targets_are_cut_or_padded_to_the_frames_and_big_gaps_are_errors():
    assert align_targets(np.array([1, 2, 3, 4]), 3).tolist() == [1, 2, 3]
    assert align_targets(np.array([1, 2, 3]), 5).tolist() == [1, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="utterance 'u1': 10 target frames for 5 encoder frames"):
        align_targets(np.arange(10), 5, uttid="u1")


@pytest.mark.parametrize("conv", ["default", "base"])
def test_stacked_mfcc_frames_match_the_encoder_frames(conv):
    cfg = (
        EncoderConfig()
        if conv == "default"
        else EncoderConfig(conv_dim=[8] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2])
    )
    spec = FeatureSpec(stack_frames=2)
    rng = np.random.default_rng(0)
    for samples in (4000, 16000, 16001, 16319, 16320, 16639, 33333, 128000):
        mfcc_frames = compute_features(rng.standard_normal(samples).astype(np.float32) * 0.1, spec).shape[0]
        frames = num_frames(samples, cfg.conv_kernel, cfg.conv_stride)
        assert 0 <= mfcc_frames - frames <= 2, (samples, mfcc_frames, frames)
        align_targets(np.zeros(mfcc_frames), frames)


def test_frame_count_matches_the_model_and_masks_use_masked_spec_embed():
    cfg = EncoderConfig(**TINY)
    torch.manual_seed(0)
    model = HubertPretrainModel(cfg, LossConfig(final_dim=8), num_classes=5).eval()
    assert model.hubert.masked_spec_embed.shape == (32,)
    assert build_hubert_config(cfg).conv_stride == [10, 4, 4, 2]
    waves = torch.randn(2, 8000)
    attention = torch.ones(2, 8000, dtype=torch.long)
    attention[1, 5000:] = 0
    frames = num_frames(8000, cfg.conv_kernel, cfg.conv_stride)
    with torch.no_grad():
        out = model(waves, attention, None)
        assert out.shape == (2, frames, 8)
        assert model.hubert._get_feat_extract_output_lengths(torch.tensor(5000)).item() == num_frames(
            5000, cfg.conv_kernel, cfg.conv_stride
        )
        # The padded utterance gives the same valid frames as the utterance alone (LayerNorm conv + attention mask).
        alone = model(waves[1:, :5000], None, None)
        assert torch.allclose(out[1, : alone.shape[1]], alone[0], atol=1e-5)
        # Every frame masked: the input no longer matters, also in eval mode (given indices are always applied).
        everything = torch.ones(2, frames, dtype=torch.bool)
        a = model(waves, None, everything)
        b = model(torch.randn(2, 8000), None, everything)
        assert torch.allclose(a, b, atol=1e-5)
        assert not torch.allclose(model(waves, None, None), a, atol=1e-3)
