"""The LibriSpeech recipe's data preparation (egs/librispeech/asr1/local/data.sh, toolkit.bin.prepare_librispeech)
on a tiny fixture with the corpus' real layout, and every conf/*.yaml of the recipe loaded into its dataclass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toolkit.bin import prepare_librispeech
from toolkit.bin.train_tokenizers import TokenizersConfig
from toolkit.config import from_dict, load_config, load_yaml
from toolkit.datadir import load_data_dir
from toolkit.decode.search import DecodeConfig
from toolkit.train.config import TrainConfig
from toolkit.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs/librispeech/asr1"
OUTPUTS = ("data", "dump", "exp", "downloads")
SR = 16000

# subset -> {reader: [chapters]}; readers are unique across subsets, as in the corpus.
LAYOUT = {
    "train-clean-100": {"19": ["198", "227"], "103": ["1240"]},
    "train-clean-360": {"100": ["121669"]},
    "train-other-500": {"20": ["205"]},
    "dev-clean": {"84": ["121123"], "174": ["50561"]},
    "dev-other": {"116": ["288045"], "1255": ["138279"]},
    "test-clean": {"1089": ["134686"], "121": ["121726"]},
    "test-other": {"1688": ["142285"], "2033": ["164914"]},
}
SEX = dict(x.split(":") for x in "19:F 103:F 100:F 20:F 84:F 174:M 116:M 1255:M 1089:M 121:F 1688:M 2033:M".split())
SPEAKERS_TXT = """; Some readers of LibriSpeech
;ID  |SEX| SUBSET           |MINUTES| NAME
{rows}
60   | M | train-clean-100  | 20.18 | |CBW|Simon
"""
UTTS_PER_CHAPTER = 2


def build_corpus(root: Path) -> dict[str, dict[str, tuple[str, float]]]:
    """LibriSpeech/<subset>/<reader>/<chapter>/ with FLACs and trans.txt; returns subset -> uttid -> (text, seconds)."""
    rng = np.random.default_rng(0)
    expected: dict[str, dict[str, tuple[str, float]]] = {}
    for subset, readers in LAYOUT.items():
        expected[subset] = {}
        for reader, chapters in readers.items():
            for chapter in chapters:
                folder = root / subset / reader / chapter
                folder.mkdir(parents=True)
                lines = []
                for k in range(UTTS_PER_CHAPTER):
                    uttid = f"{reader}-{chapter}-{k:04d}"
                    seconds = 0.25 + 0.125 * k + 0.0625 * len(expected[subset])
                    wave = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
                    sf.write(folder / f"{uttid}.flac", wave, SR, format="FLAC", subtype="PCM_16")
                    text = f"HE SAID  IT'S {subset.upper()} NUMBER {k}"
                    lines.append(f"{uttid} {text}\n")
                    expected[subset][uttid] = (" ".join(text.split()), seconds)
                (folder / f"{reader}-{chapter}.trans.txt").write_text("".join(lines))
    rows = "\n".join(f"{r:<5}| {s} | some-subset      | 25.00 | Reader {r}" for r, s in SEX.items())
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT.format(rows=rows))
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("corpus") / "LibriSpeech"
    return root, build_corpus(root)


def copy_recipe(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "egs/TEMPLATE", tmp_path / "egs/TEMPLATE", symlinks=True)
    shutil.copytree(RECIPE, tmp_path / "egs/librispeech/asr1", symlinks=True, ignore=shutil.ignore_patterns(*OUTPUTS))
    return tmp_path / "egs/librispeech/asr1"


def data_sh(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    env.pop("LIBRISPEECH", None)
    return subprocess.run(["local/data.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)


def check_set(data_dir: Path, expected: dict[str, tuple[str, float]]) -> None:
    assert validate_data_dir(data_dir, sample_rate=SR, num_threads=1) == []
    data = load_data_dir(data_dir)
    assert sorted(data.utt_ids) == sorted(expected)
    for uttid, (text, seconds) in expected.items():
        reader, chapter, _ = uttid.split("-")
        assert data["text"][uttid] == text
        assert data["utt2spk"][uttid] == f"{reader}-{chapter}"
        assert float(data["utt2dur"][uttid]) == pytest.approx(seconds, abs=1e-3)
        assert data["spk2gender"][f"{reader}-{chapter}"] == SEX[reader].lower()
        path = Path(data["wav.scp"][uttid])
        assert path.is_absolute() and path.name == f"{uttid}.flac"


def test_data_sh_train_clean_100_and_train_960(tmp_path, corpus):
    root, expected = corpus
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--train_set", "train_clean_100", "--db_root", str(root), "--nj", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for subset in ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"):
        check_set(recipe / "data" / subset.replace("-", "_"), expected[subset])
    assert not (recipe / "data/train_clean_360").exists() and not (recipe / "data/train_960").exists()
    spk2utt = (recipe / "data/train_clean_100/spk2utt").read_text().splitlines()
    assert spk2utt[0] == "103-1240 103-1240-0000 103-1240-0001"  # reader 19 has two chapters: two speakers
    assert len(spk2utt) == 3

    proc = data_sh(recipe, "--train_set", "train_960", "--db_root", str(root), "--nj", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subsets = ("train-clean-100", "train-clean-360", "train-other-500")
    check_set(recipe / "data/train_960", {u: v for s in subsets for u, v in expected[s].items()})
    assert not list((recipe / "data").glob("*.tmp"))


def test_data_sh_missing_subset(tmp_path, corpus):
    root, _ = corpus
    partial = tmp_path / "partial"
    shutil.copytree(root / "dev-clean", partial / "LibriSpeech/dev-clean")
    recipe = copy_recipe(tmp_path)
    proc = data_sh(recipe, "--train_set", "train_clean_100", "--db_root", str(partial / "LibriSpeech"))
    assert proc.returncode != 0
    assert f"{partial}/LibriSpeech/dev-other does not exist" in proc.stderr
    assert "LIBRISPEECH" in proc.stderr and "--db_root" in proc.stderr
    assert not (recipe / "data/dev_clean").exists()  # checked before any work

    # The folder above LibriSpeech/ is a common mistake: the message points at the right one.
    shutil.copytree(root, partial / "full" / "LibriSpeech")
    proc = data_sh(recipe, "--db_root", str(partial / "full"), "--train_set", "train_clean_100")
    assert proc.returncode != 0 and f"use --db_root {partial}/full/LibriSpeech" in proc.stderr

    # With db.sh's placeholder and no --db_root, the message names it.
    proc = data_sh(recipe)
    assert proc.returncode != 0 and "/path/to/LibriSpeech/dev-clean does not exist" in proc.stderr


# ---- bad inputs, through the Python entry point ----


def subset_copy(root: Path, tmp_path: Path, subset: str = "dev-clean") -> Path:
    shutil.copytree(root / subset, tmp_path / "LibriSpeech" / subset)
    return tmp_path / "LibriSpeech" / subset


def prepare(src: Path, out: Path, *extra: str) -> int:
    return prepare_librispeech.main(["--db-root", str(src), "--out", str(out), "--nj", "1", *extra])


def test_missing_trans_txt(tmp_path, corpus, capsys):
    src = subset_copy(corpus[0], tmp_path)
    trans = src / "84/121123/84-121123.trans.txt"
    trans.unlink()
    assert prepare(src, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {trans}: missing" in err and "2 .flac" in err
    assert not (tmp_path / "out").exists()

    assert prepare(src, tmp_path / "out", "--skip-missing") == 0
    assert "warning:" in capsys.readouterr().err
    assert all(u.startswith("174-") for u in load_data_dir(tmp_path / "out").utt_ids)


def test_transcript_line_without_text(tmp_path, corpus, capsys):
    src = subset_copy(corpus[0], tmp_path)
    trans = src / "174/50561/174-50561.trans.txt"
    lines = trans.read_text().splitlines()
    trans.write_text(f"{lines[0]}\n174-50561-0001   \n")
    assert prepare(src, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"error: {trans}:2: transcript line without text for '174-50561-0001'" in err


def test_flac_missing_for_transcript_id(tmp_path, corpus, capsys):
    src = subset_copy(corpus[0], tmp_path)
    (src / "84/121123/84-121123-0001.flac").unlink()
    assert prepare(src, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "84-121123.trans.txt: 1 transcript id(s) without a .flac" in err and "84-121123-0001" in err

    assert prepare(src, tmp_path / "out", "--skip-missing") == 0
    assert "84-121123-0001" not in load_data_dir(tmp_path / "out").utt_ids


def test_flac_without_transcript_and_foreign_ids(tmp_path, corpus, capsys):
    src = subset_copy(corpus[0], tmp_path)
    chapter = src / "84/121123"
    shutil.copy(chapter / "84-121123-0000.flac", chapter / "84-121123-0007.flac")
    trans = src / "174/50561/174-50561.trans.txt"
    trans.write_text(trans.read_text() + "84-121123-0009 FROM ANOTHER CHAPTER\n174-50561-0000 TWICE\n")
    assert prepare(src, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert ".flac file(s) without a transcript line: 84-121123-0007" in err
    assert f"{trans}:3: '84-121123-0009' is not an utterance id of this chapter" in err
    assert f"{trans}:4: '174-50561-0000' appears twice (first on line 1)" in err


def test_speakers_file(tmp_path, corpus, capsys):
    src = subset_copy(corpus[0], tmp_path)
    assert prepare(src, tmp_path / "none", "--speakers", "", "--no-durations") == 0
    data = load_data_dir(tmp_path / "none")
    assert not data.has("spk2gender") and not data.has("utt2dur")
    bad = tmp_path / "SPEAKERS.TXT"
    bad.write_text("; comment\n84 | X | dev-clean | 1.0 | Someone\n")
    assert prepare(src, tmp_path / "out", "--speakers", str(bad)) == 1
    assert f"error: {bad}:2: sex of reader '84' is 'X'" in capsys.readouterr().err
    bad.write_text("84 | F | dev-clean | 1.0 | Someone\n")
    assert prepare(src, tmp_path / "out", "--speakers", str(bad)) == 1
    assert "reader '174'" in capsys.readouterr().err


def test_missing_src(tmp_path, capsys):
    assert prepare(tmp_path / "nowhere", tmp_path / "out") == 1
    assert "nowhere: no such folder" in capsys.readouterr().err


# ---- the recipe's configs ----


def discretizer_config(path: Path):
    """The discretizer's Config from its YAML, dispatched on `type` as toolkit.discretizers.base does (no model)."""
    values = load_yaml(path)
    kind = values.pop("type")
    if kind == "ssl_kmeans":
        from toolkit.discretizers import ssl_kmeans as module
    elif kind == "encodec":
        from toolkit.discretizers import encodec as module
    else:
        raise AssertionError(f"{path}: unexpected type {kind}")
    return from_dict(module.Config, values, str(path))


