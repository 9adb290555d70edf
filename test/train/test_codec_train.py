import json
import os

import numpy as np
import pytest
import torch
import yaml

from toolkit.bin.train_codec import main as train_main
from toolkit.config import from_dict
from toolkit.discretizers.registry import fit_discretizer, load_discretizer
from toolkit.losses.codec import MelLoss, commitment_loss
from toolkit.models.codec import CodecModelConfig, build_codec, init_for_training
from toolkit.models.codec_quantizer import QuantizerConfig, ema_update, quantize
from toolkit.train import codec as ct

from conftest import build_data_dir

os.environ["HF_HUB_OFFLINE"] = "1"

# A codec small enough for a test: hop 16 at 16 kHz (1000 frames/s), 16 codes of 4 bits: 4 kbps per codebook.
TINY = {
    "model": {
        "num_filters": 2,
        "hidden_size": 8,
        "upsampling_ratios": [4, 4],
        "codebook_size": 16,
        "target_bandwidths": [4.0, 8.0],
        "num_lstm_layers": 1,
    },
    "loss": {"mel_scales": [64, 128], "n_mels": 8},
    "steps": 4,
    "batch_size": 2,
    "crop_seconds": 0.05,
    "log_every_steps": 1,
    "checkpoint_every_steps": 1,
    "dev_max_utts": 2,
    "optim": {"warmup_steps": 1},
}


def tiny_config(**changes) -> ct.CodecTrainConfig:
    return from_dict(ct.CodecTrainConfig, {**TINY, **changes})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("codec")
    train = build_data_dir(root, "train", num_utts=3, durations=[0.2, 0.03, 0.3])  # one shorter than a crop
    dev = build_data_dir(root, "dev", num_utts=2, durations=[0.1, 0.15])
    return train, dev


def test_mel_loss_is_zero_for_identical_inputs_and_positive_otherwise():
    loss = MelLoss(16000, [64, 128], 8)
    x = torch.randn(2, 1, 800) * 0.1
    assert loss(x, x.clone()).item() == 0.0
    assert loss(x, 0.5 * x).item() > 0.0
    assert loss(x, x + 0.01 * torch.randn_like(x)).item() < loss(x, torch.zeros_like(x) + 1e-3).item()


def test_commitment_loss_formula():
    residuals = [torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])]
    codewords = [torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 1.0]])]
    # codebook 0: (1 + 4) / 2 = 2.5; codebook 1: (9 + 1) / 2 = 5; mean 3.75
    assert commitment_loss(residuals, codewords).item() == pytest.approx(3.75)
    r = residuals[0].clone().requires_grad_()
    q = codewords[0].clone().requires_grad_()
    commitment_loss([r], [q]).backward()
    assert q.grad is None and torch.equal(r.grad, torch.tensor([[1.0, 2.0]]))  # the codeword is stop-gradient


def test_ema_update_moves_a_code_towards_its_vectors_and_replaces_dead_codes():
    class Codebook:
        embed = torch.tensor([[0.0, 0.0], [10.0, 10.0], [5.0, -5.0]])
        cluster_size = torch.tensor([1.0, 1.0, 0.01])
        embed_avg = embed.clone() * cluster_size[:, None]

    qcfg = QuantizerConfig(ema_decay=0.5, epsilon=1e-9, dead_code_threshold=0.1, reset_count=1.0)
    vectors = torch.tensor([[2.0, 2.0], [2.0, 2.0]])
    codes = torch.tensor([0, 0])
    replaced = ema_update(Codebook, vectors, codes, qcfg, torch.Generator().manual_seed(0))
    # code 0: count 0.5 * 1 + 0.5 * 2 = 1.5, sum 0.5 * 0 + 0.5 * 4 = 2 -> about (2/1.5) = 1.33, towards 2
    assert Codebook.embed[0].tolist() == pytest.approx([4 / 3, 4 / 3], rel=1e-3)
    assert Codebook.cluster_size[0].item() == pytest.approx(1.5)
    # code 1 unused: its count halves, it stays in place (above the threshold)
    assert Codebook.embed[1].tolist() == pytest.approx([10.0, 10.0], rel=1e-3)
    # code 2 was dead (0.005 < 0.1): replaced by a batch vector, with the reset count
    assert replaced == 1 and Codebook.embed[2].tolist() == [2.0, 2.0] and Codebook.cluster_size[2].item() == 1.0


@pytest.mark.parametrize("num_codebooks", [1, 2])
def test_quantize_sums_codewords_and_passes_the_gradient_once(num_codebooks):
    torch.manual_seed(0)
    model = build_codec(CodecModelConfig(**TINY["model"]))
    embeddings = torch.randn(2, 8, 5)
    quantize(model, embeddings, 2, QuantizerConfig(), False, torch.Generator().manual_seed(0), init=True)
    x = embeddings.clone().requires_grad_()
    quantized, _, codes, _ = quantize(model, x, num_codebooks, QuantizerConfig(), False)
    layers = model.quantizer.layers
    expected = sum(layers[c].codebook.embed[codes[c]] for c in range(num_codebooks))  # [B, T, D]
    assert torch.allclose(quantized, expected.permute(0, 2, 1), atol=1e-6)
    weights = torch.randn_like(quantized)
    (quantized * weights).sum().backward()
    # Straight-through: d quantized / d embeddings is the identity, whatever the number of codebooks.
    assert torch.allclose(x.grad, weights)


