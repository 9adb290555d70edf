"""SLD / CE / Loss Masking on tiny hand-computed batches.

Layout: 5 specials (<pad>=0 <bos>=1 <speech_end>=2 <text_end>=3 <mask>=4), text ids 5, 6, speech ids 7, 8, 9
(K = 3), so V = 10. Expected numbers are written out from math.log / math.exp.
"""

from __future__ import annotations

import math

import pytest
import torch

from toolkit.losses.sld import (
    IGNORE_INDEX,
    KIND_IGNORE,
    KIND_SPEECH,
    KIND_TEXT,
    SLDLossConfig,
    _kl_rows,
    kl_target,
    next_token_targets,
    sld_loss,
    speech_kl,
)
from toolkit.tokenizers.vocab import VocabLayout

LAYOUT = VocabLayout(text_size=2, speech_size=3)
V, K, S0 = 10, 3, 7  # vocabulary size, speech block size, first speech id
E = math.e

# <bos> s0 s2 <speech_end> t0 <text_end> <pad>
SEQ = [1, 7, 9, 2, 5, 3, 0]


def hand_logits() -> torch.Tensor:
    """Zeros, except position 1 (predicting speech id 9) has speech-block logits [1, 0, 2] and position 3 (predicting
    text id 5) has logit 3 on id 5."""
    z = torch.zeros(1, len(SEQ), V)
    z[0, 1, S0:] = torch.tensor([1.0, 0.0, 2.0])
    z[0, 3, 5] = 3.0
    return z


def ids(*rows: list[int]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long)


# Hand values for SEQ and hand_logits(), eps = 0.1.
CE_SPEECH = (math.log(10) + (math.log(8 + E + E**2) - 2) + math.log(10)) / 3  # targets 7, 9, <speech_end>
CE_TEXT = ((math.log(9 + E**3) - 3) + math.log(10)) / 2  # targets 5, <text_end>
A, B_ = 0.1 / 3, 0.9 + 0.1 / 3  # q' off the label, on the label
LSE = math.log(E + 1 + E**2)  # log-sum-exp of [1, 0, 2]
KL_POS0 = B_ * math.log(B_ * 3) + 2 * A * math.log(A * 3)  # label 0, p uniform
KL_POS1 = A * (math.log(A) - (1 - LSE)) + A * (math.log(A) - (0 - LSE)) + B_ * (math.log(B_) - (2 - LSE))
KL_SPEECH = (KL_POS0 + KL_POS1) / 2


# ---------------------------------------------------------------------------------------------------------------
# Targets and kinds


def test_targets_and_kinds_with_bos_on_padded_batch():
    targets, kinds = next_token_targets(ids(SEQ, [1, 8, 2, 6, 3, 0, 0]), LAYOUT)
    assert targets.tolist() == [[7, 9, 2, 5, 3, -100, -100], [8, 2, 6, 3, -100, -100, -100]]
    s, t, i = KIND_SPEECH, KIND_TEXT, KIND_IGNORE
    assert kinds.tolist() == [[s, s, s, t, t, i, i], [s, s, t, t, i, i, i]]


def test_targets_and_kinds_without_bos_first_speech_token_has_no_predictor():
    targets, kinds = next_token_targets(ids([7, 9, 2, 5, 3, 0], [8, 2, 6, 6, 3, 0]), LAYOUT)
    assert targets.tolist() == [[9, 2, 5, 3, -100, -100], [2, 6, 6, 3, -100, -100]]
    s, t, i = KIND_SPEECH, KIND_TEXT, KIND_IGNORE
    assert kinds.tolist() == [[s, s, t, t, i, i], [s, t, t, t, i, i]]


def test_last_position_is_ignored_without_padding():
    targets, kinds = next_token_targets(ids([1, 7, 2, 5, 3]), LAYOUT)
    assert targets[0, -1].item() == IGNORE_INDEX and kinds[0, -1].item() == KIND_IGNORE


# ---------------------------------------------------------------------------------------------------------------
# Hand-computed values


