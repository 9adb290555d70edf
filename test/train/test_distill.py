import csv
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from toolkit.bin.distill import main as distill_main
from toolkit.config import from_dict
from toolkit.losses.pad_prior import significance_prior
from toolkit.models import ssl_student as ss
from toolkit.models import teacher_cache as tc
from toolkit.train import distill as dt

from conftest import build_data_dir, tiny_bert

os.environ["HF_HUB_OFFLINE"] = "1"

WORDS = ["turn", "on", "the", "light", "number"] + [str(i) for i in range(10)]
QUIET = {"attention_dropout": 0.0, "hidden_dropout": 0.0, "activation_dropout": 0.0, "feat_proj_dropout": 0.0}


def make_teacher(folder, hidden=16):
    return tiny_bert(folder, WORDS, hidden)


def make_student(folder, hidden=16, norm="layer", preprocessor=True):
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    config = HubertConfig(
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
    )
    torch.manual_seed(1)
    HubertModel(config).save_pretrained(folder)
    if preprocessor:
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=norm == "layer").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    return {
        "root": root,
        "teacher": make_teacher(root / "teacher"),
        "student": make_student(root / "student16"),
        "student12": make_student(root / "student12", hidden=12, preprocessor=False),
        "data": build_data_dir(root, "paired", num_utts=6, durations=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
    }


def write_config(path, setup, **changes):
    config = {
        "teacher": str(setup["teacher"]),
        "student": str(setup["student"]),
        "loss": {"kind": "pad_slocal"},
        "optim": {"lr": 1e-3, "warmup_steps": 0, "schedule": "constant"},
        "batching": {"max_batch_seconds": 2.0, "max_seconds": 0.95},
        "dev": {"holdout_fraction": 0.2},
        "max_steps": 3,
        "log_every_steps": 1,
        "checkpoint_every_steps": 100,
        "student_config": dict(QUIET),
    }
    for key, value in changes.items():
        node = config
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    path.write_text(yaml.safe_dump(config))
    return path


def run(setup, out, config_name="c.yaml", extra=(), **changes):
    config = write_config(setup["root"] / config_name, setup, **changes)
    return distill_main(["--config", str(config), "--data", str(setup["data"]), "--out", str(out), *extra])


def train_losses(out):
    with open(out / "curves.csv", newline="") as f:
        return [float(r["train_loss"]) for r in csv.DictReader(f) if r["train_loss"]]


def saved_weights(folder):
    from transformers import AutoModel

    return AutoModel.from_pretrained(folder).state_dict()


@pytest.mark.parametrize("kind", ["glob", "tlocal", "pad_slocal"])
def test_a_few_steps_lower_the_loss(setup, tmp_path, kind):
    # One batch holding every training utterance: each step sees the same data, so the loss must go down.
    out = tmp_path / kind
    assert run(setup, out, **{"loss.kind": kind, "batching.max_batch_seconds": 10.0, "max_steps": 4}) == 0
    losses = train_losses(out)
    assert len(losses) == 4 and all(map(torch.isfinite, torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert (out / "model" / "config.json").is_file() and (out / "done.json").is_file()
    assert not (out / "projection.pt").exists()  # equal hidden sizes: no projection
    assert any((out / "teacher_cache").glob("shard.*.pt"))
    assert "1 longer than batching.max_seconds=0.95 s" in (out / "train.log").read_text()
    skipped = json.loads((out / "done.json").read_text())["skipped"]
    assert skipped["train"]["too_long"] + skipped["dev"]["too_long"] == 1


def test_projection_only_when_hidden_sizes_differ_and_student_reloads(setup, tmp_path):
    from transformers import AutoFeatureExtractor, AutoModel

    out = tmp_path / "p"
    assert run(setup, out, student=str(setup["student12"]), max_steps=2) == 0
    saved = torch.load(out / "projection.pt")
    assert (saved["in"], saved["out"]) == (12, 16)
    model = AutoModel.from_pretrained(out / "model")
    assert type(model).__name__ == "HubertModel" and model.config.hidden_size == 12
    # The overrides used while distilling are undone: the saved config is the source's.
    assert model.config.apply_spec_augment is True and model.config.attention_dropout == 0.1
    assert not (out / "model" / "preprocessor_config.json").exists()  # the source had none

    out16 = tmp_path / "p16"
    assert run(setup, out16, max_steps=1, precision="bf16") == 0
    assert not (out16 / "projection.pt").exists()
    assert AutoFeatureExtractor.from_pretrained(out16 / "model").do_normalize is True
    trained, source = saved_weights(out16 / "model"), saved_weights(setup["student"])
    assert trained.keys() == source.keys()
    assert any(not torch.equal(trained[k], source[k]) for k in trained)


def test_resume_after_a_stop_gives_the_same_weights(setup, tmp_path):
    changes = {"max_steps": 4, "student_config": {}}  # dropout on: its seeding must be resume-exact
    assert run(setup, tmp_path / "full", **changes) == 0
    assert run(setup, tmp_path / "split", extra=["--stop-after-steps", "2"], **changes) == 0
    assert not (tmp_path / "split" / "model").exists()
    assert run(setup, tmp_path / "split", **changes) == 0
    full, split = saved_weights(tmp_path / "full" / "model"), saved_weights(tmp_path / "split" / "model")
    assert all(torch.equal(full[k], split[k]) for k in full)
    assert train_losses(tmp_path / "full") == train_losses(tmp_path / "split")


def test_rerun_after_completion_and_changed_config(setup, tmp_path, capsys):
    out = tmp_path / "r"
    assert run(setup, out, max_steps=1) == 0
    assert run(setup, out, max_steps=1) == 0
    assert "already complete" in capsys.readouterr().out
    assert run(setup, out, max_steps=2) == 1
    assert "holds a run of a different configuration" in capsys.readouterr().err


def test_teacher_gets_no_gradient_and_uncached_run_matches_cached(setup, tmp_path, monkeypatch):
    loaded = []

    def spy(name, device="cpu"):
        model, tokenizer = tc.load_text_teacher(name, device)
        loaded.append(model)
        return model, tokenizer

    monkeypatch.setattr(dt, "load_text_teacher", spy)
    before = saved_weights(setup["teacher"])
    assert run(setup, tmp_path / "nocache", teacher_cache=False) == 0
    assert len(loaded) == 1 and not (tmp_path / "nocache" / "teacher_cache").exists()
    teacher = loaded[0]
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert run(setup, tmp_path / "cache") == 0
    assert train_losses(tmp_path / "nocache") == pytest.approx(train_losses(tmp_path / "cache"), rel=1e-4)


def test_cached_teacher_outputs_equal_fresh_ones_and_a_changed_text_invalidates(setup, tmp_path):
    texts = {f"u{i}": f"turn on the light number {i}" for i in range(4)}
    cache = tmp_path / "cache"
    first, counts = tc.teacher_entries(str(setup["teacher"]), texts, None, False, cache)
    assert counts == {"cached": 0, "computed": 4}
    again, counts = tc.teacher_entries(str(setup["teacher"]), texts, None, False, cache)
    assert counts == {"cached": 4, "computed": 0}
    model, tokenizer = tc.load_text_teacher(str(setup["teacher"]))
    for utt, text in texts.items():
        (fresh,) = tc.encode_texts(model, tokenizer, [text])  # alone, not in a padded batch
        for entry in (first[utt], again[utt]):
            assert torch.equal(entry.input_ids, fresh.input_ids) and torch.equal(entry.special, fresh.special)
            torch.testing.assert_close(entry.hidden, fresh.hidden, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(entry.prior, fresh.prior, atol=1e-6, rtol=1e-5)
        assert entry.special.tolist() == [True] + [False] * 6 + [True]  # [CLS] turn on the light number i [SEP]
        assert abs(float(entry.prior.sum()) - 1) < 1e-5

    changed = {**texts, "u2": "turn the light on"}
    entries, counts = tc.teacher_entries(str(setup["teacher"]), changed, None, False, cache)
    assert counts == {"cached": 3, "computed": 1}
    (fresh,) = tc.encode_texts(model, tokenizer, ["turn the light on"])
    torch.testing.assert_close(entries["u2"].hidden, fresh.hidden, atol=1e-5, rtol=1e-5)
    # Other prior layers or lowercasing are other entries too.
    assert tc.teacher_entries(str(setup["teacher"]), changed, [1], False, cache)[1]["computed"] == 4


def test_prior_as_attention_gives_back_the_prior():
    prior = torch.tensor([[0.2, 0.3, 0.5, 0.0], [0.6, 0.4, 0.0, 0.0]])
    mask = prior > 0
    maps = tc.prior_as_attention(prior, mask, 3)
    for layers in (None, [0, 2], [-1]):
        torch.testing.assert_close(significance_prior(maps, mask, layers), prior)


def test_group_norm_student_frames_do_not_depend_on_the_batch(tmp_path):
    folder = make_student(tmp_path / "gn", norm="group", preprocessor=False)
    student = ss.load_student(str(folder), torch.device("cpu"), attention=True)
    assert student.group_norm and student.attention and not student.normalize
    student.model.eval()
    torch.manual_seed(0)
    waves = [0.1 * torch.randn(n) for n in (8000, 5000, 12000)]
    with torch.no_grad():
        hidden, mask, attentions = ss.student_forward(student, waves, None, torch.device("cpu"))
        assert mask.sum(-1).tolist() == ss.num_frames(student, [8000, 5000, 12000]).tolist()
        assert len(attentions) == 2
        for row, wave in enumerate(waves):
            alone, _, _ = ss.student_forward(student, [wave], 2, torch.device("cpu"))
            last, _, _ = ss.student_forward(student, [wave], None, torch.device("cpu"))
            n = int(mask[row].sum())
            torch.testing.assert_close(hidden[row, :n], last[0], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(alone[0], last[0])  # non-stable layer norm: hidden_states[N] is the output


def test_attention_needs():
    def needs(**loss):
        cfg = from_dict(dt.PADLossConfig, loss)
        return dt.needs_speech_attention(cfg), dt.needs_text_attention(cfg)

    assert needs(kind="glob") == (False, False)
    assert needs(kind="tlocal") == (False, False)
    assert needs(kind="pad_tlocal") == (False, True)
    assert needs(kind="pad_glob") == (True, True)
    assert needs(kind="pad_slocal") == (True, True)
    assert needs(kind="pad_slocal", prior="uniform") == (True, False)
    assert needs(kind="pad_slocal", prior="uniform", anchors="stride") == (False, False)
    assert needs(kind="joint", global_kind="glob", local_kind="pad_tlocal") == (False, True)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"loss.kind": "nope"}, "kind must be one of"),
        ({"epochs": 0}, "epochs and max_steps must be >= 1"),
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"student": "/no/such/student"}, "student model folder /no/such/student does not exist"),
        ({"teacher": "./missing_teacher"}, "teacher model folder ./missing_teacher does not exist"),
        ({"student_layer": 7}, "student_layer 7 is out of range"),
        ({"student_config": {"no_such_option": 1}}, "has no option 'no_such_option'"),
        ({"student_config": {"layerdrop": 0.1}}, "student_config.layerdrop > 0 skips layers"),
        ({"loss.speech_asp_layers": [2]}, "loss.speech_asp_layers: 2 is out of range"),
        ({"loss.text_asp_layers": [0, 5]}, "attention layer index 5 is out of range for 2 layers"),
    ],
)
def test_bad_config_is_a_clear_error(setup, tmp_path, capsys, changes, message):
    assert run(setup, tmp_path / "bad", **changes) == 1
    err = capsys.readouterr().err
    assert "error: " in err and message in err.split("error: ", 1)[1]


