"""Dry runs of the real-corpus SLU recipes (egs/<corpus>/slu1 but the embedded mini_synth: the PAD paper's setup).

Every conf/distill/*.yaml and conf/downstream/*.yaml is loaded into its dataclass and trains ONE step through the
entry point slu.sh calls (toolkit.bin.distill, toolkit.bin.train_downstream) on tiny synthetic data, with the hub
models it names replaced by tiny random models of the same families built here (BERT for bert-base-uncased,
wav2vec 2.0 for facebook/wav2vec2-base: same classes, same norm and preprocessing settings, tiny sizes). Every other
value of a config is kept; the only overrides are `max_steps=1` and the model names (see STAND_INS and
DOWNSTREAM_ARGS); no batch size needs lowering, the tiny sets fit in one batch of every config. Configs are found
by glob, so a new one is covered without editing this file. Also: the recipes' scripts parse, their run.sh and
configs agree, the shared LibriSpeech 10 h helper works on a tiny corpus with LibriSpeech's layout, and IEMOCAP's
fold summary averages the folds. No downloads (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from toolkit.bin.distill import main as distill_main
from toolkit.bin.train_downstream import main as train_downstream_main
from toolkit.config import load_config, load_yaml
from toolkit.datadir import DataDir, load_data_dir, write_data_dir
from toolkit.train.distill import DistillConfig
from toolkit.train.downstream import DownstreamConfig
from toolkit.validate import validate_data_dir

from conftest import build_data_dir, tiny_bert

os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = REPO / "egs/mini_synth/slu1"
RECIPES = sorted(p for p in REPO.glob("egs/*/slu1") if p.parent.name not in ("TEMPLATE", "mini_synth"))
DISTILL_CONFIGS = sorted(p for r in RECIPES for p in (r / "conf/distill").glob("*.yaml"))
DOWNSTREAM_CONFIGS = sorted(p for r in RECIPES for p in (r / "conf/downstream").glob("*.yaml"))
WORDS = ["turn", "on", "off", "the", "light", "lights", "number", "music"] + [str(i) for i in range(10)]
# The hub models the real configs name, and the tiny stand-in of the same family each is replaced by.
STAND_INS = {"bert-base-uncased": "bert", "facebook/wav2vec2-base": "wav2vec2"}
# The paper's comparison (the embedded recipe's ten methods): file name -> loss kind, prior, anchors.
METHODS = {
    "glob": ("glob", "asp", "asp"),
    "tlocal": ("tlocal", "asp", "asp"),
    "pad_glob": ("pad_glob", "asp", "asp"),
    "pad_tlocal": ("pad_tlocal", "asp", "asp"),
    "pad_slocal": ("pad_slocal", "asp", "asp"),
    "pad_glob_uniform": ("pad_glob", "uniform", "asp"),
    "pad_tlocal_uniform": ("pad_tlocal", "uniform", "asp"),
    "pad_slocal_uniform": ("pad_slocal", "uniform", "asp"),
    "pad_slocal_stride": ("pad_slocal", "asp", "stride"),
    "joint": ("joint", "asp", "asp"),
}


def methods_of(recipe: Path) -> dict[str, tuple[Path, list[str]]]:
    """A recipe's distillation methods as run_comparison.sh reads them: each conf/distill/<method>.yaml, and each
    line of conf/distill/ablations.txt (a base config and the keys it changes)."""
    folder = recipe / "conf/distill"
    methods = {p.stem: (p, []) for p in folder.glob("*.yaml")}
    for line in (folder / "ablations.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, base, *changes = line.split()
            methods[name] = (folder / f"{base}.yaml", changes)
    return methods


# train_downstream reads the upstream from --upstream, as slu.sh passes it; one step is enough for a dry run.
DOWNSTREAM_ARGS = ["--set", "max_steps=1"]


def rel(path: Path) -> str:
    return str(path.relative_to(REPO / "egs"))


# ---- tiny stand-ins for the hub models ----


def make_bert(folder: Path) -> Path:
    """bert-base-uncased's family: BertModel with an uncased WordPiece tokenizer, 2 layers of 32 dims."""
    return tiny_bert(folder, WORDS, hidden=32, positions=64)


