"""PAD losses and their building blocks on tiny hand-built tensors; expected values are worked out in comments.

The running example (one utterance, D = 2):
    speech  s0 = (4, 0), s1 = (1, 1), s2 = (0, 1), s3 = (3, 4)          m = 4
    text    t0 = (1, 0), t1 = (1, 2)                                    n = 2
    P_S = [0.1, 0.2, 0.3, 0.4], P_T = [0.25, 0.75]
For `pad_loss` the text also has [CLS] = (1, 1) before and [SEP] = (5, 5) after, with a full-sequence prior
[0.2, 0.2, 0.6, 0.0] that restricted to t0, t1 is P_T again.
"""

from __future__ import annotations

import math

import pytest
import torch

from toolkit.losses.pad import (
    PADLossConfig,
    glob_loss,
    pad_glob_loss,
    pad_loss,
    pad_slocal_loss,
    pad_tlocal_loss,
    tlocal_loss,
)
from toolkit.losses.pad_prior import (
    anchor_positions,
    max_cosine_alignment,
    restrict_prior,
    sentence_vector,
    significance_prior,
    span_vectors,
    span_widths,
    uniform_prior,
)

T, F_ = True, False
SQ5 = math.sqrt(5)


def bools(*rows: list[bool]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def ex_speech() -> torch.Tensor:
    return torch.tensor([[[4.0, 0.0], [1.0, 1.0], [0.0, 1.0], [3.0, 4.0]]])


def ex_text() -> torch.Tensor:
    return torch.tensor([[[1.0, 0.0], [1.0, 2.0]]])


P_S = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
P_T = torch.tensor([[0.25, 0.75]])
M4, N2 = torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)

# cos(s_i, t0) = 1, 1/sqrt2, 0, 3/5 -> max 1 at s0;  cos(s_i, t1) = 1/sqrt5, 3/sqrt10, 2/sqrt5, 11/(5 sqrt5) -> s3.
COS_T1 = 11 / (5 * SQ5)


def attn_with_prior(p: torch.Tensor, heads: int = 1) -> torch.Tensor:
    """[1, H, L, L] attention in which every query row is `p`: the column sums are L * p, so the ASP is p."""
    return p.reshape(1, 1, 1, -1).expand(1, heads, p.numel(), p.numel()).clone()


# ---------------------------------------------------------------------------------------------------------------
# Priors


