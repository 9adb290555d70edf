import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from toolkit.bin.infer_downstream import main as infer_main
from toolkit.bin.score_slu import main as score_main
from toolkit.bin.train_downstream import main as train_main
from toolkit.datadir import load_data_dir, write_data_dir
from toolkit.fileio import read_table

from conftest import build_data_dir, tiny_bert

os.environ["HF_HUB_OFFLINE"] = "1"

INTENTS = ["activate|lights|kitchen", "deactivate|music|none"]
SLOTS = ["turn on the B-object light E-object", "play B-artist some band E-artist now"]


def make_upstream(folder):
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    config = HubertConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    torch.manual_seed(1)
    HubertModel(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


def labelled(root, name, count, offset=0):
    """Low tones for the first label, high tones for the second, so the audio tells the classes apart."""
    path = build_data_dir(root, name, num_utts=count, durations=[0.4 + 0.05 * (i % 4) for i in range(count)])
    data = load_data_dir(path)
    for i, utt in enumerate(data.utt_ids):
        seconds = np.arange(int(float(data["utt2dur"][utt]) * 16000)) / 16000
        pitch = (300 if i % 2 == 0 else 2500) + 20 * i
        sf.write(data["wav.scp"][utt], 0.5 * np.sin(2 * np.pi * pitch * seconds), 16000, subtype="PCM_16")
        data.tables["utt2intent"][utt] = INTENTS[i % 2]
        data.tables["text.slots"][utt] = SLOTS[i % 2]
    data.tables["utt2emotion"] = {u: ["neu", "ang"][i % 2] for i, u in enumerate(data.utt_ids)}
    write_data_dir(data, path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("downstream")
    return {
        "root": root,
        "upstream": make_upstream(root / "upstream"),
        "train": labelled(root, "train", 8),
        "dev": labelled(root, "dev", 4),
    }


def config(setup, name="c.yaml", **changes):
    values = {
        "task": "ic",
        "label_fields": ["action", "object", "location"],
        "classifier": {"projection_dim": 8},
        "slot_filling": {"projection_dim": 8, "hidden_size": 8, "num_layers": 1},
        "optim": {"lr": 0.05},
        "batching": {"max_batch_seconds": 2.0, "max_utts": 3},
        "epochs": 3,
        "log_every_steps": 1,
        "checkpoint_every_steps": 2,
    }
    for key, value in changes.items():
        node = values
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    path = setup["root"] / name
    path.write_text(yaml.safe_dump(values))
    return path


def train(setup, out, extra=(), name="c.yaml", **changes):
    args = ["--config", str(config(setup, name, **changes)), "--train", str(setup["train"]), "--out", str(out)]
    args += ["--valid", str(setup["dev"]), "--upstream", str(setup["upstream"]), *extra]
    return train_main(args)


@pytest.mark.parametrize("task", ["ic", "er", "sf"])
def test_train_infer_and_score_each_task(setup, tmp_path, task):
    changes = {"task": task} if task == "ic" else {"task": task, "label_fields": None}
    assert train(setup, tmp_path / "run", **changes) == 0
    state = torch.load(tmp_path / "run" / "head.pt", weights_only=False)
    assert state["kind"] == task and state["upstream"] == str(setup["upstream"])
    log = (tmp_path / "run" / "train.log").read_text()
    assert "epoch 3 done: dev" in log
    hyp = tmp_path / "eval" / f"hyp.{task}"
    assert infer_main(["--model", str(tmp_path / "run"), "--data", str(setup["dev"]), "--out", str(hyp)]) == 0
    predictions = read_table(hyp, allow_empty_value=True)
    assert sorted(predictions) == sorted(load_data_dir(setup["dev"]).utt_ids)
    table = {"ic": "utt2intent", "er": "utt2emotion", "sf": "text.slots"}[task]
    if task != "sf":
        # every field of a prediction is one the training labels had in that position
        for position, field in enumerate(zip(*(v.split("|") for v in predictions.values()), strict=True)):
            known = {label.split("|")[position] for label in load_data_dir(setup["train"])[table].values()}
            assert set(field) <= known
        score_task = "ic"
    else:
        score_task = "sf"
    ref = setup["dev"] / table
    assert score_main(["--task", score_task, "--ref", str(ref), "--hyp", str(hyp), "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "score.json").read_text())["n_utt"] == 4


def test_the_ic_head_fits_its_training_set(setup, tmp_path):
    # The tiny random upstream's features differ little between the tones (pooled vectors 0.04-0.12 apart), so this
    # asks only that the head fits the eight training utterances (dev = train) from chance (50%); layer-normalised
    # upstream features give it a usable scale.
    changes = {"epochs": 40, "optim.lr": 0.01, "classifier.layer_norm": True}
    args = ["--config", str(config(setup, **changes)), "--train", str(setup["train"])]
    args += ["--valid", str(setup["train"]), "--upstream", str(setup["upstream"]), "--out", str(tmp_path / "run")]
    assert train_main(args) == 0
    state = torch.load(tmp_path / "run" / "head.pt", weights_only=False)
    assert state["dev"]["metric"] == 100.0


def test_resume_after_a_stop_gives_the_same_head(setup, tmp_path):
    assert train(setup, tmp_path / "whole", name="a.yaml", cache_features=True) == 0
    assert train(setup, tmp_path / "parts", ["--stop-after-steps", "3"], name="a.yaml", cache_features=True) == 0
    assert not (tmp_path / "parts" / "head.pt").exists()
    assert train(setup, tmp_path / "parts", name="a.yaml", cache_features=True) == 0
    assert "resumed from" in (tmp_path / "parts" / "train.log").read_text()
    whole = torch.load(tmp_path / "whole" / "head.pt", weights_only=False)["head"]
    parts = torch.load(tmp_path / "parts" / "head.pt", weights_only=False)["head"]
    for key in whole:
        assert torch.equal(whole[key], parts[key]), key


def test_cached_hidden_states_match_fresh_ones(setup):
    from toolkit.models.downstream import Upstream
    from toolkit.train.downstream import HiddenStates, open_labelled

    upstream = Upstream(str(setup["upstream"]))
    subset = open_labelled(setup["dev"], "utt2intent")
    fresh = HiddenStates(upstream, "fp32", cache=False)
    cached = HiddenStates(upstream, "fp32", cache=True)
    a, mask_a = fresh.batch(subset, subset.utts, "dev")
    cached.batch(subset, subset.utts[:2], "dev")  # half of them from the cache, half new
    b, mask_b = cached.batch(subset, subset.utts, "dev")
    assert torch.equal(mask_a, mask_b)
    assert torch.allclose(a, b, atol=1e-2, rtol=1e-2)
    assert len(cached.cache) == len(subset.utts)


def test_rerun_after_completion_and_a_changed_config(setup, tmp_path, capsys):
    assert train(setup, tmp_path / "run", epochs=1) == 0
    assert train(setup, tmp_path / "run", epochs=1) == 0
    assert "complete" in capsys.readouterr().out
    (tmp_path / "run" / "head.pt").unlink()
    assert train(setup, tmp_path / "run", epochs=2) == 1
    assert "different configuration" in capsys.readouterr().err


def test_bad_input_is_a_clear_error(setup, tmp_path, capsys):
    # a dev label the training set never had: a warning, and the utterance counts as wrong
    dev = tmp_path / "dev"
    data = load_data_dir(setup["dev"])
    first = data.utt_ids[0]
    data.tables["utt2intent"][first] = "activate|heater|garage"
    write_data_dir(data, dev)
    args = ["--config", str(config(setup)), "--train", str(setup["train"]), "--upstream", str(setup["upstream"])]
    assert train_main([*args, "--valid", str(dev), "--out", str(tmp_path / "a")]) == 0
    log = (tmp_path / "a" / "train.log").read_text()
    assert f"{dev}/utt2intent: 1 utterance(s) have a label the training set never has" in log and first in log
    # an utterance without a label
    del data.tables["utt2intent"][first]
    write_data_dir(data, dev)
    assert train_main([*args, "--valid", str(dev), "--out", str(tmp_path / "b")]) == 1
    assert "have no label" in capsys.readouterr().err
    # no label table at all
    (dev / "utt2intent").unlink()
    assert train_main([*args, "--valid", str(dev), "--out", str(tmp_path / "c")]) == 1
    assert f"{dev}/utt2intent does not exist" in capsys.readouterr().err
    # no upstream
    assert (
        train_main(["--config", str(config(setup)), "--train", str(setup["train"]), "--out", str(tmp_path / "d")]) == 1
    )
    assert "upstream is not set" in capsys.readouterr().err
    # inference before training
    assert infer_main(["--model", str(tmp_path / "e"), "--data", str(setup["dev"]), "--out", str(tmp_path / "h")]) == 1
    assert "train the head first" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def make_text_encoder(folder):
    """A tiny BERT that knows the words of the training transcripts (build_data_dir's `turn on the light ...`)."""
    return tiny_bert(folder, ["turn", "on", "the", "light", "number", *map(str, range(10))])


@pytest.mark.parametrize("kind", ["mfcc", "random", "text"])
def test_the_reference_upstreams_train_heads_and_are_rebuilt_for_inference(setup, tmp_path, kind):
    # The SLU diagnosis's floor and ceiling run through the same heads, and head.pt's spec rebuilds them.
    spec = {
        "mfcc": "mfcc",
        "random": f"random:{setup['upstream']}",
        "text": f"text:{make_text_encoder(tmp_path / 'bert')}",
    }[kind]
    for task in ("ic", "sf"):
        out = tmp_path / f"{kind}_{task}"
        changes = {"task": task} if task == "ic" else {"task": task, "label_fields": None}
        args = ["--config", str(config(setup, f"{kind}_{task}.yaml", **changes)), "--train", str(setup["train"])]
        args += ["--valid", str(setup["dev"]), "--upstream", spec, "--out", str(out)]
        assert train_main(args) == 0
        state = torch.load(out / "head.pt", weights_only=True)
        assert state["upstream"] == spec
        hyp = tmp_path / f"hyp.{kind}.{task}"
        assert infer_main(["--model", str(out), "--data", str(setup["dev"]), "--out", str(hyp)]) == 0
        assert sorted(read_table(hyp, allow_empty_value=True)) == sorted(load_data_dir(setup["dev"]).utt_ids)


def test_reference_upstream_outputs():
    from toolkit.discretizers.features import FeatureSpec, compute_features
    from toolkit.models.reference_upstreams import MfccUpstream

    waves = [np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 8000)]
    hidden, mask = MfccUpstream()(waves, ["a", "b"])
    assert hidden.shape == (1, 2, 100, 39) and mask.sum(1).tolist() == [100, 50]
    torch.testing.assert_close(hidden[0, 1, :50], compute_features(waves[1], FeatureSpec()))
    assert hidden[0, 1, 50:].abs().sum() == 0


def test_the_random_upstream_is_the_architecture_with_fresh_reproducible_weights(setup):
    from toolkit.models.downstream import Upstream
    from toolkit.models.reference_upstreams import load_upstream

    trained = Upstream(str(setup["upstream"])).model.state_dict()
    first = load_upstream(f"random:{setup['upstream']}").model.state_dict()
    second = load_upstream(f"random:{setup['upstream']}").model.state_dict()
    assert first.keys() == trained.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], trained[k]) for k in first if first[k].is_floating_point())


def test_the_text_upstream_repeats_each_token_and_leaves_out_specials(tmp_path):
    from toolkit.models.reference_upstreams import TEXT_REPEAT, load_upstream

    text = load_upstream(f"text:{make_text_encoder(tmp_path / 'bert')}")
    hidden, mask = text(["turn on the light", "number 7"], ["a", "b"])
    assert hidden.shape[:3] == (3, 2, 4 * TEXT_REPEAT) and mask.sum(1).tolist() == [4 * TEXT_REPEAT, 2 * TEXT_REPEAT]
    torch.testing.assert_close(hidden[:, 0, 0], hidden[:, 0, TEXT_REPEAT - 1])  # one token, repeated
