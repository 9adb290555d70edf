"""Time masking: identity at p = 0, exact at p = 1, reproducible, and the right rate."""

from __future__ import annotations

import pytest
import torch

from toolkit.tokenizers.vocab import VocabLayout
from toolkit.train.augment import maskable_positions, speech_positions, time_mask

LAYOUT = VocabLayout(text_size=2, speech_size=3)  # text ids 5, 6; speech ids 7, 8, 9; <mask> = 4
X = torch.tensor([[1, 7, 8, 9, 2, 5, 6, 3, 0], [1, 9, 2, 6, 3, 0, 0, 0, 0]])


def test_maskable_positions_by_scope():
    assert speech_positions(X, LAYOUT).int().tolist() == [[0, 1, 1, 1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0]]
    assert maskable_positions(X, LAYOUT, "speech").equal(speech_positions(X, LAYOUT))
    assert maskable_positions(X, LAYOUT).int().tolist() == [[0, 1, 1, 1, 0, 1, 1, 0, 0], [0, 1, 0, 1, 0, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="scope"):
        maskable_positions(X, LAYOUT, "text")


def test_p_zero_is_identity():
    out = time_mask(X, 0.0, LAYOUT.mask_id, maskable_positions(X, LAYOUT))
    assert out.equal(X) and out is not X


@pytest.mark.parametrize("scope", ["all", "speech"])
def test_p_one_masks_every_maskable_token_and_nothing_else(scope: str):
    maskable = maskable_positions(X, LAYOUT, scope)
    before = X.clone()
    out = time_mask(X, 1.0, LAYOUT.mask_id, maskable)
    assert (out[maskable] == LAYOUT.mask_id).all()
    assert out[~maskable].equal(X[~maskable])
    assert X.equal(before)  # the input is left alone


def test_seeded_generator_is_deterministic():
    x = torch.randint(5, 10, (4, 50))
    maskable = maskable_positions(x, LAYOUT)
    a = time_mask(x, 0.3, LAYOUT.mask_id, maskable, torch.Generator().manual_seed(7))
    b = time_mask(x, 0.3, LAYOUT.mask_id, maskable, torch.Generator().manual_seed(7))
    c = time_mask(x, 0.3, LAYOUT.mask_id, maskable, torch.Generator().manual_seed(8))
    assert a.equal(b) and not a.equal(c)


def test_rate_is_about_p():
    x = torch.full((100, 2000), 8)
    out = time_mask(x, 0.3, LAYOUT.mask_id, maskable_positions(x, LAYOUT), torch.Generator().manual_seed(0))
    rate = (out == LAYOUT.mask_id).float().mean().item()
    assert rate == pytest.approx(0.3, abs=0.005)  # std of the rate is ~0.001 over 200k draws


def test_bad_arguments():
    maskable = maskable_positions(X, LAYOUT)
    with pytest.raises(ValueError, match="probability"):
        time_mask(X, 1.5, LAYOUT.mask_id, maskable)
    with pytest.raises(ValueError, match="maskable"):
        time_mask(X, 0.3, LAYOUT.mask_id, maskable[:, :3])
    with pytest.raises(ValueError, match="maskable"):
        time_mask(X, 0.3, LAYOUT.mask_id, maskable.int())


def test_the_release_scope_masks_every_input_token_specials_included_with_text_end():
    from toolkit.train.augment import mask_token

    maskable = maskable_positions(X, LAYOUT, "release")
    assert maskable.int().tolist() == [[1, 1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 0, 0, 0, 0]]
    assert mask_token(LAYOUT, "release") == LAYOUT.text_end_id and mask_token(LAYOUT, "all") == LAYOUT.mask_id
    out = time_mask(X, 1.0, mask_token(LAYOUT, "release"), maskable)
    assert out.tolist() == [[3] * 8 + [0], [3] * 5 + [0] * 4]