def asp_layer0() -> torch.Tensor:
    """One layer, 2 heads, 3 positions, position 2 is padding (its row is ignored; its column is dropped)."""
    h0 = [[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [1 / 3, 1 / 3, 1 / 3]]
    h1 = [[0.2, 0.6, 0.2], [0.0, 1.0, 0.0], [0.9, 0.05, 0.05]]
    return torch.tensor([[h0, h1]])


MASK3 = bools([T, T, F_])


def test_significance_prior_of_a_known_attention_matrix():
    # Head mean: row 0 = [0.4, 0.4, 0.2], row 1 = [0.1, 0.8, 0.1] (row 2 is padding, ignored).
    # Column sums [0.5, 1.2, 0.3]; padding column -> 0; normalised by 1.7: [5/17, 12/17, 0].
    p = significance_prior((asp_layer0(),), MASK3)
    torch.testing.assert_close(p, torch.tensor([[5 / 17, 12 / 17, 0.0]]))


def test_significance_prior_averages_layers_and_selects_layers():
    # Layer 1: both real rows attend only to position 0 -> column sums [2, 0, 0] -> [1, 0, 0].
    layer1 = torch.tensor([[[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]])
    attn = (asp_layer0(), layer1)
    # Equal weight per layer: [(5/17 + 1) / 2, (12/17 + 0) / 2, 0] = [11/17, 6/17, 0].
    torch.testing.assert_close(significance_prior(attn, MASK3), torch.tensor([[11 / 17, 6 / 17, 0.0]]))
    torch.testing.assert_close(significance_prior(attn, MASK3, layers=[1]), torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(significance_prior(attn, MASK3, layers=[-2]), torch.tensor([[5 / 17, 12 / 17, 0.0]]))
    with pytest.raises(ValueError, match="out of range"):
        significance_prior(attn, MASK3, layers=[2])
    with pytest.raises(ValueError, match="attention maps of layer 0"):
        significance_prior((torch.zeros(1, 1, 2, 2),), MASK3)


def test_uniform_and_restricted_priors():
    torch.testing.assert_close(
        uniform_prior(bools([T, T, F_, F_], [T, T, T, T])), torch.tensor([[0.5, 0.5, 0, 0], [0.25] * 4])
    )
    # [0.2, 0.3] renormalised by 0.5.
    p = restrict_prior(torch.tensor([[0.1, 0.2, 0.3, 0.4]]), bools([F_, T, T, F_]))
    torch.testing.assert_close(p, torch.tensor([[0.0, 0.4, 0.6, 0.0]]))
    # No mass on the sub-mask: uniform over it.
    p = restrict_prior(torch.tensor([[1.0, 0.0, 0.0]]), bools([F_, T, T]))
    torch.testing.assert_close(p, torch.tensor([[0.0, 0.5, 0.5]]))


# ---------------------------------------------------------------------------------------------------------------
# Pooling and alignment


def test_sentence_vector_mean_first_weighted_ignores_padding():
    u = torch.tensor([[[4.0, 0.0], [1.0, 1.0], [0.0, 1.0], [float("nan"), 99.0]]])
    mask = bools([T, T, T, F_])
    torch.testing.assert_close(sentence_vector(u, mask, "mean"), torch.tensor([[5 / 3, 2 / 3]]))
    torch.testing.assert_close(sentence_vector(u, mask, "first"), torch.tensor([[4.0, 0.0]]))
    w = torch.tensor([[0.5, 0.25, 0.25, 0.7]])  # the weight on the padding unit is dropped
    torch.testing.assert_close(sentence_vector(u, mask, "mean", weights=w), torch.tensor([[2.25, 0.5]]))
    with pytest.raises(ValueError, match="'mean' or 'first'"):
        sentence_vector(u, mask, "max")


def test_max_cosine_alignment_on_orthogonal_vectors():
    e0, e1, e2 = torch.eye(3)
    speech = torch.stack([2 * e1, e0, 3 * e2]).unsqueeze(0)
    text = torch.stack([e0, e2, 5 * e1, torch.tensor([2.0, 0.0, 1.0])]).unsqueeze(0)
    best, index = max_cosine_alignment(speech, bools([T, T, T]), text, bools([T, T, T, T]))
    # The last token: cos with e0 is 2/sqrt5, with e2 1/sqrt5, with e1 0.
    torch.testing.assert_close(best, torch.tensor([[1.0, 1.0, 1.0, 2 / SQ5]]))
    assert index.tolist() == [[1, 2, 0, 1]]


def test_max_cosine_alignment_never_chooses_padding():
    # The padding frame is parallel to the token (cos 1) but must lose to s0 (cos 1/sqrt2).
    speech = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], [[0.0, 1.0, 0.0]] * 3])
    text = torch.tensor([[[1.0, 1.0, 0.0], [7.0, 7.0, 7.0]], [[0.0, 1.0, 0.0]] * 2])
    best, index = max_cosine_alignment(speech, bools([T, T, F_], [F_, F_, F_]), text, bools([T, F_], [T, T]))
    torch.testing.assert_close(best, torch.tensor([[1 / math.sqrt(2), 0.0], [0.0, 0.0]]))
    assert index.tolist() == [[0, 0], [0, 0]]  # padding token and an utterance without frames: 0


# ---------------------------------------------------------------------------------------------------------------
# AASA


