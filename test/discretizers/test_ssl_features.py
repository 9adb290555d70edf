import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from toolkit.models.ssl_features import SSLFeatureExtractor, SSLFeatureSpec, receptive_field

os.environ["HF_HUB_OFFLINE"] = "1"

# A small CNN with the real hop (5 * 8 * 8 = 320 samples, 50 frames/s) and a 325-sample receptive field.
CONV = {"conv_dim": (32, 32, 32), "conv_stride": (5, 8, 8), "conv_kernel": (10, 8, 8)}
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    **CONV,
}
GROUP = {"feat_extract_norm": "group", "do_stable_layer_norm": False}  # Base models
STABLE = {"feat_extract_norm": "layer", "do_stable_layer_norm": True}  # Large models
KINDS = {
    "hubert_group": ("Hubert", GROUP),
    "hubert_stable": ("Hubert", STABLE),
    "wav2vec2_stable": ("Wav2Vec2", STABLE),
    "wavlm_group": ("WavLM", {**GROUP, "num_buckets": 16, "max_bucket_distance": 40}),
    "wavlm_stable": ("WavLM", {**STABLE, "num_buckets": 16, "max_bucket_distance": 40}),
}


def make_tiny_model(folder, kind: str = "hubert_stable", seed: int = 0, **overrides):
    """A random tiny model saved with save_pretrained into `folder`."""
    import transformers

    family, extra = KINDS[kind]
    config = getattr(transformers, f"{family}Config")(**{**TINY, **extra, **overrides})
    torch.manual_seed(seed)
    getattr(transformers, f"{family}Model")(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl_models")
    return {kind: make_tiny_model(root / kind, kind) for kind in KINDS}


def noise(samples: int, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(samples, generator=torch.Generator().manual_seed(seed))


def extractor(folder: str, layer: int, **options) -> SSLFeatureExtractor:
    return SSLFeatureExtractor(SSLFeatureSpec(folder, layer, **options))


def test_receptive_field_of_the_real_cnn():
    kernels, strides = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)  # HuBERT / WavLM / wav2vec 2.0
    assert receptive_field(kernels, strides) == (400, 320)
    assert receptive_field(CONV["conv_kernel"], CONV["conv_stride"]) == (325, 320)


@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_l_is_hidden_states_l_of_the_full_model(models, kind):
    from transformers import AutoModel

    full = AutoModel.from_pretrained(models[kind]).eval()
    waves = noise(16000, 1), noise(16000, 2)
    with torch.inference_mode():
        hidden = full(torch.stack(waves), output_hidden_states=True).hidden_states
    assert len(hidden) == 4
    for layer in range(4):
        ext = extractor(models[kind], layer, normalize=False)
        assert len(ext.model.encoder.layers) == max(1, layer)  # the layers after the selected one are dropped
        for i, feats in enumerate(ext.extract(list(waves))):
            assert feats.shape == (49, 32)
            torch.testing.assert_close(feats, hidden[layer][i], rtol=1e-5, atol=1e-5)


def test_out_of_range_layer_names_the_model_and_its_layers(models):
    for layer in (4, -1):
        with pytest.raises(
            ValueError, match=rf"layer {layer} is out of range for .*hubert_group.*3 transformer layers"
        ):
            extractor(models["hubert_group"], layer)


@pytest.mark.parametrize("kind", ["hubert_group", "wavlm_group", "hubert_stable"])
def test_padded_batch_equals_one_at_a_time(models, kind):
    ext = extractor(models[kind], 2)
    assert ext.use_attention_mask == (kind == "hubert_stable")
    waves = [noise(n, seed) for seed, n in enumerate((16000, 15000, 9000, 12345, 3000, 325, 324))]
    batch = ext.extract(waves)
    assert [f.shape[0] for f in batch] == [49, 46, 28, 38, 9, 1, 0]
    for wave, feats in zip(waves, batch, strict=True):
        torch.testing.assert_close(feats, ext.extract([wave])[0], rtol=1e-4, atol=1e-5)
    # a batch budget smaller than the utterances: one per forward pass, same features
    small = dataclasses.replace(ext.spec, batch_seconds=0.5)
    ext.spec = small
    for a, b in zip(batch, ext.extract(waves), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert ext.extract([]) == []


@pytest.mark.parametrize(("kind", "tolerance"), [("hubert_stable", 0.03), ("hubert_group", 0.04)])
def test_chunked_long_utterance_matches_the_whole(models, kind, tolerance):
    whole_ext = extractor(models[kind], 3, chunk_seconds=None)
    chunk_ext = extractor(models[kind], 3, chunk_seconds=1.0, chunk_context_seconds=0.5)
    wave = noise(16000 * 5 + 123)
    pieces = chunk_ext.pieces(wave.shape[0])
    assert len(pieces) == 5 and all(start % 320 == 0 for start, *_ in pieces)
    whole, chunked = whole_ext.extract([wave])[0], chunk_ext.extract([wave])[0]
    assert chunked.shape == whole.shape == (250, 32)
    relative = (chunked - whole).norm(dim=1) / whole.norm(dim=1)
    # Every frame sees the same samples through the CNN; the attention span differs (and, for the group norm, the
    # CNN's statistics). A random model attends almost uniformly, so its frames move by ~1-2%.
    assert float((relative < tolerance).float().mean()) > 0.9 and float(relative.max()) < 2 * tolerance
    # short utterances are not chunked
    assert len(chunk_ext.pieces(16000)) == 1


def test_pieces_tile_the_frames(models):
    ext = extractor(models["hubert_stable"], 1, chunk_seconds=0.4, chunk_context_seconds=0.1)
    for samples in (6401, 16000, 33333):
        total = int(ext.output_lengths([samples])[0])
        pieces = ext.pieces(samples)
        kept = [(start // 320 + first, start // 320 + end) for start, _, first, end in pieces]
        assert kept[0][0] == 0 and kept[-1][1] == total
        assert all(a[1] == b[0] for a, b in zip(kept, kept[1:], strict=False))
        for start, stop, _, end in pieces:  # each piece gives at least the frames it keeps
            assert int(ext.output_lengths([stop - start])[0]) >= end and stop <= samples


def test_normalisation_follows_the_preprocessor_config_unless_forced(tmp_path):
    folder = make_tiny_model(tmp_path / "m", "hubert_group")
    assert extractor(folder, 1).normalize is False  # no preprocessor config: group norm CNN -> raw audio
    assert extractor(make_tiny_model(tmp_path / "s", "hubert_stable"), 1).normalize is True
    (tmp_path / "m" / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
    ext = extractor(folder, 1)
    assert ext.normalize is True and extractor(folder, 1, normalize=False).normalize is False
    wave = noise(8000) * 3 + 0.5
    torch.testing.assert_close(ext.prepare(wave).mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(ext.prepare(wave).std(unbiased=False), torch.tensor(1.0), atol=1e-4, rtol=0)
    # normalising a piece would differ from normalising the whole: it is done once, before chunking
    scaled = extractor(folder, 1, normalize=True).extract([wave, wave * 7])
    torch.testing.assert_close(scaled[0], scaled[1], rtol=1e-4, atol=1e-4)


def test_missing_or_unusable_model_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model folder \./no/such/model does not exist"):
        extractor("./no/such/model", 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty has no config\.json"):
        extractor(str(tmp_path / "empty"), 1)
    with pytest.raises(FileNotFoundError, match="model nobody/not-a-model: not a local folder"):
        extractor("nobody/not-a-model", 1)
    with pytest.raises(ValueError, match="1-D"):
        extractor(make_tiny_model(tmp_path / "m"), 1).extract([np.zeros((2, 800), np.float32)])
