"""SUPERB downstream heads: the layer-weighted sum, the frozen upstream on padded batches, IC/ER and SF (CTC) heads."""

from __future__ import annotations

import math
import os

import pytest
import torch

from toolkit.config import ConfigError
from toolkit.models.downstream import (
    SlotFillingConfig,
    SlotFillingCTC,
    Upstream,
    UtteranceClassifier,
    UtteranceClassifierConfig,
    WeightedLayerSum,
    all_heads_correct,
    classification_loss,
    ctc_loss,
    greedy_decode,
    masked_mean,
    predict_heads,
    utterance_accuracy,
)
from toolkit.models.labels import IntentLabels, SlotVocab

os.environ["HF_HUB_OFFLINE"] = "1"

# hidden 32, 2 transformer layers, a 3-layer CNN with the real hop (320 samples, 50 frames/s)
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "conv_dim": (16, 16, 16),
    "conv_stride": (5, 8, 8),
    "conv_kernel": (10, 8, 8),
}
KINDS = {
    "group": ("Hubert", {"feat_extract_norm": "group", "do_stable_layer_norm": False}),  # Base models
    "layer": ("Wav2Vec2", {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),  # Large models
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import transformers

    root = tmp_path_factory.mktemp("downstream_models")
    folders = {}
    for kind, (family, extra) in KINDS.items():
        config = getattr(transformers, f"{family}Config")(**TINY, **extra)
        torch.manual_seed(0)
        getattr(transformers, f"{family}Model")(config).save_pretrained(root / kind)
        folders[kind] = str(root / kind)
    return folders


@pytest.fixture(scope="module")
def upstream(models):
    return Upstream(models["group"])


def noise(samples: int, seed: int) -> torch.Tensor:
    return 0.1 * torch.randn(samples, generator=torch.Generator().manual_seed(seed))


WAVES = [noise(n, seed) for seed, n in enumerate((16000, 12000, 9600, 8000))]  # 49, 37, 29, 24 frames


# ---- weighted layer sum ----


def test_layer_weights_start_uniform_and_are_a_softmax():
    wls = WeightedLayerSum(4)
    torch.testing.assert_close(wls.layer_weights(), torch.full((4,), 0.25))
    with torch.no_grad():
        wls.weights.copy_(torch.tensor([3.0, -1.0, 0.5, 2.0]))
    weights = wls.layer_weights()
    assert weights.sum().item() == pytest.approx(1.0)
    assert (weights > 0).all()


def test_weighted_sum_equals_the_hand_computation():
    layers = torch.arange(3 * 2 * 2 * 4, dtype=torch.float).reshape(3, 2, 2, 4) ** 1.5  # [L, B, T, D]
    wls = WeightedLayerSum(3)
    with torch.no_grad():
        wls.weights.copy_(torch.tensor([0.0, math.log(2.0), math.log(5.0)]))  # softmax: 1/8, 2/8, 5/8
    expected = (1 * layers[0] + 2 * layers[1] + 5 * layers[2]) / 8
    torch.testing.assert_close(wls(layers), expected)
    torch.testing.assert_close(wls(list(layers)), expected)  # a list of layers works too

    normed = WeightedLayerSum(3, layer_norm=True)
    with torch.no_grad():
        normed.weights.copy_(wls.weights)
    mean = layers.mean(-1, keepdim=True)
    var = layers.var(-1, unbiased=False, keepdim=True)
    by_hand = (layers - mean) / torch.sqrt(var + 1e-5)  # no learnable scale or bias
    torch.testing.assert_close(normed(layers), (1 * by_hand[0] + 2 * by_hand[1] + 5 * by_hand[2]) / 8)

    with pytest.raises(ValueError, match="expected 3 layers"):
        wls(layers[:2])


# ---- upstream ----


@pytest.mark.parametrize("kind", list(KINDS))
def test_upstream_gives_every_hidden_state_and_is_exact_under_padding(models, kind):
    from transformers import AutoModel

    assert Upstream(models[kind]).normalize == (kind == "layer")  # no preprocessor config: by the CNN's norm
    up = Upstream(models[kind], normalize=False)
    assert (up.num_layers, up.dim, up.frame_rate) == (3, 32, 50.0)
    hidden, mask = up(WAVES)
    assert hidden.shape == (3, 4, 49, 32) and not hidden.requires_grad
    assert mask.sum(1).tolist() == [49, 37, 29, 24]

    full = AutoModel.from_pretrained(models[kind]).eval()
    with torch.no_grad():
        reference = full(WAVES[0].unsqueeze(0), output_hidden_states=True).hidden_states
    for layer in range(3):
        torch.testing.assert_close(hidden[layer, 0], reference[layer][0], rtol=1e-4, atol=1e-4)

    for i, wave in enumerate(WAVES):
        alone, alone_mask = up([wave])
        n = int(alone_mask.sum())
        torch.testing.assert_close(hidden[:, i, :n], alone[:, 0], rtol=1e-4, atol=1e-4)
        assert not hidden[:, i, n:].any()  # padded frames are zero


def test_a_waveform_shorter_than_a_frame_is_named(upstream):
    with pytest.raises(ValueError, match="utt-b: 200 samples is shorter than one frame"):
        upstream([noise(8000, 0), noise(200, 1)], ids=["utt-a", "utt-b"])


def test_the_upstream_stays_frozen_while_the_head_learns(upstream):
    head = UtteranceClassifier(upstream.num_layers, upstream.dim, {"intent": 3}, UtteranceClassifierConfig(16))
    head.train()
    upstream.train()  # a recipe may call train() on everything: the SSL model must stay in eval mode
    assert not upstream.model.training
    assert not any(p.requires_grad for p in upstream.parameters())
    before_up = {k: v.clone() for k, v in upstream.state_dict().items()}
    before_head = {k: v.clone() for k, v in head.state_dict().items()}
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(2):
        hidden, mask = upstream(WAVES)
        loss = classification_loss(head(hidden, mask), torch.tensor([[0], [1], [2], [0]]))
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in upstream.parameters())
        assert all(p.grad is not None for p in head.parameters())
        optimizer.step()
    for k, v in upstream.state_dict().items():
        assert torch.equal(v, before_up[k]), k
    assert all(not torch.equal(v, before_head[k]) for k, v in head.state_dict().items())


# ---- utterance classification ----


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [99.0, -99.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(masked_mean(x, mask), torch.tensor([[2.0, 3.0], [7.0, 8.0]]))


def test_a_padded_batch_gives_the_logits_of_one_at_a_time(upstream):
    torch.manual_seed(0)
    head = UtteranceClassifier(upstream.num_layers, upstream.dim, {"action": 2, "object": 3}).eval()
    hidden, mask = upstream(WAVES)
    batch = head(hidden, mask)
    assert list(batch) == ["action", "object"] and batch["object"].shape == (4, 3)
    for i, wave in enumerate(WAVES):
        alone = head(*upstream([wave]))
        for name in batch:
            torch.testing.assert_close(batch[name][i], alone[name][0], rtol=1e-4, atol=1e-5)


def test_an_utterance_is_right_only_if_every_head_is_right():
    logits = {
        "action": torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]]),
        "object": torch.tensor([[0.0, 0.0, 5.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]),
    }
    predicted = predict_heads(logits)
    assert predicted.tolist() == [[0, 2], [1, 0], [0, 1], [1, 2]]
    targets = torch.tensor([[0, 2], [1, 1], [1, 1], [1, 2]])  # utt 1 misses the object, utt 2 the action
    assert all_heads_correct(predicted, targets).tolist() == [True, False, False, True]
    assert utterance_accuracy(predicted, targets) == 0.5
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits["action"], targets[:, 0]) + ce(logits["object"], targets[:, 1])
    torch.testing.assert_close(classification_loss(logits, targets), expected)