def test_anchor_positions_asp_top_k():
    prior = torch.tensor([[0.1, 0.3, 0.05, 0.25, 0.2, 0.1], [0.1, 0.4, 0.3, 0.2, 0.9, 0.9], [0.6, 0.4, 0, 0, 0, 0]])
    mask = bools([T] * 6, [T, T, T, T, F_, F_], [T, T, F_, F_, F_, F_])
    pos, valid = anchor_positions(prior, mask, torch.tensor([3, 2, 3]), "asp")
    # Row 0: top 3 = frames 1 (0.3), 3 (0.25), 4 (0.2). Row 1: padding frames 4, 5 (0.9) are never anchors.
    # Row 2: k = 3 is clipped to the 2 real frames.
    assert pos.tolist() == [[1, 3, 4], [1, 2, 0], [0, 1, 0]]
    assert valid.tolist() == [[T, T, T], [T, T, F_], [T, T, F_]]


def test_anchor_positions_stride():
    # floor((2r + 1) * m / (2k)): m=10, k=3 -> 1, 5, 8;  m=6, k=2 -> 1, 4;  m=4, k=4 -> 0, 1, 2, 3.
    mask = bools([T] * 10, [T] * 6 + [F_] * 4, [T] * 4 + [F_] * 6)
    pos, valid = anchor_positions(None, mask, torch.tensor([3, 2, 4]), "stride")
    assert pos.tolist() == [[1, 5, 8, 0], [1, 4, 0, 0], [0, 1, 2, 3]]
    assert valid.tolist() == [[T, T, T, F_], [T, T, F_, F_], [T, T, T, T]]
    with pytest.raises(ValueError, match="anchor method"):
        anchor_positions(None, mask, 2, "random")


def test_span_widths_round_half_up_at_least_one():
    # xi = 3: 1.5 -> 2, 3, 6;  xi = 5: 2.5 -> 3, 5, 10;  xi = 0.4: 0.2, 0.4, 0.8 -> 1, 1, 1.
    w = span_widths(torch.tensor([3.0, 5.0, 0.4]), (0.5, 1.0, 2.0))
    assert w.tolist() == [[2, 3, 6], [3, 5, 10], [1, 1, 1]]


def test_span_vectors_on_a_ramp():
    # Frame i holds the value i, so the mean of frames [a, b) is (a + b - 1) / 2. Span: [a - w//2, a - w//2 + w).
    # Row 1 has 4 real frames; its padding frames hold 100 and must never enter a mean.
    ramp = torch.arange(10.0).reshape(1, 10, 1).repeat(2, 1, 1)
    ramp[1, 4:] = 100.0
    mask = bools([T] * 10, [T] * 4 + [F_] * 6)
    anchors = torch.tensor([[0, 5, 9], [1, 3, 0]])
    anchor_mask = bools([T, T, T], [T, T, F_])
    spans, span_mask = span_vectors(ramp, mask, anchors, anchor_mask, [1, 2, 3, 4])
    expected = [
        # w=1: the anchor frame; w=2: [a-1, a+1); w=3: [a-1, a+2); w=4: [a-2, a+2), all clipped to [0, m).
        [0, 5, 9] + [0, 4.5, 8.5] + [0.5, 5, 8.5] + [0.5, 4.5, 8],
        # a=1: 1, [0,2) 0.5, [0,3) 1, [-1,3)->[0,3) 1;  a=3: 3, [2,4) 2.5, [2,5)->[2,4) 2.5, [1,5)->[1,4) 2.
        [1, 3, 0] + [0.5, 2.5, 0] + [1, 2.5, 0] + [1, 2, 0],
    ]
    torch.testing.assert_close(spans.squeeze(-1), torch.tensor(expected))
    assert span_mask.tolist() == [[T, T, T] * 4, [T, T, F_] * 4]
    # Per-utterance widths: row 0 uses 1 and 3, row 1 uses 2 and 4.
    spans, _ = span_vectors(ramp, mask, anchors, anchor_mask, torch.tensor([[1, 3], [2, 4]]))
    torch.testing.assert_close(spans.squeeze(-1), torch.tensor([[0, 5, 9, 0.5, 5, 8.5], [0.5, 2.5, 0, 1, 2, 0]]))
    with pytest.raises(ValueError, match="right-padded"):
        span_vectors(ramp, bools([T] * 10, [F_, T] + [F_] * 8), anchors, anchor_mask, [1])