def test_lm_ce_sld_hand_values():
    x, z = ids(SEQ), hand_logits()
    lm, st = sld_loss(z, x, LAYOUT, SLDLossConfig(kind="lm"))
    assert lm.item() == pytest.approx(CE_TEXT, rel=1e-5)
    assert st["ce_text"] == pytest.approx(CE_TEXT, rel=1e-5)
    assert st["ce_speech"] == pytest.approx(CE_SPEECH, rel=1e-5)
    assert (st["n_text"], st["n_speech"]) == (2.0, 3.0)
    # Position 3 predicts id 5 (logit 3): right; position 4 has all-zero logits, argmax 0 != <text_end>: wrong.
    assert st["acc_text"] == pytest.approx(0.5)
    assert "kl_speech" not in st

    ce, _ = sld_loss(z, x, LAYOUT, SLDLossConfig(kind="ce", speech_weight=0.5))
    assert ce.item() == pytest.approx(CE_TEXT + 0.5 * CE_SPEECH, rel=1e-5)

    sld, st = sld_loss(z, x, LAYOUT, SLDLossConfig(kind="sld", alpha=2.0, eps=0.1))
    assert st["kl_speech"] == pytest.approx(KL_SPEECH, rel=1e-5)
    assert sld.item() == pytest.approx(CE_TEXT + CE_SPEECH + 2.0 * KL_SPEECH, rel=1e-5)


# Cross-entropy against the uniform distribution on the text classes (ids 5, 6 and <text_end> = 3): position 3 has
# log p = z - log(9 + e^3) with z = 3 on id 5 only, position 4 has log p = -log 10 everywhere.
TEXT_UNIFORM = ((math.log(9 + E**3) - 1) + math.log(10)) / 2


@pytest.mark.parametrize("kind", ["lm", "ce", "sld"])
def test_text_label_smoothing_hand_values(kind: str):
    x, z = ids(SEQ), hand_logits()
    plain, _ = sld_loss(z, x, LAYOUT, SLDLossConfig(kind=kind))
    smoothed, st = sld_loss(z, x, LAYOUT, SLDLossConfig(kind=kind, text_eps=0.2))
    # Only the text term changes; the reported ce_text stays the plain cross-entropy.
    expected = plain.item() - CE_TEXT + 0.8 * CE_TEXT + 0.2 * TEXT_UNIFORM
    assert smoothed.item() == pytest.approx(expected, rel=1e-5)
    assert st["ce_text"] == pytest.approx(CE_TEXT, rel=1e-5)


def test_text_label_smoothing_gives_no_gradient_to_speech_columns_at_text_positions():
    # The smoothing mass goes to the text classes only: with kind lm, the loss' gradient at a text position is
    # p - q, so every non-text column gets exactly p (the same as without smoothing).
    x = ids(SEQ)
    grads = []
    for text_eps in (0.0, 0.3):
        z = hand_logits().requires_grad_(True)
        sld_loss(z, x, LAYOUT, SLDLossConfig(kind="lm", text_eps=text_eps))[0].backward()
        grads.append(z.grad[0, 3:5])
    speech_cols = slice(S0, V)
    torch.testing.assert_close(grads[0][:, speech_cols], grads[1][:, speech_cols])
    assert not torch.allclose(grads[0][:, 5:7], grads[1][:, 5:7])


def test_sld_kl_with_temperature():
    # tau = 2: p = softmax(z / 2) and the KL is scaled by tau^2 = 4. Position 0 stays uniform.
    lse = math.log(math.exp(0.5) + 1 + E)
    kl1 = A * (math.log(A) - (0.5 - lse)) + A * (math.log(A) - (0 - lse)) + B_ * (math.log(B_) - (1 - lse))
    _, st = sld_loss(hand_logits(), ids(SEQ), LAYOUT, SLDLossConfig(tau=2.0))
    assert st["kl_speech"] == pytest.approx(4 * (KL_POS0 + kl1) / 2, rel=1e-5)