def test_intent_labels_per_field_and_whole():
    labels = ["activate|lights|kitchen", "deactivate|music|none", "activate|music|kitchen"]
    fsc = IntentLabels.from_labels(labels, ["action", "object", "location"])
    assert fsc.num_classes == {"action": 2, "object": 2, "location": 2}
    assert fsc.encode("deactivate|lights|kitchen") == [1, 0, 0]
    assert fsc.decode([1, 0, 0]) == "deactivate|lights|kitchen"
    assert fsc.encode_batch(labels).tolist() == [[0, 0, 0], [1, 1, 1], [0, 1, 0]]
    with pytest.raises(ValueError, match="utt7: intent 'activate|lights' has 2 '|' fields, expected 3"):
        fsc.encode("activate|lights", where="utt7")
    with pytest.raises(ValueError, match="utt8: location 'bedroom' of intent .* is not among the 2 known"):
        fsc.encode_batch(["activate|lights|bedroom"], ids=["utt8"])

    whole = IntentLabels.from_labels(labels + ["set_alarm", "chat"])  # the embedded corpus mixes label shapes
    assert whole.num_classes == {"intent": 5}
    assert whole.decode(whole.encode("set_alarm")) == "set_alarm"
    assert whole.decode(whole.encode("activate | lights|kitchen")) == "activate|lights|kitchen"