# ---------------------------------------------------------------------------------------------------------------
# Loss values (running example)


def test_glob_loss_mean_and_first():
    # mean: s_hat = (2, 1.5), t_hat = (1, 1) -> |1| + |0.5| = 1.5.  first: (4, 0) - (1, 0) -> 3.
    assert glob_loss(ex_speech(), M4, ex_text(), N2).item() == pytest.approx(1.5)
    assert glob_loss(ex_speech(), M4, ex_text(), N2, pooling="first").item() == pytest.approx(3.0)


def test_pad_glob_loss():
    # sum P_S s = (0.4 + 0.2 + 0 + 1.2, 0 + 0.2 + 0.3 + 1.6) = (1.8, 2.1); sum P_T t = (1, 1.5) -> 0.8 + 0.6.
    assert pad_glob_loss(ex_speech(), M4, ex_text(), N2, P_S, P_T).item() == pytest.approx(1.4)


def test_tlocal_and_pad_tlocal_loss():
    assert tlocal_loss(ex_speech(), M4, ex_text(), N2).item() == pytest.approx(-(1 + COS_T1) / 2)
    assert pad_tlocal_loss(ex_speech(), M4, ex_text(), N2, P_T).item() == pytest.approx(-(0.25 + 0.75 * COS_T1))


# pad_slocal, ASP anchors: xi = m/n = 2 -> widths 1, 2, 4; k = n = 2 anchors = top-2 of P_S = frames 2, 3.
#   w=1: s2 = (0, 1), s3 = (3, 4);  w=2: [1,3) (0.5, 1), [2,4) (1.5, 2.5);  w=4: [0,4) (2, 1.5), [1,4) (4/3, 2).
#   t0 = (1, 0): cosines 0, 0.6, 1/sqrt5, 1.5/sqrt8.5, 0.8, 4/sqrt52 -> max 0.8.
#   t1 = (1, 2): the span (0.5, 1) is parallel -> max 1.
SLOCAL_ASP = -(0.25 * 0.8 + 0.75 * 1.0)
# Stride anchors: floor(m/(2k)) = 1, floor(3m/(2k)) = 3.
#   w=1: (1, 1), (3, 4);  w=2: [0,2) (2.5, 0.5), [2,4) (1.5, 2.5);  w=4: [0,3) (5/3, 2/3), [1,4) (4/3, 2).
#   t0: best (2.5, 0.5): 2.5/sqrt6.5.  t1: best (1.5, 2.5): 6.5/(sqrt8.5 sqrt5) (others 3/sqrt10, 11/(5 sqrt5), ...).
SLOCAL_STRIDE = -(0.25 * 2.5 / math.sqrt(6.5) + 0.75 * 6.5 / math.sqrt(42.5))