def make_wav2vec2(folder: Path) -> Path:
    """facebook/wav2vec2-base's family: Wav2Vec2Model with a group-norm CNN, post-norm encoder, LayerDrop and time
    masking on, normalised input without an attention mask (its preprocessor); 2 layers of 32 dims, like the tiny
    teacher's (the real pair has equal sizes too, so there is no projection)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        conv_bias=False,
        layerdrop=0.1,
        mask_time_prob=0.05,
    )
    torch.manual_seed(1)
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(folder)
    return folder


def labelled(root: Path, name: str, count: int) -> Path:
    """A data dir with every SLU table: FSC-style intents, emotions, slot-tagged transcripts (two classes each)."""
    path = build_data_dir(root, name, num_utts=count, durations=[0.6 + 0.2 * (i % 3) for i in range(count)])
    data = load_data_dir(path)
    for i, utt in enumerate(data.utt_ids):
        data.tables["utt2intent"][utt] = ["activate|lights|kitchen", "deactivate|music|none"][i % 2]
        data.tables["text.slots"][utt] = ["turn on the B-object light E-object", "turn off B-object music E-object"][
            i % 2
        ]
    data.tables["utt2emotion"] = {u: ["neu", "ang"][i % 2] for i, u in enumerate(data.utt_ids)}
    write_data_dir(data, path)
    return path


def paired(root: Path, name: str, count: int, speaker_prefix: str) -> Path:
    """A paired set with LibriSpeech-like upper case transcripts; the prefix keeps ids apart between sets."""
    data = load_data_dir(
        build_data_dir(root / "build", name, num_utts=count, durations=[0.6 + 0.2 * i for i in range(count)])
    )
    out = DataDir(tables={key: {speaker_prefix + u: v for u, v in table.items()} for key, table in data.tables.items()})
    out.tables["utt2spk"] = {u: speaker_prefix + s for u, s in out.tables["utt2spk"].items()}
    out.tables["text"] = {u: text.upper() for u, text in out.tables["text"].items()}
    write_data_dir(out, root / name)
    return root / name


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("slu_configs")
    return {
        "root": root,
        "bert": make_bert(root / "bert"),
        "wav2vec2": make_wav2vec2(root / "wav2vec2"),
        "paired": paired(root, "paired", 4, "train"),
        "paired_dev": paired(root, "paired_dev", 2, "dev"),
        "train": labelled(root, "train", 6),
        "dev": labelled(root, "dev", 4),
    }


def stand_in(setup, name: str) -> str:
    if name not in STAND_INS:
        pytest.fail(f"no tiny stand-in for the hub model '{name}': add one to STAND_INS")
    return str(setup[STAND_INS[name]])


# ---- every config loads and describes the paper's setup ----


def test_every_recipe_has_the_embedded_recipes_methods_and_its_tasks_configs():
    assert RECIPES, "no real-corpus SLU recipe found"
    assert set(methods_of(EMBEDDED)) == set(METHODS)
    for recipe in RECIPES:
        assert set(methods_of(recipe)) >= set(METHODS), recipe
        run_sh = (recipe / "run.sh").read_text()
        tasks = re.search(r"--tasks\s+\"?([a-z ]+)\"?", run_sh).group(1).split()
        for task in tasks:
            assert (recipe / f"conf/downstream/{task}.yaml").is_file(), (recipe, task)
            assert re.search(rf"--{task}_sets ", run_sh), (recipe, task)
        # The paper's setup, given to slu.sh as an option or as run.sh's default of one.
        for option, value in (
            ("upstream", "facebook/wav2vec2-base"),
            ("distill_config", "conf/distill/pad_slocal.yaml"),
            ("distill_set", "librispeech_10h"),
            ("distill_valid", "librispeech_dev"),
            ("distill_data", "true"),
        ):
            assert re.search(rf"(--{option} |^{option}=){re.escape(value)}", run_sh, re.M), (recipe, option)
        assert (recipe / "slu.sh").resolve() == (REPO / "egs/TEMPLATE/slu1/slu.sh").resolve()
        assert "LIBRISPEECH=" in (recipe / "db.sh").read_text()


@pytest.mark.parametrize("path", DISTILL_CONFIGS, ids=rel)
def test_distill_config_is_the_papers_setup(path):
    cfg = load_config(DistillConfig, path)
    assert (cfg.teacher, cfg.student) == ("bert-base-uncased", "facebook/wav2vec2-base")
    assert cfg.lowercase_text  # LibriSpeech is upper case, the teacher uncased
    assert cfg.precision == "auto"  # bf16 or fp16 on a GPU, by its capability (toolkit.hardware)
    if path.stem in METHODS:  # the ten methods of the paper's comparison say what they are in their name
        assert (cfg.loss.kind, cfg.loss.prior, cfg.loss.anchors) == METHODS[path.stem]


@pytest.mark.parametrize("recipe", [EMBEDDED, *RECIPES], ids=rel)
def test_every_method_is_what_its_name_says(recipe):
    # An ablation is its base config with one key changed (ablations.txt): the resolved config says which.
    for name, (config, changes) in methods_of(recipe).items():
        cfg = load_config(DistillConfig, config, changes)
        assert (cfg.loss.kind, cfg.loss.prior, cfg.loss.anchors) == METHODS[name], (recipe, name)


@pytest.mark.parametrize("path", DOWNSTREAM_CONFIGS, ids=rel)
def test_downstream_config_is_superbs(path):
    cfg = load_config(DownstreamConfig, path)
    assert cfg.task == path.stem
    assert cfg.optim.lr == 1e-4 and cfg.optim.schedule == "constant" and cfg.optim.grad_clip == 1.0
    assert cfg.batching.max_utts * cfg.optim.grad_accum == 32  # SUPERB's batch, with accumulation for ER
    assert not cfg.cache_features  # the real corpora's hidden states do not fit in memory
    if cfg.task == "sf":
        sf_cfg = cfg.slot_filling
        assert (sf_cfg.projection_dim, sf_cfg.hidden_size, sf_cfg.num_layers, sf_cfg.dropout) == (1024, 1024, 2, 0.2)
    else:
        assert cfg.classifier.projection_dim == 256


# ---- one training step of every config, with tiny stand-ins ----


@pytest.mark.parametrize("path", DISTILL_CONFIGS, ids=rel)
def test_distill_config_trains_one_step(setup, tmp_path, path):
    cfg = load_config(DistillConfig, path)
    out = tmp_path / "distill"
    # As slu.sh stage 4 calls it (--data, --dev, --set student=...), the hub names swapped for the stand-ins.
    argv = ["--config", str(path), "--data", str(setup["paired"]), "--valid", str(setup["paired_dev"])]
    argv += ["--out", str(out), "--set", "max_steps=1"]
    argv += ["--set", f"teacher={stand_in(setup, cfg.teacher)}", "--set", f"student={stand_in(setup, cfg.student)}"]
    assert distill_main(argv) == 0
    done = json.loads((out / "done.json").read_text())
    assert done["steps"] == 1 and done["train_utts"] == 4 and done["dev_loss"] is not None
    assert not done["projection"]  # equal sizes, as bert-base-uncased and wav2vec2-base
    assert (out / "model/config.json").is_file() and (out / "model/preprocessor_config.json").is_file()
    saved = yaml.safe_load((out / "config.yaml").read_text())  # every other value as the recipe has it
    optim = load_yaml(path)["optim"]
    assert saved["lowercase_text"] and {key: saved["optim"][key] for key in optim} == optim


@pytest.mark.parametrize("path", DOWNSTREAM_CONFIGS, ids=rel)
def test_downstream_config_trains_one_step(setup, tmp_path, path):
    out = tmp_path / "head"
    argv = ["--config", str(path), "--train", str(setup["train"]), "--valid", str(setup["dev"])]
    argv += ["--upstream", str(setup["wav2vec2"]), "--out", str(out), *DOWNSTREAM_ARGS]
    assert train_downstream_main(argv) == 0
    assert (out / "head.pt").is_file()
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["max_steps"] == 1 and saved["upstream"] == str(setup["wav2vec2"])
    assert "1 optimizer steps" in (out / "train.log").read_text()


# ---- the scripts ----


SCRIPTS = sorted(
    [p for r in RECIPES for p in [*r.glob("*.sh"), *r.glob("local/*.sh")] if not p.is_symlink()]
    + [REPO / "egs/TEMPLATE/slu1/local_librispeech_10h.sh"]
)


@pytest.mark.parametrize("path", SCRIPTS, ids=rel)
def test_script_parses(path):
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    if path.name.startswith("run"):
        assert os.access(path, os.X_OK), f"{path} is not executable"


def copy_recipe(tmp_path: Path, recipe: Path) -> Path:
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    dst = tmp_path / "egs" / recipe.parent.name / "slu1"
    shutil.copytree(recipe, dst, symlinks=True, ignore=shutil.ignore_patterns("data", "dump", "exp"))
    return dst


def script(recipe: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    for name in ("LIBRISPEECH", "FSC", "SNIPS", "IEMOCAP", "SLURP"):
        env.pop(name, None)
    return subprocess.run(list(cmd), cwd=recipe, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.parent.name)
def test_data_sh_distill_data_option(tmp_path, recipe):
    recipe = copy_recipe(tmp_path, recipe)
    proc = script(recipe, "local/data.sh", "--help")
    assert proc.returncode == 0 and "--distill_data" in proc.stdout and "--librispeech" in proc.stdout
    proc = script(recipe, "local/data.sh", "--distill_data", "maybe")
    assert proc.returncode == 1 and "--distill_data must be true or false" in proc.stderr


def build_librispeech(root: Path) -> dict[str, float]:
    """<root>/{train-clean-100,dev-clean}/<reader>/<chapter>/ with FLACs and trans.txt; uttid -> seconds."""
    rng = np.random.default_rng(0)
    seconds = {}
    layout = {"train-clean-100": [("19", "198"), ("103", "1240")], "dev-clean": [("84", "121123")]}
    for subset, chapters in layout.items():
        for reader, chapter in chapters:
            folder = root / subset / reader / chapter
            folder.mkdir(parents=True)
            lines = []
            for k in range(4):
                uttid = f"{reader}-{chapter}-{k:04d}"
                seconds[uttid] = 0.5 + 0.25 * k
                wave = (0.1 * rng.standard_normal(int(seconds[uttid] * 16000))).astype(np.float32)
                sf.write(folder / f"{uttid}.flac", wave, 16000, format="FLAC", subtype="PCM_16")
                lines.append(f"{uttid} TURN ON THE LIGHT NUMBER {k}\n")
            (folder / f"{reader}-{chapter}.trans.txt").write_text("".join(lines))
    return seconds


def test_librispeech_10h_helper(tmp_path):
    corpus = tmp_path / "LibriSpeech"
    seconds = build_librispeech(corpus)
    recipe = copy_recipe(tmp_path, RECIPES[0])
    helper = "../../TEMPLATE/slu1/local_librispeech_10h.sh"
    proc = script(recipe, helper, "--nj", "1")
    assert proc.returncode == 1 and "LibriSpeech folder (distillation data) is not set" in proc.stderr
    proc = script(recipe, helper, "--db_root", str(tmp_path), "--check", "true")
    assert proc.returncode == 1 and f"use {corpus}" in proc.stderr
    assert not (recipe / "data").exists()

    hours = 4.0 / 3600  # of the 10 s of train-clean-100 here
    proc = script(recipe, helper, "--db_root", str(corpus), "--hours", str(hours), "--nj", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    draw = load_data_dir(recipe / "data/librispeech_10h")
    full = load_data_dir(recipe / "data/librispeech_train_clean_100")
    dev = load_data_dir(recipe / "data/librispeech_dev")
    assert len(full.utt_ids) == 8 and set(draw.utt_ids) < set(full.utt_ids)
    assert 3.0 < sum(seconds[u] for u in draw.utt_ids) <= 4.0
    assert all(u.startswith("84-") for u in dev.utt_ids) and len(dev.utt_ids) == 4
    assert draw["text"][draw.utt_ids[0]].isupper()  # as the corpus has it; the distill configs lowercase it
    for name in ("librispeech_10h", "librispeech_dev"):
        assert validate_data_dir(recipe / "data" / name, sample_rate=16000, num_threads=1) == []
    again = script(recipe, helper, "--db_root", str(corpus), "--hours", str(hours), "--nj", "1")
    assert again.returncode == 0 and load_data_dir(recipe / "data/librispeech_10h").utt_ids == draw.utt_ids


def test_iemocap_fold_summary(tmp_path):
    recipe = REPO / "egs/iemocap/slu1"
    if not recipe.is_dir():
        pytest.skip("no IEMOCAP recipe")
    exp = tmp_path / "exp"
    accuracy = {("pad_slocal_seed1", k): 60.0 + k for k in range(1, 6)}
    accuracy.update({("pad_slocal_seed2", k): 62.0 + k for k in range(1, 6)})
    for (tag, k), acc in accuracy.items():
        folder = exp / f"er_fold{k}_{tag}/eval/fold{k}_test"
        folder.mkdir(parents=True)
        (folder / "score.json").write_text(json.dumps({"task": "er", "accuracy": acc}))
    cmd = [sys.executable, str(recipe / "local/fold_summary.py"), "--exp", str(exp)]
    proc = subprocess.run([*cmd, "--tags", "pad_slocal_seed1", "pad_slocal_seed2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "pad_slocal_seed1: mean ER accuracy 63.00%" in proc.stdout
    assert "pad_slocal: 64.00 ± 1.41% over 2 seed(s)" in proc.stdout
    assert json.loads((exp / "er_folds_pad_slocal_seed2.json").read_text())["mean"] == 65.0
    proc = subprocess.run([*cmd, "--tags", "none"], capture_output=True, text=True)
    assert proc.returncode == 1 and "er_fold1_none/eval/fold1_test/score.json does not exist" in proc.stderr