def test_recipe_configs_load():
    conf = RECIPE / "conf"
    for name in ("train_lm", "train_ce", "train_sld", "train_sld_release"):
        cfg = load_config(TrainConfig, conf / f"{name}.yaml")
        assert cfg.model.init_from == "gpt2-medium" and cfg.optim.lr == 3e-4 and cfg.epochs == 10
        assert cfg.optim.schedule == "linear" and cfg.optim.warmup_steps == 0 and cfg.optim.weight_decay == 0
        assert cfg.batching.max_sequences * cfg.optim.grad_accum == 64
        assert cfg.batching.max_sequences * cfg.batching.max_len <= cfg.batching.max_tokens
        assert cfg.loss.kind == name.split("_")[1]
    release = load_config(TrainConfig, conf / "train_sld_release.yaml")
    assert release.loss.release_compat and release.loss.alpha == 0.008
    # The release's sequences have no <bos>, and its time masking covers every input token, specials included.
    assert release.use_bos is False and release.time_mask_scope == "release"

    hubert = discretizer_config(conf / "discretizer/hubert_large_km2000.yaml")
    assert (hubert.model, hubert.layer, hubert.num_units) == ("facebook/hubert-large-ll60k", 23, 2000)
    assert hubert.fit_fraction == 0.1 and hubert.normalize is True
    k = hubert.kmeans
    assert (k.batch_size, k.n_init, k.max_iter, k.max_no_improvement) == (10000, 20, 100, 100)
    assert k.reassignment_ratio == 0.01
    wavlm = discretizer_config(conf / "discretizer/wavlm_large_km2000.yaml")
    assert (wavlm.model, wavlm.layer, wavlm.num_units) == ("microsoft/wavlm-large", 23, 2000)
    encodec = discretizer_config(conf / "discretizer/encodec_24khz.yaml")
    assert (encodec.model, encodec.bandwidth) == ("facebook/encodec_24khz", 6.0)

    tok = load_config(TokenizersConfig, conf / "tokenizer.yaml")
    assert not tok.units.dedup and tok.units.subwords and tok.units.vocab_size == 6000
    tok = load_config(TokenizersConfig, conf / "tokenizer_encodec.yaml")
    assert tok.units.vocab_size > tok.units.num_units == 8192
    assert load_config(DecodeConfig, conf / "decode.yaml").method == "greedy"