def test_head_configs_are_checked():
    assert UtteranceClassifierConfig.from_dict({"projection_dim": None}).projection_dim is None
    with pytest.raises(ConfigError, match="downstream: unknown key 'hidden'"):
        SlotFillingConfig.from_dict({"hidden": 8})
    with pytest.raises(ConfigError, match="dropout must be in"):
        SlotFillingConfig.from_dict({"dropout": 1.0})


# ---- slot filling ----

SLOT_LINES = [
    "set an alarm for B-time seven thirty E-time",
    "play B-artist abba E-artist B-album gold E-album",
    "turn on the lights",
]


def test_slot_vocab_round_trip_and_token_layout(tmp_path):
    vocab = SlotVocab.from_lines(SLOT_LINES)
    assert vocab.tokens[:3] == ("<blank>", "<unk>", "<space>")
    assert vocab.tokens[-6:] == ("B-album", "B-artist", "B-time", "E-album", "E-artist", "E-time")
    for line in SLOT_LINES + ["  play   B-artist abba E-artist  "]:
        assert vocab.decode(vocab.encode(line)) == " ".join(line.split())
    # tags are single tokens attached to their words; one space token between words (s3prl's layout)
    ids = vocab.encode("play B-artist abba E-artist B-album gold E-album")
    tokens = [vocab.tokens[i] for i in ids]
    assert tokens == (
        list("play") + ["<space>", "B-artist"] + list("abba") + ["E-artist", "<space>", "B-album"] + list("gold")
    ) + ["E-album"]
    assert vocab.encode("zap B-city x E-city") == [1, vocab.token_id("a"), vocab.token_id("p"), 2, 1, 1, 1]
    vocab.save(tmp_path / "vocab.txt")
    assert SlotVocab.load(tmp_path / "vocab.txt") == vocab
    (tmp_path / "bad.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt: a slot vocabulary starts with <blank>"):
        SlotVocab.load(tmp_path / "bad.txt")


def test_greedy_ctc_decoding_on_hand_built_log_probs():
    vocab = SlotVocab(("<blank>", "<unk>", "<space>", "a", "b", "B-x", "E-x"))
    # frames: B-x B-x a a _ a b E-x | second utterance: b _ b (then padding that would say "a")
    best = [[5, 5, 3, 3, 0, 3, 4, 6], [4, 0, 4, 3, 3, 3, 3, 3]]
    log_probs = torch.full((2, 8, 7), -10.0)
    for b, row in enumerate(best):
        for t, i in enumerate(row):
            log_probs[b, t, i] = -0.01
    mask = torch.tensor([[True] * 8, [True] * 3 + [False] * 5])
    decoded = greedy_decode(log_probs, mask)
    assert decoded == [[5, 3, 3, 4, 6], [4, 4]]
    assert [vocab.decode(d) for d in decoded] == ["B-x aab E-x", "bb"]