def test_bad_data_is_a_clear_error(setup, tmp_path, capsys):
    data = build_data_dir(tmp_path, "notext", num_utts=2)
    (data / "text").unlink()
    config = write_config(tmp_path / "c.yaml", setup)
    assert distill_main(["--config", str(config), "--data", str(data), "--out", str(tmp_path / "o")]) == 1
    assert "notext: no text" in capsys.readouterr().err
    partial = build_data_dir(tmp_path, "partial", num_utts=3)
    (partial / "text").write_text("spk0-utt000 turn on\n")
    assert distill_main(["--config", str(config), "--data", str(partial), "--out", str(tmp_path / "o2")]) == 1
    assert "partial/text: no transcript for utterance 'spk0-utt002'" in capsys.readouterr().err


def test_ddp_two_processes_equal_one_process_with_accumulation(setup, tmp_path):
    """Two torchrun processes (gloo) each take every other batch and average their gradients: the same update as
    one process accumulating two batches. Layer 2 gets no gradient (student_layer 1), which DDP must accept."""
    changes = {"batching.max_utts": 1, "max_steps": 2, "student_layer": 1}
    config = write_config(setup["root"] / "ddp.yaml", setup, **changes)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "toolkit.bin.distill", "--config", str(config), "--data", str(setup["data"]), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "done.json").read_text())["steps"] == 2
    single = tmp_path / "single"
    assert run(setup, single, config_name="acc.yaml", **changes, **{"optim.grad_accum": 2}) == 0
    ddp, one = saved_weights(out / "model"), saved_weights(single / "model")
    assert any(not torch.equal(ddp[k], saved_weights(setup["student"])[k]) for k in ddp)  # it trained
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], rtol=1e-4, atol=1e-6)
