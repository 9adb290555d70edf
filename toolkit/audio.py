"""Audio I/O for data dirs: wav.scp entries (paths or `command |` pipes), segments, resampling, speed perturbation.

Reading goes through soundfile (wav, flac, ogg); torchaudio is used only for its resampler. Every error is an
AudioError that names the utterance and the path, so a user can find the bad file among thousands.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional


class AudioError(RuntimeError):
    """Audio that cannot be read or is not what the data dir says; names the utterance and the path."""

    def __init__(self, uttid: str | None, spec: str, message: str):
        self.uttid = uttid
        self.spec = spec
        self.message = message
        where = f"utterance '{uttid}': " if uttid else ""
        super().__init__(f"{where}{spec}: {message}")


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def is_pipe(spec: str) -> bool:
    """A wav.scp value ending in `|` is a shell command whose stdout is the audio (Kaldi convention)."""
    return spec.rstrip().endswith("|")


def _run_pipe(spec: str, uttid: str | None) -> bytes:
    command = spec.rstrip()[:-1]
    proc = subprocess.run(command, shell=True, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        tail = err[-1] if err else "no message"
        raise AudioError(uttid, spec, f"command exited with status {proc.returncode}: {tail}")
    if not proc.stdout:
        raise AudioError(uttid, spec, "command wrote no audio to stdout")
    return proc.stdout


def _open_source(spec: str, uttid: str | None):
    """A path or a file-like object for soundfile; pipes are run and buffered in memory."""
    if is_pipe(spec):
        return io.BytesIO(_run_pipe(spec, uttid))
    path = spec.strip()
    if not os.path.exists(path):
        raise AudioError(uttid, path, "file does not exist")
    if not os.path.isfile(path):
        raise AudioError(uttid, path, "not a regular file")
    return path


def audio_info(spec: str, uttid: str | None = None) -> AudioInfo:
    """Header information of a wav.scp entry, without decoding the samples (pipes are run)."""
    source = _open_source(spec, uttid)
    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(uttid, spec, f"cannot read the audio header ({e}); is it a wav/flac file?") from None
    if info.frames <= 0:
        raise AudioError(uttid, spec, "the audio has no samples (empty or truncated file)")
    return AudioInfo(info.samplerate, info.channels, info.frames, info.format, info.subtype)


def load_audio(
    spec: str,
    uttid: str | None = None,
    start: float | None = None,
    end: float | None = None,
    mono: bool = True,
) -> tuple[np.ndarray, int]:
    """Read a wav.scp entry as float32 samples in [-1, 1] and its sample rate.

    start/end are seconds (a `segments` line); end=None or end<0 reads to the end. With mono=True a
    multi-channel file is an error rather than silently mixed: Kaldi data dirs hold one channel per entry.
    """
    source = _open_source(spec, uttid)
    try:
        with sf.SoundFile(source) as f:
            sr = f.samplerate
            first = 0 if start is None else int(round(start * sr))
            last = f.frames if end is None or end < 0 else min(int(round(end * sr)), f.frames)
            if first >= f.frames or last <= first:
                raise AudioError(
                    uttid, spec, f"segment {start}-{end} s is outside the audio (length {f.frames / sr:.3f} s)"
                )
            f.seek(first)
            wave = f.read(last - first, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(uttid, spec, f"cannot decode the audio ({e})") from None
    if wave.shape[0] == 0:
        raise AudioError(uttid, spec, "the audio has no samples (empty or truncated file)")
    if mono:
        if wave.shape[1] != 1:
            raise AudioError(uttid, spec, f"expected mono audio, found {wave.shape[1]} channels")
        wave = wave[:, 0]
    return wave, sr


def resample(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc); a no-op when the rates match."""
    if orig_sr == new_sr:
        return wave
    tensor = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return torchaudio.functional.resample(tensor, orig_sr, new_sr).numpy()


def speed_perturb(wave: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Change speed and pitch together by `factor` (sox's `speed`): 1.1 is 10% faster and shorter.

    The samples are reinterpreted as recorded at sr*factor and resampled back to sr.
    """
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return wave
    # Integer rates in the ratio of the factor (0.9 -> 9:10); the resampler works on their reduced ratio.
    ratio = Fraction(factor).limit_denominator(1000)
    return resample(wave, ratio.numerator, ratio.denominator)


def write_wav(path: str | Path, wave: np.ndarray, sr: int) -> None:
    """Write 16-bit PCM wav atomically (temporary file, then rename), clipping to [-1, 1]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, np.clip(wave, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
