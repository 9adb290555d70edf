"""Speech to text with a packed model: audio files or arrays in, transcripts out, batched.

    from toolkit.inference import Speech2Text

    model = Speech2Text.from_pretrained("exp/train_sld_mfcc_kmeans/model")   # a folder made by stage 10
    model.transcribe("a.wav")                       # one file -> one string
    model.transcribe(["a.wav", "b.flac"])           # a list -> a list
    model.transcribe(samples, sample_rate=8000)     # a float array in [-1, 1], any rate

The path from audio is the recipe's: the discretizer turns each utterance into units (resampled to its rate first),
the unit tokenizer and the vocabulary layout make the prompt `[<bos>] speech <speech_end>`, and the decoding of
stage 8 (toolkit.decode.search.decode_prompts) writes the text. On the recipe's own formatted audio it gives stage 8's
hypotheses.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from toolkit.audio import AudioError, load_audio, resample
from toolkit.config import load_config
from toolkit.decode.search import DecodeConfig, decode_prompts, too_long
from toolkit.device import resolve_device
from toolkit.discretizers.base import length_batches
from toolkit.discretizers.registry import load_discretizer
from toolkit.fileio import replace_dir
from toolkit.hardware import choose_precision
from toolkit.inference.pack import DECODE_CONFIG, DISCRETIZER_DIR, LM_DIR, SPEECH2TEXT, TOKENIZERS_DIR, read_manifest
from toolkit.models.speech_lm import load_speech_lm
from toolkit.tokenizers.sequences import Tokenizers, prompt

Audio = str | Path | np.ndarray
ENCODE_BATCH_SECONDS = 60.0  # audio per discretizer batch, as dump_units (stage 5) batches it


class Speech2Text:
    """A packed speech-to-text model, ready to transcribe. Build it with `from_pretrained`."""

    def __init__(
        self, folder: Path, discretizer, tokenizers: Tokenizers, model, cfg: DecodeConfig, use_bos: bool, device
    ):
        self.folder = folder
        self.discretizer = discretizer
        self.tokenizers = tokenizers
        self.model = model
        self.decode_config = cfg
        self.use_bos = use_bos
        self.device = device

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str = "cpu", decode_overrides: Sequence[str] = (), **decode_options
    ) -> Speech2Text:
        """Load a packed model. `device`: cpu, cuda, cuda:N or auto. Decoding follows the pack's decode.yaml,
        changed by `decode_options` (method="beam", beam_size=8, ...) or `KEY=VALUE` strings (`--set` style)."""
        folder = Path(folder)
        manifest = read_manifest(folder, SPEECH2TEXT)
        device = resolve_device(device)
        config_file = folder / DECODE_CONFIG
        cfg = load_config(DecodeConfig, config_file if config_file.is_file() else None, list(decode_overrides))
        cfg = dataclasses.replace(cfg, **decode_options)
        tokenizers = Tokenizers.load(folder / TOKENIZERS_DIR)
        discretizer = load_discretizer(folder / DISCRETIZER_DIR, device=device)
        model = load_speech_lm(folder / LM_DIR).to(device).eval()
        return cls(
            folder, discretizer, tokenizers, model, cfg, bool(manifest.get("use_bos", True)), torch.device(device)
        )

    def save_pretrained(self, out_dir: str | Path) -> None:
        """Copy the packed folder to out_dir (the model is not changed by use, so the folder is the model)."""
        out_dir = Path(out_dir)
        if out_dir.resolve() == self.folder.resolve():
            return
        tmp = out_dir.with_name(out_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.folder, tmp)
        replace_dir(tmp, out_dir)

    # ---- audio -> units -> prompts -> text ----

    def units(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Units of each utterance (float32 samples at the discretizer's rate), encoded in batches of similar length
        as stage 5 encodes them (the same length_batches)."""
        rate = self.discretizer.sample_rate
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(waves)
        for batch in length_batches({i: len(w) / rate for i, w in enumerate(waves)}, ENCODE_BATCH_SECONDS):
            for i, units in zip(batch, self.discretizer.encode_batch([waves[i] for i in batch], rate), strict=True):
                out[i] = units
        return out

    def transcribe(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, channel: int | None = None):
        """Transcripts of one utterance (a str) or of a list (a list of str).

        An utterance is a file path (any format soundfile reads, any sample rate) or a 1-D float array of samples in
        [-1, 1] at `sample_rate`. Multi-channel files are refused unless `channel` picks one (0-based).
        """
        single = isinstance(audio, str | Path | np.ndarray)
        items = [audio] if single else list(audio)
        waves = [self._wave(item, sample_rate, channel) for item in items]
        texts = self.transcribe_waves(waves)
        return texts[0] if single else texts

    def transcribe_waves(self, waves: Sequence[np.ndarray]) -> list[str]:
        """Transcripts of float32 utterances already at the discretizer's sample rate."""
        if not waves:
            return []
        layout = self.tokenizers.layout
        speech = self.tokenizers.units.encode_batch([u.tolist() for u in self.units(waves)])
        prompts = [prompt(layout.speech_ids(s), layout, self.use_bos) for s in speech]
        skipped = too_long(self.model, prompts)
        if skipped:
            raise ValueError(
                f"{len(skipped)} utterance(s) are too long for the model ({len(prompts[min(skipped)])} prompt tokens); "
                "cut the audio into shorter pieces"
            )
        choice = choose_precision(self.decode_config.precision, self.device, cpu_matmul_bound=False)
        hyps = decode_prompts(self.model, prompts, layout, self.decode_config, choice.precision, self.device)
        return [self.tokenizers.text.decode([t - layout.text_offset for t in h]) for h in hyps]

    def _wave(self, item: Audio, sample_rate: int | None, channel: int | None) -> np.ndarray:
        if isinstance(item, np.ndarray):
            if sample_rate is None:
                raise ValueError("an array of samples needs its sample_rate")
            if item.ndim != 1:
                raise ValueError(f"expected a 1-D array of samples, got shape {tuple(item.shape)}")
            return self.prepare(item.astype(np.float32, copy=False), sample_rate, "array")
        wave, rate = read_wave(str(item), channel)
        return self.prepare(wave, rate, str(item))

    def prepare(self, wave: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
        """Samples at the discretizer's rate; an utterance too short for a single unit frame is an error."""
        wave = resample(wave, sample_rate, self.discretizer.sample_rate)
        if len(wave) < self.discretizer.sample_rate / self.discretizer.frame_rate:
            raise AudioError(None, name, f"{len(wave) / self.discretizer.sample_rate:.3f} s is too short for one frame")
        return wave


def read_wave(spec: str, channel: int | None = None, uttid: str | None = None) -> tuple[np.ndarray, int]:
    """A file (or a wav.scp entry) as mono float32 samples and its rate; `channel` picks one of several channels."""
    wave, rate = load_audio(spec, uttid=uttid, mono=False)
    if wave.ndim == 1:
        wave = wave[:, None]
    if wave.shape[1] > 1 and channel is None:
        raise AudioError(uttid, spec, f"{wave.shape[1]} channels; pick one with --channel N (0-based)")
    if channel is not None and channel >= wave.shape[1]:
        raise AudioError(uttid, spec, f"--channel {channel} but the audio has {wave.shape[1]} channels")
    return np.ascontiguousarray(wave[:, channel or 0]), rate
