"""train_tokenizers and make_sequences entry points: outputs on good input, `error: ...`, exit 1, nothing left over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from toolkit.bin import make_sequences, train_tokenizers
from toolkit.fileio import read_table
from toolkit.tokenizers.sequences import Tokenizers
from toolkit.tokenizers.vocab import VocabLayout

REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["turn on the light", "set an alarm for seven", "play some music", "what is the weather today"]


def inputs(tmp_path: Path, n: int = 40) -> dict[str, str]:
    text = "".join(f"utt{i:03d} {SENTENCES[i % 4]}\n" for i in range(n))
    units = "".join(f"utt{i:03d} {' '.join(str((i + j // 3) % 12) for j in range(30))}\n" for i in range(n))
    config = {"text": {"kind": "sentencepiece", "model_type": "unigram", "vocab_size": 30}, "units": {"dedup": True}}
    paths = {"text": tmp_path / "text", "units": tmp_path / "units", "config": tmp_path / "tokenizer.yaml"}
    paths["text"].write_text(text)
    paths["units"].write_text(units)
    paths["config"].write_text(yaml.safe_dump(config))
    return {k: str(v) for k, v in paths.items()}


def train_args(f: dict[str, str], out: Path, *extra: str) -> list[str]:
    return ["--config", f["config"], "--text", f["text"], "--units", f["units"], "--out", str(out), *extra]


def test_train_then_make_sequences(tmp_path, capsys):
    f = inputs(tmp_path)
    out = tmp_path / "tok"
    assert (
        train_tokenizers.main(train_args(f, out, "--set", "units.subwords=true", "--set", "units.vocab_size=20")) == 0
    )
    assert (
        capsys.readouterr().out
        == f"{out}: text 30 tokens (sentencepiece), speech K=20 (12 units, dedup -> subwords), vocabulary 55\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "text", "units", "vocab.json"]
    assert VocabLayout.load(out / "vocab.json") == VocabLayout(text_size=30, speech_size=20)
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["units"]["num_units"] == 12 and resolved["units"]["subwords"] is True
    assert not (tmp_path / "tok.tmp").exists()

    seq = tmp_path / "seq"
    args = ["--tokenizers", str(out), "--units", f["units"], "--text", f["text"], "--out", str(seq)]
    assert make_sequences.main(args) == 0
    assert capsys.readouterr().out.startswith(f"{seq}: 40 utterances, mean ")
    tokenizers = Tokenizers.load(out)
    speech = read_table(seq / "speech")
    assert len(speech) == 40
    assert all(tokenizers.layout.is_speech(int(t)) for v in speech.values() for t in v.split())
    assert json.loads((seq / "stats.json").read_text())["units_removed_by_dedup"] == 40 * 20

    # A rerun replaces the previous tokenizer directory.
    assert train_tokenizers.main(train_args(f, out)) == 0
    assert VocabLayout.load(out / "vocab.json").speech_size == 12


def test_unknown_config_keys(tmp_path, capsys):
    f = inputs(tmp_path, 8)
    out = tmp_path / "tok"
    Path(f["config"]).write_text("text: {kind: char}\nunits: {dedupe: true}\n")
    assert train_tokenizers.main(train_args(f, out)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {f['config']}.units: unknown key 'dedupe' (known: ")
    Path(f["config"]).write_text("text: {kind: char}\n")
    assert train_tokenizers.main(train_args(f, out, "--set", "text.vocab_sz=3")) == 1
    assert "unknown key 'vocab_sz'" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "tok.tmp").exists()


def test_train_errors(tmp_path, capsys):
    f = inputs(tmp_path, 8)
    out = tmp_path / "tok"
    Path(f["units"]).write_text("utt000 1 2\nutt001 1 two\n")
    assert train_tokenizers.main(train_args(f, out)) == 1
    assert capsys.readouterr().err == f"error: {f['units']}:2: 'utt001': unit 'two' is not an integer\n"
    missing = str(tmp_path / "nope")
    assert train_tokenizers.main(["--text", missing, "--units", f["units"], "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"error: {missing}: No such file or directory\n"
    Path(f["units"]).write_text("utt000 1 2\n")
    assert train_tokenizers.main(train_args(f, out, "--set", "text.vocab_size=500")) == 1
    assert "text.vocab_size=500: SentencePiece found only" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "tok.tmp").exists()
    # Something that is not a tokenizer directory is never replaced.
    out.mkdir()
    (out / "precious").write_text("x")
    assert train_tokenizers.main(train_args(f, out, "--set", "text.kind=char")) == 1
    assert "is not a tokenizer directory" in capsys.readouterr().err and (out / "precious").exists()


def test_make_sequences_errors(tmp_path, capsys):
    f = inputs(tmp_path, 8)
    tok = tmp_path / "tok"
    assert train_tokenizers.main(train_args(f, tok, "--set", "text.kind=char")) == 0
    seq = tmp_path / "seq"
    Path(f["units"]).write_text("utt000 1 2\nutt001 1 99\n")
    args = ["--tokenizers", str(tok), "--units", f["units"], "--text", f["text"], "--out", str(seq)]
    assert make_sequences.main(args) == 1
    assert capsys.readouterr().err == f"error: {f['units']}:2: 'utt001': unit 99 is outside 0..11 (num_units=12)\n"
    assert not seq.exists()
    args[1] = str(tmp_path / "missing")
    assert make_sequences.main(args) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'missing' / 'text' / 'config.yaml'}: ")


def test_module_entry_point_has_no_traceback(tmp_path):
    f = inputs(tmp_path, 4)
    Path(f["config"]).write_text("speech: {}\n")
    cmd = [sys.executable, "-m", "toolkit.bin.train_tokenizers", *train_args(f, tmp_path / "tok")]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {f['config']}: unknown key 'speech'") and "Traceback" not in result.stderr