def test_pad_slocal_loss_asp_and_stride_anchors():
    loss = pad_slocal_loss(ex_speech(), M4, ex_text(), N2, P_T, P_S)
    assert loss.item() == pytest.approx(SLOCAL_ASP, rel=1e-6)
    loss = pad_slocal_loss(ex_speech(), M4, ex_text(), N2, P_T, anchors="stride")
    assert loss.item() == pytest.approx(SLOCAL_STRIDE, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# pad_loss: dispatch, priors from attention maps, ablations, joint


def full_example() -> dict:
    """The running example as a model would give it: text with [CLS] and [SEP], attention maps, local mask."""
    text = torch.tensor([[[1.0, 1.0], [1.0, 0.0], [1.0, 2.0], [5.0, 5.0]]])
    return {
        "speech": ex_speech(),
        "speech_mask": M4,
        "text": text,
        "text_mask": torch.ones(1, 4, dtype=torch.bool),
        "speech_attn": (attn_with_prior(P_S[0], heads=2),),
        "text_attn": (attn_with_prior(torch.tensor([0.2, 0.2, 0.6, 0.0])),),
        "text_local_mask": bools([F_, T, T, F_]),
    }


@pytest.mark.parametrize(
    "cfg, expected",
    [
        # glob uses all tokens: t_hat = mean((1,1), (1,0), (1,2), (5,5)) = (2, 2); s_hat = (2, 1.5).
        (PADLossConfig(kind="glob"), 0.5),
        # first: s0 = (4, 0) against [CLS] = (1, 1).
        (PADLossConfig(kind="glob", sentence_pooling="first"), 4.0),
        (PADLossConfig(kind="tlocal"), -(1 + COS_T1) / 2),
        # P_T over all tokens: 0.2 (1,1) + 0.2 (1,0) + 0.6 (1,2) = (1, 1.4) against (1.8, 2.1).
        (PADLossConfig(kind="pad_glob"), 0.8 + 0.7),
        (PADLossConfig(kind="pad_tlocal"), -(0.25 + 0.75 * COS_T1)),
        (PADLossConfig(kind="pad_slocal"), SLOCAL_ASP),
        (PADLossConfig(kind="pad_slocal", anchors="stride"), SLOCAL_STRIDE),
        # Uniform-prior ablations reduce to the baselines (pad_slocal keeps its ASP anchors: -(0.5*0.8 + 0.5*1)).
        (PADLossConfig(kind="pad_glob", prior="uniform"), 0.5),
        (PADLossConfig(kind="pad_tlocal", prior="uniform"), -(1 + COS_T1) / 2),
        (PADLossConfig(kind="pad_slocal", prior="uniform"), -0.9),
        # Fixed xi = 1 (widths 0.5 -> 1, 1, 2) and one anchor (frame 3): spans (3,4), (3,4), [2,4) (1.5,2.5).
        # t0: max(0.6, 1.5/sqrt8.5); t1: max(11/(5 sqrt5), 6.5/sqrt42.5).
        (
            PADLossConfig(kind="pad_slocal", xi=1, num_anchors=1),
            -(0.25 * 0.6 + 0.75 * 6.5 / math.sqrt(42.5)),
        ),
    ],
)
def test_pad_loss_values(cfg: PADLossConfig, expected: float):
    loss, stats = pad_loss(cfg, **full_example())
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert stats == {"loss": pytest.approx(expected, rel=1e-6)}


def test_joint_is_the_weighted_sum_of_its_parts():
    cfg = PADLossConfig(
        kind="joint", global_kind="pad_glob", local_kind="pad_slocal", global_weight=0.3, local_weight=2
    )
    loss, stats = pad_loss(cfg, **full_example())
    assert stats["global"] == pytest.approx(1.5) and stats["local"] == pytest.approx(SLOCAL_ASP)
    assert loss.item() == pytest.approx(0.3 * 1.5 + 2 * SLOCAL_ASP)
    loss, stats = pad_loss(PADLossConfig(kind="joint", global_kind="glob", local_kind="tlocal"), **full_example())
    assert loss.item() == pytest.approx(0.5 - (1 + COS_T1) / 2) and stats["loss"] == pytest.approx(loss.item())


def test_missing_attention_maps_raise_unless_no_asp_is_used():
    ex = full_example()
    del ex["speech_attn"], ex["text_attn"]
    with pytest.raises(ValueError, match="needs text_attn"):
        pad_loss(PADLossConfig(kind="pad_tlocal"), **ex)
    with pytest.raises(ValueError, match="needs speech_attn"):
        pad_loss(PADLossConfig(kind="pad_slocal", prior="uniform"), **ex)
    loss, _ = pad_loss(PADLossConfig(kind="pad_slocal", prior="uniform", anchors="stride"), **ex)
    # Stride anchors with uniform P_T = [0.5, 0.5] (see SLOCAL_STRIDE).
    assert loss.item() == pytest.approx(-(0.5 * 2.5 / math.sqrt(6.5) + 0.5 * 6.5 / math.sqrt(42.5)), rel=1e-6)


def test_bad_inputs_raise():
    ex = full_example()
    with pytest.raises(ValueError, match="share B and D"):
        pad_loss(PADLossConfig(kind="glob"), **{**ex, "text": torch.zeros(1, 4, 3)})
    with pytest.raises(ValueError, match="text_local_mask marks a padding token"):
        pad_loss(PADLossConfig(kind="tlocal"), **{**ex, "text_mask": bools([T, T, F_, F_])})
    with pytest.raises(ValueError, match="speech_mask must be a bool tensor"):
        pad_loss(PADLossConfig(kind="glob"), **{**ex, "speech_mask": torch.ones(1, 4)})


# ---------------------------------------------------------------------------------------------------------------
# Properties: padding invariance, batching, gradients


ALL_CONFIGS = [
    PADLossConfig(kind=k, prior=p, anchors=a)
    for k in ("glob", "tlocal", "pad_glob", "pad_tlocal", "pad_slocal")
    for p in ("asp", "uniform")
    for a in ("asp", "stride")
    if k == "pad_slocal" or a == "asp"
    if k.startswith("pad") or p == "asp"
] + [
    PADLossConfig(kind="glob", sentence_pooling="first"),
    PADLossConfig(kind="pad_slocal", xi=1.5, num_anchors=3, span_widths=(1, 3), speech_asp_layers=[-1]),
    PADLossConfig(kind="joint", global_kind="pad_glob", local_kind="pad_slocal", global_weight=0.5),
]


def random_utterance(g: torch.Generator, m: int, n: int, d: int = 3) -> dict:
    def attn(length: int) -> tuple[torch.Tensor, ...]:
        return tuple(torch.softmax(torch.randn(1, 2, length, length, generator=g), -1) for _ in range(2))

    local = torch.ones(1, n, dtype=torch.bool)
    local[0, 0] = local[0, -1] = False  # [CLS], [SEP]
    return {
        "speech": torch.randn(1, m, d, generator=g),
        "speech_mask": torch.ones(1, m, dtype=torch.bool),
        "text": torch.randn(1, n, d, generator=g),
        "text_mask": torch.ones(1, n, dtype=torch.bool),
        "speech_attn": attn(m),
        "text_attn": attn(n),
        "text_local_mask": local,
    }


def pad_batch(utts: list[dict], m: int, n: int, g: torch.Generator) -> dict:
    """Right-pad utterances to m frames / n tokens with garbage (NaN in the units, random attention) and stack."""

    def pad(x: torch.Tensor, size: int, dims: list[int], fill: float | None) -> torch.Tensor:
        shape = list(x.shape)
        for dim in dims:
            shape[dim] = size
        out = torch.rand(shape, generator=g) if fill is None else torch.full(shape, fill, dtype=x.dtype)
        out[tuple(slice(0, s) for s in x.shape)] = x
        return out

    out = {}
    for key, size in [("speech", m), ("text", n)]:
        out[key] = torch.cat([pad(u[key], size, [1], float("nan")) for u in utts])
        out[f"{key}_attn"] = tuple(
            torch.cat([pad(u[f"{key}_attn"][i], size, [2, 3], None) for u in utts]) for i in range(2)
        )
    for key, size in [("speech_mask", m), ("text_mask", n), ("text_local_mask", n)]:
        out[key] = torch.cat([pad(u[key], size, [1], False) for u in utts])
    return out


@pytest.mark.parametrize("cfg", ALL_CONFIGS)
def test_padding_and_batching_leave_losses_unchanged(cfg: PADLossConfig):
    g = torch.Generator().manual_seed(0)
    a, b = random_utterance(g, 7, 5), random_utterance(g, 4, 4)
    loss_a, _ = pad_loss(cfg, **a)
    loss_b, _ = pad_loss(cfg, **b)
    padded_a, _ = pad_loss(cfg, **pad_batch([a], 10, 8, g))
    batch, _ = pad_loss(cfg, **pad_batch([a, b], 9, 6, g))
    torch.testing.assert_close(padded_a, loss_a)
    torch.testing.assert_close(batch, (loss_a + loss_b) / 2)


@pytest.mark.parametrize("kind", ["glob", "tlocal", "pad_glob", "pad_tlocal", "pad_slocal"])
def test_gradients_reach_real_speech_frames_only(kind: str):
    g = torch.Generator().manual_seed(1)
    ex = pad_batch([random_utterance(g, 6, 5)], 8, 5, g)
    ex["speech"] = torch.nan_to_num(ex["speech"], nan=3.0).requires_grad_(True)
    loss, _ = pad_loss(PADLossConfig(kind=kind), **ex)
    loss.backward()
    grad = ex["speech"].grad
    assert torch.isfinite(grad).all() and grad[0, :6].abs().sum() > 0
    assert grad[0, 6:].abs().sum() == 0


@pytest.mark.parametrize("detach", [True, False])
def test_detach_prior_controls_gradient_into_student_attention(detach: bool):
    g = torch.Generator().manual_seed(2)
    ex = random_utterance(g, 5, 4)
    ex["speech_attn"] = tuple(a.requires_grad_(True) for a in ex["speech_attn"])
    loss, _ = pad_loss(PADLossConfig(kind="pad_glob", detach_prior=detach), **ex)
    if detach:
        assert not loss.requires_grad
    else:
        loss.backward()
        assert ex["speech_attn"][0].grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------------------
# Config validation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "slocal"}, "kind must be one of"),
        ({"prior": "none"}, "prior must be one of"),
        ({"anchors": "random"}, "anchors must be one of"),
        ({"span_pool": "max"}, "span_pool must be one of"),
        ({"sentence_pooling": "last"}, "sentence_pooling must be one of"),
        ({"global_kind": "tlocal"}, "global_kind must be one of"),
        ({"local_kind": "glob"}, "local_kind must be one of"),
        ({"span_widths": ()}, "span_widths must be a non-empty list"),
        ({"span_widths": (1.0, 0.0)}, "span_widths must be a non-empty list"),
        ({"span_widths": "1"}, "span_widths must be a list"),
        ({"xi": 0}, "xi must be"),
        ({"xi": True}, "xi must be"),
        ({"xi": float("inf")}, "xi must be"),
        ({"num_anchors": 0}, "num_anchors must be"),
        ({"num_anchors": 1.5}, "num_anchors must be"),
        ({"speech_asp_layers": []}, "speech_asp_layers must be a non-empty list"),
        ({"text_asp_layers": [0, 0]}, "text_asp_layers lists a layer twice"),
        ({"text_asp_layers": 3}, "text_asp_layers must be null"),
        ({"speech_asp_layers": [0.5]}, "speech_asp_layers must be a non-empty list"),
        ({"global_weight": -1.0}, "global_weight must be"),
        ({"local_weight": float("nan")}, "local_weight must be"),
        ({"detach_prior": "yes"}, "detach_prior must be"),
    ],
)
def test_bad_configs_raise(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        PADLossConfig(**kwargs)


def test_config_from_yaml_lists():
    cfg = PADLossConfig(span_widths=[1, 2], speech_asp_layers=[0, -1], xi=4, num_anchors=3)
    assert cfg.span_widths == (1, 2) and cfg.speech_asp_layers == (0, -1) and cfg.text_asp_layers is None