def _train(head, loss_fn, steps: int = 20, lr: float = 3e-2) -> tuple[float, float]:
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def test_a_few_steps_lower_the_ic_and_the_ctc_loss(upstream):
    torch.manual_seed(0)
    hidden, mask = upstream(WAVES)  # frozen: computed once

    labels = IntentLabels.from_labels(["on|lamp", "off|lamp", "on|fan", "off|fan"], ["action", "object"])
    targets = labels.encode_batch(["on|lamp", "off|lamp", "on|fan", "off|fan"])
    ic = UtteranceClassifier(upstream.num_layers, upstream.dim, labels.num_classes, UtteranceClassifierConfig(16))
    first, last = _train(ic, lambda: classification_loss(ic(hidden, mask), targets))
    assert last < 0.5 * first

    lines = ["turn on B-object lamp E-object", "off", "turn off the fan", "B-object fan E-object on"]
    vocab = SlotVocab.from_lines(lines)
    sf_targets = [vocab.encode(line) for line in lines]
    assert max(len(t) for t in sf_targets) < 24  # shorter than the shortest utterance's frames
    cfg = SlotFillingConfig(projection_dim=16, hidden_size=16, dropout=0.0)
    sf = SlotFillingCTC(upstream.num_layers, upstream.dim, vocab.size, cfg)
    log_probs = sf(hidden, mask)
    assert log_probs.shape == (4, 49, vocab.size)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(4, 49))
    first, last = _train(sf, lambda: ctc_loss(sf(hidden, mask), mask, sf_targets))
    assert last < 0.5 * first
    hyps = [vocab.decode(ids) for ids in greedy_decode(sf(hidden, mask), mask)]
    assert len(hyps) == 4 and all(isinstance(h, str) for h in hyps)


def test_the_sf_head_ignores_padding(upstream):
    torch.manual_seed(0)
    sf = SlotFillingCTC(upstream.num_layers, upstream.dim, 7, SlotFillingConfig(16, 8)).eval()
    hidden, mask = upstream(WAVES)
    batch = sf(hidden, mask)
    for i in (1, 3):
        alone_hidden, alone_mask = upstream([WAVES[i]])
        n = int(alone_mask.sum())
        torch.testing.assert_close(batch[i, :n], sf(alone_hidden, alone_mask)[0], rtol=1e-4, atol=1e-5)


def test_the_bilstm_equals_a_packed_bidirectional_lstm():
    """Per-utterance reversal gives exactly what packed sequences give, for utterances of mixed lengths."""
    from toolkit.models.downstream import reversal_index

    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert reversal_index(mask).tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0]]
    torch.manual_seed(0)
    cfg = SlotFillingConfig(projection_dim=None, hidden_size=3, num_layers=1, dropout=0.0)
    head = SlotFillingCTC(1, 4, 6, cfg).eval()
    reference = torch.nn.LSTM(4, 3, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name, param in head.forward_lstms[0].named_parameters():
            getattr(reference, name).copy_(param)
        for name, param in head.backward_lstms[0].named_parameters():
            getattr(reference, f"{name}_reverse").copy_(param)
    x = torch.randn(2, 5, 4)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, mask.sum(1), batch_first=True, enforce_sorted=False)
    expected, _ = torch.nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=5)
    expected = torch.nn.functional.log_softmax(head.output(expected), dim=-1)
    got = head(x.unsqueeze(0), mask)
    assert torch.allclose(got[mask], expected[mask], atol=1e-6)