def test_sld_kl_with_eps_zero_is_ce_on_speech_block():
    # q' one-hot: KL = -log p(label); 0 * log 0 terms are 0, not NaN.
    _, st = sld_loss(hand_logits(), ids(SEQ), LAYOUT, SLDLossConfig(eps=0.0))
    assert st["kl_speech"] == pytest.approx((math.log(3) + (LSE - 2)) / 2, rel=1e-5)


def test_release_compat_hand_value():
    # Target softmax(q') over K; every target position (5 of them) takes part, labels 0, 2, 0, 0, 0.
    den = math.exp(B_) + 2 * math.exp(A)
    rt, ro = math.exp(B_) / den, math.exp(A) / den
    kl_uniform = rt * math.log(3 * rt) + 2 * ro * math.log(3 * ro)  # positions 0, 2, 3, 4: zero speech logits
    kl1 = ro * (math.log(ro) - (1 - LSE)) + ro * (math.log(ro) - (0 - LSE)) + rt * (math.log(rt) - (2 - LSE))
    cfg = SLDLossConfig(alpha=0.008, release_compat=True)
    loss, st = sld_loss(hand_logits(), ids(SEQ), LAYOUT, cfg)
    expected_kl = (4 * kl_uniform + kl1) / 1  # batchmean: divided by B = 1
    assert st["kl_speech"] == pytest.approx(expected_kl, rel=1e-5)
    assert loss.item() == pytest.approx(CE_TEXT + CE_SPEECH + 0.008 * expected_kl, rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Properties


def random_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = ids([1, 7, 8, 9, 7, 2, 5, 6, 3, 0], [1, 9, 9, 2, 6, 3, 0, 0, 0, 0], [8, 7, 2, 5, 5, 6, 3, 0, 0, 0])
    return torch.randn(3, 10, V, generator=g), x


def loss_and_grad(z: torch.Tensor, x: torch.Tensor, cfg: SLDLossConfig) -> tuple[torch.Tensor, torch.Tensor]:
    z = z.clone().requires_grad_(True)
    loss, _ = sld_loss(z, x, LAYOUT, cfg)
    loss.backward()
    return loss.detach(), z.grad


def test_sld_with_alpha_zero_equals_ce():
    z, x = random_batch()
    l1, g1 = loss_and_grad(z, x, SLDLossConfig(kind="sld", alpha=0.0, speech_weight=0.7))
    l2, g2 = loss_and_grad(z, x, SLDLossConfig(kind="ce", speech_weight=0.7))
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(g1, g2)


def test_ce_with_speech_weight_zero_equals_lm():
    z, x = random_batch()
    l1, g1 = loss_and_grad(z, x, SLDLossConfig(kind="ce", speech_weight=0.0))
    l2, g2 = loss_and_grad(z, x, SLDLossConfig(kind="lm"))
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("release_compat", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_kl_target_sums_to_one(eps: float, release_compat: bool):
    q = kl_target(torch.tensor([0, 2, 1]), K, eps, tau=1.5, release_compat=release_compat)
    assert q.shape == (3, K)
    torch.testing.assert_close(q.sum(-1), torch.ones(3))


def test_kl_target_values():
    q = kl_target(torch.tensor([1]), K, 0.1, tau=1.0, release_compat=False)
    torch.testing.assert_close(q, torch.tensor([[A, B_, A]]))
    # Release: a softmax over the K probabilities q'.
    r = kl_target(torch.tensor([1]), K, 0.1, tau=1.0, release_compat=True)
    den = math.exp(A) + math.exp(B_) + math.exp(A)
    torch.testing.assert_close(r, torch.tensor([[math.exp(A) / den, math.exp(B_) / den, math.exp(A) / den]]))
    r2 = kl_target(torch.tensor([1]), K, 0.1, tau=2.0, release_compat=True)
    torch.testing.assert_close(r2, torch.softmax(torch.tensor([[A, B_, A]]) / 2, -1))


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_kl_is_zero_when_p_equals_q(tau: float):
    z, x = random_batch()
    targets, kinds = next_token_targets(x, LAYOUT)
    for b, t in zip(*torch.nonzero((kinds == KIND_SPEECH) & (targets >= S0), as_tuple=True), strict=True):
        q = kl_target(targets[b, t].view(1) - S0, K, 0.1, tau, release_compat=False)[0]
        z[b, t, S0:] = tau * torch.log(q) + 5.0  # a constant shift leaves the softmax unchanged
    kl, n = speech_kl(z, targets, kinds, LAYOUT, SLDLossConfig(tau=tau))
    assert n == 7
    assert kl.item() == pytest.approx(0.0, abs=1e-6)


def test_release_compat_divides_by_batch_size():
    z = hand_logits()
    x = ids(SEQ)
    cfg = SLDLossConfig(release_compat=True)
    _, one = sld_loss(z, x, LAYOUT, cfg)
    # Add a sequence of pads: it has no target, so the sum is unchanged and only B goes from 1 to 2.
    z2 = torch.cat([z, torch.randn(1, len(SEQ), V)])
    _, two = sld_loss(z2, ids(SEQ, [0] * len(SEQ)), LAYOUT, cfg)
    assert two["kl_speech"] == pytest.approx(one["kl_speech"] / 2, rel=1e-6)


@pytest.mark.parametrize("release_compat", [False, True])
def test_kl_gradient_reaches_only_the_speech_block(release_compat: bool):
    z, x = random_batch()
    _, g_sld = loss_and_grad(z, x, SLDLossConfig(kind="sld", release_compat=release_compat))
    _, g_ce = loss_and_grad(z, x, SLDLossConfig(kind="ce"))
    g_kl = g_sld - g_ce
    torch.testing.assert_close(g_kl[..., :S0], torch.zeros_like(g_kl[..., :S0]), atol=1e-6, rtol=0)
    assert g_kl[..., S0:].abs().sum() > 0
    targets, kinds = next_token_targets(x, LAYOUT)
    text_rows = g_kl[kinds == KIND_TEXT][:, S0:].abs().sum()
    # Only the release puts text positions into the KL (label clamped to speech class 0).
    assert (text_rows > 0) if release_compat else (text_rows == 0)


@pytest.mark.parametrize(
    "cfg",
    [SLDLossConfig(kind="lm"), SLDLossConfig(kind="ce"), SLDLossConfig(), SLDLossConfig(release_compat=True)],
    ids=["lm", "ce", "sld", "release"],
)
def test_no_nan_without_targets_of_a_kind(cfg: SLDLossConfig):
    # Row 0: text only (no speech target); row 1: only pads. Then a batch with no target at all.
    for x in (ids([2, 5, 6, 3, 0], [0, 0, 0, 0, 0]), ids([0, 0, 0])):
        z = torch.randn(*x.shape, V, requires_grad=True)
        loss, st = sld_loss(z, x, LAYOUT, cfg)
        loss.backward()
        assert math.isfinite(loss.item()) and all(math.isfinite(v) for v in st.values())
        assert torch.isfinite(z.grad).all()
        assert st["n_speech"] == 0.0 and st["ce_speech"] == 0.0


def test_extra_vocabulary_columns_are_allowed_and_fewer_rejected():
    x = ids(SEQ)
    loss, _ = sld_loss(torch.zeros(1, len(SEQ), V + 6), x, LAYOUT, SLDLossConfig(kind="lm"))
    assert loss.item() == pytest.approx((math.log(16) + math.log(16)) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="fewer than the vocabulary size"):
        sld_loss(torch.zeros(1, len(SEQ), V - 1), x, LAYOUT, SLDLossConfig())
    with pytest.raises(ValueError, match="matching input_ids"):
        sld_loss(torch.zeros(1, 3, V), x, LAYOUT, SLDLossConfig())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "ctc"}, "loss kind"),
        ({"speech_weight": -1.0}, "speech_weight"),
        ({"alpha": float("nan")}, "alpha"),
        ({"eps": 1.5}, "eps"),
        ({"tau": 0.0}, "tau"),
        ({"kind": "ce", "release_compat": True}, "release_compat"),
        ({"text_eps": 1.0}, "text_eps"),
        ({"text_eps": -0.1}, "text_eps"),
    ],
)
def test_config_validation(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        SLDLossConfig(**kwargs)


@pytest.mark.parametrize("eps, tau", [(0.0, 1.0), (0.1, 1.0), (0.1, 2.0), (1.0, 1.0)])
def test_speech_kl_equals_the_dense_kl_in_value_and_gradient(eps: float, tau: float):
    # speech_kl never builds q'; the definition, KL(q' || p) summed over a dense [N, K] target, must agree with it.
    z, x = random_batch()
    targets, kinds = next_token_targets(x, LAYOUT)
    z1 = z.clone().requires_grad_(True)
    kl, n = speech_kl(z1, targets, kinds, LAYOUT, SLDLossConfig(eps=eps, tau=tau))
    kl.backward()
    z2 = z.clone().requires_grad_(True)
    rows = (kinds == KIND_SPEECH) & (targets >= S0)
    log_p = torch.log_softmax(z2[rows][:, S0:] / tau, dim=-1)
    q = kl_target(targets[rows] - S0, K, eps, tau, release_compat=False)
    dense = _kl_rows(q, log_p).sum() * tau**2 / n
    dense.backward()
    torch.testing.assert_close(kl, dense)
    torch.testing.assert_close(z1.grad, z2.grad)


@pytest.mark.parametrize("kind, text_eps", [("lm", 0.0), ("ce", 0.0), ("sld", 0.0), ("sld", 0.1)])
def test_the_loss_traces_as_one_graph(kind: str, text_eps: float):
    """Under `compile: true` the loss compiles with the model: a Python int or a selection of data-dependent size
    would split it into several graphs (the earlier version had 8 for sld), and the pieces cannot fuse."""
    z, x = random_batch()
    explanation = torch._dynamo.explain(sld_loss)(z, x, LAYOUT, SLDLossConfig(kind=kind, text_eps=text_eps))
    assert explanation.graph_count == 1, explanation.break_reasons


def release_reference_kl(z: torch.Tensor, x: torch.Tensor, eps: float = 0.1, tau: float = 1.0) -> float:
    """The release's KL written position by position, as its batches are: every sequence padded to its block, so
    each position with a real input token has a label, the one after <text_end> being padding (no class: q' = eps/K
    everywhere). Labels that are not speech tokens are clamped to speech class 0. Summed, divided by B, times tau^2."""
    total = 0.0
    batch, length = x.shape
    for b in range(batch):
        for t in range(length):
            if x[b, t] == 0:  # a pad input: no row
                continue
            label = int(x[b, t + 1]) if t + 1 < length else 0
            q = torch.full((K,), eps / K)
            if label != 0:  # padding has no class
                q[label - S0 if label >= S0 else 0] += 1 - eps
            r = torch.softmax(q / tau, dim=-1)
            log_p = torch.log_softmax(z[b, t, S0:] / tau, dim=-1)
            total += float((r * (torch.log(r) - log_p)).sum())
    return total * tau**2 / batch


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_release_compat_matches_the_release_position_for_position(tau: float):
    # Including the row whose input is <text_end>: the release adds its KL (against a uniform target), also in the
    # longest sequence of a batch, where <text_end> is the last position and nothing is padded after it.
    z, x = random_batch(3)
    x = torch.cat([x, ids([1, 9, 7, 8, 2, 6, 5, 5, 6, 3])])
    z = torch.cat([z, torch.randn(1, 10, V, generator=torch.Generator().manual_seed(9))])
    _, st = sld_loss(z, x, LAYOUT, SLDLossConfig(release_compat=True, tau=tau))
    assert st["kl_speech"] == pytest.approx(release_reference_kl(z, x, tau=tau), rel=1e-5)
    # Without the <text_end> rows the sum would be short by exactly their KL against the uniform target / B.
    ends = x == 3
    log_p = torch.log_softmax(z[ends][:, S0:] / tau, dim=-1)
    end_rows = float((-math.log(K) - log_p.mean(-1)).sum()) * tau**2 / x.shape[0]
    assert end_rows > 0.01