def test_init_for_training_keeps_the_signal_through_the_encoder():
    # The recipe's codec size: with PyTorch's default initialisation its encoder output hardly varies with the input.
    config = CodecModelConfig()
    x = torch.randn(1, 1, 16000)  # unit RMS, as the training loop feeds it
    spread = {}
    for name in ("default", "ours"):
        torch.manual_seed(0)
        model = build_codec(config).eval()
        if name == "ours":
            init_for_training(model)
        with torch.no_grad():
            spread[name] = model.encoder(x).std(dim=-1).mean().item()  # variation over time, per dimension
    assert spread["default"] < 0.05
    assert 0.2 < spread["ours"] < 5.0
    weight_norm = model.encoder.layers[0].conv.parametrizations.weight
    # Set through the parametrisation: magnitude g and direction v give back the new weight.
    assert torch.allclose(weight_norm.original0, weight_norm.original1.norm(dim=(1, 2), keepdim=True), rtol=1e-5)


def test_normalize_rms_matches_the_models_own_input_scaling():
    x = torch.randn(3, 1, 400) * torch.tensor([0.01, 0.3, 2.0])[:, None, None]
    normalized = ct.normalize_rms(x)
    assert torch.allclose(normalized.pow(2).mean(-1).sqrt(), torch.ones(3, 1), atol=1e-5)
    model = build_codec(CodecModelConfig(**TINY["model"])).eval()
    assert model.config.normalize
    with torch.no_grad():
        # encode() scales by the same RMS, so its scales are those of normalize_rms and its codes those of the
        # normalised input (the training loop feeds the encoder normalised crops).
        out = model.encode(x, bandwidth=4.0, return_dict=True)
        codes_of_normalized = model.quantizer.encode(model.encoder(normalized), bandwidth=4.0).transpose(0, 1)
    assert torch.allclose(out.audio_scales[0].view(-1), x.pow(2).mean(-1).sqrt().view(-1), rtol=1e-4)
    assert torch.equal(out.audio_codes[0], codes_of_normalized)


def test_bad_configs_are_clear_errors(corpus, tmp_path, capsys):
    train, dev = corpus
    config = tmp_path / "codec.yaml"
    config.write_text("model:\n  codebook_size: 100\n")
    argv = ["--config", str(config), "--train", str(train), "--valid", str(dev), "--out", str(tmp_path / "x")]
    assert train_main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(config) in err and "codebook_size must be a power of 2" in err
    config.write_text("steps: 3\nlearning_rate: 1\n")
    assert train_main(argv) == 1
    assert "unknown key 'learning_rate'" in capsys.readouterr().err
    config.write_text("model:\n  target_bandwidths: [0.25]\n")  # one codebook: 50 Hz x 10 bits = 0.5 kbps
    assert train_main(argv) == 1
    assert "0.25 kbps is below one codebook (0.5 kbps" in capsys.readouterr().err
    config.write_text(yaml.safe_dump(TINY))
    argv[3] = str(tmp_path / "missing")
    assert train_main(argv) == 1
    assert "missing (the training set) does not exist" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_train_save_load_encode_and_rerun(corpus, tmp_path, capsys):
    train, dev = corpus
    config = tmp_path / "codec.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    argv = ["--config", str(config), "--train", str(train), "--valid", str(dev), "--out", str(out), "--threads", "1"]
    assert train_main(argv) == 0
    assert "trained 4 steps" in capsys.readouterr().out
    rows = (out / "curves.csv").read_text().splitlines()
    assert len(rows) == 5 and all(np.isfinite(float(v)) for r in rows[1:] for v in r.split(","))
    dev_eval = json.loads((out / "dev_eval.json").read_text())
    assert set(dev_eval[-1]) == {"step", "4kbps", "8kbps"} and dev_eval[-1]["8kbps"]["codebooks"] == 2
    assert np.isfinite(dev_eval[-1]["4kbps"]["snr_db"]) and (out / "train.log").exists()

    from transformers import EncodecModel

    model = EncodecModel.from_pretrained(out / "model")
    assert model.quantizer.layers[0].codebook.embed.abs().sum() > 0  # learnt codebooks were saved
    codes = model.encode(torch.randn(1, 1, 320) * 0.1, bandwidth=8.0).audio_codes
    assert codes.shape == (1, 1, 2, 20)
    # the discretizer loads it like a hub model
    fit_discretizer("encodec", [], tmp_path / "disc", {"model": str(out / "model"), "bandwidth": 4.0})
    disc = load_discretizer(tmp_path / "disc")
    assert disc.num_units == 16 and disc.encode(np.zeros(160, np.float32) + 0.1, 16000).size == 10

    assert train_main(argv) == 0
    assert "already complete" in capsys.readouterr().out
    config.write_text(yaml.safe_dump({**TINY, "steps": 5}))
    assert train_main(argv) == 1
    assert "different configuration" in capsys.readouterr().err


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(corpus, tmp_path):
    train, dev = corpus
    cfg = tiny_config(dev_max_utts=1)
    whole = ct.train_codec(cfg, ct.CodecPaths(train, dev, tmp_path / "whole"))
    assert whole["steps"] == 4
    paths = ct.CodecPaths(train, dev, tmp_path / "split")
    assert ct.train_codec(cfg, paths, stop_after=2) == {"steps": 2, "stopped": True}
    # a kill after step 3's work but before its checkpoint is the same as resuming from step 2
    assert ct.train_codec(cfg, paths, stop_after=3)["steps"] == 3
    (tmp_path / "split" / "checkpoints" / "checkpoint.00000003.pt").unlink()
    ct.train_codec(cfg, paths)
    from transformers import EncodecModel

    a = EncodecModel.from_pretrained(tmp_path / "whole" / "model").state_dict()
    b = EncodecModel.from_pretrained(tmp_path / "split" / "model").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = (tmp_path / "split" / "curves.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]  # no duplicated rows after the resume
