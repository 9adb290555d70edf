"""Packed models and inference from audio, on a tiny trained run and an MFCC k-means discretizer fitted on tones.

The transcripts of so small a model mean nothing; what is tested is the path: packing, loading from anywhere,
files and arrays at any rate, the same units as stage 5, the CLI and its errors. test/integration/test_mini_synth.py
checks that a recipe's packed model gives stage 8's hypotheses.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from toolkit.bin.dump_units import main as dump_units_main
from toolkit.bin.pack_model import main as pack_main
from toolkit.bin.train import main as train_main
from toolkit.bin.transcribe import main as transcribe_main
from toolkit.discretizers.registry import fit_discretizer
from toolkit.fileio import read_table
from toolkit.inference import Speech2Text
from toolkit.inference.pack import MANIFEST

from conftest import build_data_dir, tone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from tiny_corpus import build, train_config  # noqa: E402


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tiny LM trained on the tiny corpus (units 0..19), packed with a 20-unit MFCC k-means discretizer."""
    root = tmp_path_factory.mktemp("pack")
    corpus = build(root, train_utts=60, dev_utts=10)
    run = root / "exp/run"
    args = ["--config", str(train_config(root / "c.yaml", epochs=1)), "--train", str(corpus["train"])]
    args += ["--valid", str(corpus["dev"]), "--tokenizers", str(corpus["tokenizers"]), "--out", str(run)]
    assert train_main([*args, "--device", "cpu"]) == 0
    data = build_data_dir(root, "audio_data", num_utts=6)
    fit_discretizer("mfcc_kmeans", [data], root / "exp/discretizer", {"num_units": 20, "fit_fraction": 1.0})
    decode = root / "decode.yaml"
    decode.write_text(yaml.safe_dump({"method": "greedy"}))
    out = root / "exp/run/model"
    argv = ["--exp", str(run), "--discretizer", str(root / "exp/discretizer"), "--decode-config", str(decode)]
    assert pack_main([*argv, "--out", str(out), "--command", "./run.sh --stage 1"]) == 0
    return {"root": root, "model": out, "data": data}


def test_the_pack_is_self_contained_and_has_a_card(packed):
    model = packed["model"]
    assert (model / MANIFEST).is_file() and (model / "lm/model.safetensors").is_file()
    card = (model / "README.md").read_text()
    assert "python -m toolkit.bin.transcribe --model model" in card and "./run.sh --stage 1" in card
    # No file that loading reads names a path outside the pack (the fit's own records, fit_info.yaml and the
    # training config, may: they say where the model came from).
    root = str(packed["root"])
    read = [MANIFEST, "README.md", "discretizer/config.yaml", "lm/config.json", "tokenizers/vocab.json"]
    read += [str(p.relative_to(model)) for p in (model / "tokenizers").rglob("config.yaml")]
    for name in read:
        assert root not in (model / name).read_text(), name


def test_transcribe_after_the_pack_moved(packed, tmp_path):
    wav = Path(read_table(packed["data"] / "wav.scp")["spk0-utt000"])
    before = Speech2Text.from_pretrained(packed["model"]).transcribe(wav)
    moved = tmp_path / "elsewhere/model"
    shutil.copytree(packed["model"], moved)
    shutil.rmtree(packed["root"] / "exp/discretizer")  # the original discretizer is gone too
    model = Speech2Text.from_pretrained(moved)
    assert isinstance(before, str) and model.transcribe(wav) == before
    assert model.transcribe([wav, wav]) == [before, before]


def test_units_match_stage_5_and_rates_are_resampled(packed, tmp_path):
    model = Speech2Text.from_pretrained(packed["model"])
    out = tmp_path / "units"
    assert (
        dump_units_main(
            [
                "--discretizer",
                str(packed["model"] / "discretizer"),
                "--data",
                str(packed["data"]),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    dumped = {u: [int(x) for x in v.split()] for u, v in read_table(out).items()}
    scp = read_table(packed["data"] / "wav.scp")
    waves = [sf.read(scp[u], dtype="float32")[0] for u in sorted(scp)]
    for utt, units in zip(sorted(scp), model.units(waves), strict=True):
        assert units.tolist() == dumped[utt]
    # The same tone at 8 kHz (an array) and at 44.1 kHz (a FLAC file): resampled to the model's rate, not refused.
    flac = tmp_path / "tone.flac"
    sf.write(flac, tone(1.0, 44100), 44100, subtype="PCM_24")
    assert isinstance(model.transcribe(flac), str)
    assert isinstance(model.transcribe(tone(1.0, 8000), sample_rate=8000), str)


def test_bad_inputs_are_named(packed, tmp_path):
    model = Speech2Text.from_pretrained(packed["model"])
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, tone(0.5, 16000, channels=2), 16000)
    with pytest.raises(Exception, match="2 channels; pick one"):
        model.transcribe(stereo)
    assert isinstance(model.transcribe(stereo, channel=1), str)
    with pytest.raises(ValueError, match="needs its sample_rate"):
        model.transcribe(np.zeros(16000, dtype=np.float32))
    with pytest.raises(Exception, match="too short for one frame"):
        model.transcribe(np.zeros(10, dtype=np.float32), sample_rate=16000)
    with pytest.raises(FileNotFoundError, match="not a packed model"):
        Speech2Text.from_pretrained(tmp_path)


def test_cli_prints_ids_and_texts_and_writes_files(packed, tmp_path, capsys):
    scp = packed["data"] / "wav.scp"
    assert transcribe_main(["--model", str(packed["model"]), "--wav-scp", str(scp), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(read_table(scp))
    out = tmp_path / "hyp/text"
    wav = read_table(scp)["spk1-utt001"]
    argv = ["--model", str(packed["model"]), wav, "--out", str(out), "--method", "beam", "--beam-size", "2"]
    assert transcribe_main(argv) == 0
    assert list(read_table(out, allow_empty_value=True)) == ["spk1-utt001"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.wav"], "missing.wav: no such file"),
        (["--set", "beam_size=0", "A"], "beam_size must be at least 1"),
        (["A", "A"], "the id 'spk1-utt001' is taken"),
    ],
)
def test_cli_errors(packed, capsys, argv, message):
    wav = read_table(packed["data"] / "wav.scp")["spk1-utt001"]
    argv = [wav if a == "A" else a for a in argv]
    assert transcribe_main(["--model", str(packed["model"]), *argv]) == 1
    assert message in capsys.readouterr().err


def test_a_real_recording_at_another_rate(packed):
    # No recorded speech is available offline; CPython's test suite ships a real recording (a plucked string,
    # stereo 32-bit PCM at 11,025 Hz), which exercises reading, channel choice and resampling of a real file.
    recording = Path(sysconfig.get_paths()["stdlib"]) / "test/audiodata/pluck-pcm32.wav"
    if not recording.is_file():
        pytest.skip(f"{recording} is not installed with this Python")
    model = Speech2Text.from_pretrained(packed["model"])
    assert isinstance(model.transcribe(recording, channel=0), str)
