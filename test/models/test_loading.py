"""Damaged model and vocabulary files are errors that name the file, not library tracebacks."""

import pytest
from transformers import GPT2Config, GPT2LMHeadModel

from toolkit.models.speech_lm import load_speech_lm
from toolkit.tokenizers.vocab import VocabLayout


def test_a_truncated_safetensors_file_is_named(tmp_path):
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"{tmp_path}: the speech LM's weights cannot be read .* cut short"):
        load_speech_lm(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [('{"text_size": 3,', "not a valid vocabulary file"), ('{"text_size": 3}', "missing or malformed 'speech_size'")],
)
def test_a_broken_vocab_json_names_the_file(tmp_path, content, message):
    (tmp_path / "vocab.json").write_text(content)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'vocab.json'}: .*{message}"):
        VocabLayout.load(tmp_path / "vocab.json")


def test_a_crafted_head_is_refused_and_runs_nothing(tmp_path):
    from pathlib import Path

    import torch

    from toolkit.fileio import UnsafeCheckpointError
    from toolkit.models.downstream_task import read_task

    witness = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (witness,))

    torch.save({"kind": "ic", "head": {}, "extra": Payload()}, tmp_path / "head.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"head.pt: refusing to load it: .* could run code"):
        read_task(tmp_path / "head.pt")
    assert not witness.exists()
