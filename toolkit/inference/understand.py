"""Spoken language understanding with a packed model: audio in, one label per task out (intent, slots, emotion).

    from toolkit.inference import Understand

    model = Understand.from_pretrained("exp/slu_pad_slocal/model")      # a folder made by the SLU recipe's stage 8
    model.predict("a.wav")                     # {"ic": "activate|lights|kitchen", "sf": "turn on the B-object ..."}
    model.predict(["a.wav", "b.flac"])         # a list of such dicts
    model.predict(samples, sample_rate=8000)   # a 1-D float array in [-1, 1]

Labels have the format of the task's table (utt2intent, text.slots, utt2emotion), as stage 6 writes them. The path is
stage 6's: the frozen upstream's hidden states, batched by length under the same audio budget, then each head.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolkit.audio import AudioError, resample
from toolkit.device import resolve_device
from toolkit.hardware import autocast, choose_precision
from toolkit.inference.pack import HEAD_META, HEAD_WEIGHTS, HEADS_DIR, UNDERSTAND, read_manifest
from toolkit.inference.speech2text import Audio, read_wave

BATCH_SECONDS = 200.0  # padded audio per upstream forward: toolkit.bin.infer_downstream's default


class Understand:
    """A packed SLU model, ready to predict. Build it with `from_pretrained`."""

    def __init__(self, folder: Path, upstream, tasks: dict, precision: str):
        self.folder = folder
        self.upstream = upstream
        self.tasks = tasks  # kind -> toolkit.models.downstream_task.DownstreamTask
        self.precision = precision

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str = "cpu") -> Understand:
        from safetensors.torch import load_file

        from toolkit.models.downstream_task import load_task
        from toolkit.models.reference_upstreams import load_upstream

        folder = Path(folder)
        manifest = read_manifest(folder, UNDERSTAND)
        device = resolve_device(device)
        spec = str(manifest["upstream"])
        upstream = load_upstream(str(folder / spec) if (folder / spec).is_dir() else spec, device=device)
        if getattr(upstream, "reads_text", False):
            raise ValueError(f"{folder}: its upstream reads transcripts, not audio")
        tasks, trained = {}, set()
        for kind in manifest.get("tasks", []):
            head_dir = folder / HEADS_DIR / kind
            meta = json.loads((head_dir / HEAD_META).read_text(encoding="utf-8"))
            state = {**meta, "head": load_file(str(head_dir / HEAD_WEIGHTS), device="cpu")}
            task, _ = load_task(head_dir / HEAD_WEIGHTS, upstream.num_layers, upstream.dim, state)
            task.head.to(device)
            tasks[kind] = task
            trained.add(meta.get("precision", "fp32"))
        if not tasks:
            raise ValueError(f"{folder}: the manifest names no task heads")
        # As stage 6: this host's choice (auto), or fp32 where a head was trained in fp32.
        choice = choose_precision("fp32" if "fp32" in trained else "auto", device, ("fp32", "bf16"))
        return cls(folder, upstream, tasks, choice.precision)

    def predict(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None, channel: int | None = None):
        """{task: label} for one utterance, or a list of them for a list (files or 1-D arrays at `sample_rate`)."""
        single = isinstance(audio, str | Path | np.ndarray)
        items = [audio] if single else list(audio)
        waves = []
        for item in items:
            if isinstance(item, np.ndarray):
                if sample_rate is None:
                    raise ValueError("an array of samples needs its sample_rate")
                if item.ndim != 1:
                    raise ValueError(f"expected a 1-D array of samples, got shape {tuple(item.shape)}")
                waves.append(self.prepare(item.astype(np.float32, copy=False), sample_rate, "array"))
            else:
                wave, rate = read_wave(str(item), channel)
                waves.append(self.prepare(wave, rate, str(item)))
        results = self.predict_waves(waves)
        return results[0] if single else results

    def prepare(self, wave: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
        """Samples at the upstream's rate; an utterance shorter than one frame is an error."""
        wave = resample(wave, sample_rate, self.upstream.sample_rate)
        if len(wave) < self.upstream.sample_rate / self.upstream.frame_rate:
            raise AudioError(None, name, f"{len(wave) / self.upstream.sample_rate:.3f} s is too short for one frame")
        return wave

    def predict_waves(self, waves: Sequence[np.ndarray], ids: Sequence[str] | None = None) -> list[dict[str, str]]:
        """{task: label} per utterance (float32 samples at the upstream's rate), batched by length as stage 6."""
        from toolkit.train.data import make_batches

        ids = list(ids) if ids is not None else [f"utterance {i}" for i in range(len(waves))]
        rate = self.upstream.frame_rate
        lengths = [max(1, round(len(w) / self.upstream.sample_rate * rate)) for w in waves]
        budget = int(max(BATCH_SECONDS, max(len(w) for w in waves) / self.upstream.sample_rate) * rate)
        results: list[dict[str, str]] = [{} for _ in waves]
        for batch in make_batches(lengths, budget, 0, 0, None, shuffle=False):
            with autocast(self.precision, self.upstream.device):
                hidden, mask = self.upstream([waves[i] for i in batch], [ids[i] for i in batch])
            hidden = hidden.float()
            for kind, task in self.tasks.items():
                for i, label in zip(batch, task.predict(hidden, mask), strict=True):
                    results[i][kind] = label
        return results
