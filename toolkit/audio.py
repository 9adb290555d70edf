"""Audio I/O for data dirs: wav.scp entries (paths or `command |` pipes), segments, resampling, speed perturbation.

Reading goes through soundfile (wav, flac, ogg); torchaudio is used only for its resampler. Every error is an
AudioError that names the utterance and the path, so a user can find the bad file among thousands.

A wav.scp value ending in `|` is run by a shell (Kaldi's convention): whoever writes the wav.scp chooses the command.
Each command gets PIPE_TIMEOUT_S seconds (environment variable TOOLKIT_PIPE_TIMEOUT) before it is killed.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf


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


PIPE_TIMEOUT_S = 600.0
# A segment may end this far past its recording (rounding of the end time); further is an error, not a silent cut.
SEGMENT_OVERSHOOT_S = 0.05


def pipe_timeout() -> float:
    value = os.environ.get("TOOLKIT_PIPE_TIMEOUT", "")
    try:
        return float(value) if value else PIPE_TIMEOUT_S
    except ValueError:
        raise ValueError(f"TOOLKIT_PIPE_TIMEOUT='{value}' is not a number of seconds") from None


def _run_pipe(spec: str, uttid: str | None) -> bytes:
    command = spec.rstrip()[:-1]
    timeout = pipe_timeout()
    # Its own process group, so that a timeout kills the whole pipeline, not only the shell in front of it.
    proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AudioError(
            uttid, spec, f"command did not finish in {timeout:g} s and was killed (TOOLKIT_PIPE_TIMEOUT sets the limit)"
        ) from None
    if proc.returncode != 0:
        err = stderr.decode("utf-8", "replace").strip().splitlines()
        tail = err[-1] if err else "no message"
        raise AudioError(uttid, spec, f"command exited with status {proc.returncode}: {tail}")
    if not stdout:
        raise AudioError(uttid, spec, "command wrote no audio to stdout")
    return stdout


def _wav_truncation(path: str, frame_bytes: int) -> tuple[int, int] | None:
    """(declared, present) frames of a RIFF/WAVE file whose data chunk is cut short, else None.

    libsndfile quietly shortens such a file to the bytes present, so a copy cut off mid-transfer would read as a
    brief utterance; its header still says how long it should be. Sizes 0 and 0xFFFFFFFF are streaming
    placeholders (written by tools that cannot seek back), not claims.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                present = size - f.tell()
                if length in (0, 0xFFFFFFFF) or present >= length or frame_bytes <= 0:
                    return None
                return length // frame_bytes, present // frame_bytes
            f.seek(length + (length & 1), os.SEEK_CUR)


def _check_complete(source, spec: str, uttid: str | None, info) -> None:
    if not isinstance(source, str) or info.format not in ("WAV", "WAVEX"):
        return
    bits = {"PCM_U8": 8, "PCM_S8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64}
    if info.subtype not in bits:
        return
    cut = _wav_truncation(source, info.channels * bits[info.subtype] // 8)
    if cut is not None:
        declared, present = cut
        raise AudioError(
            uttid,
            spec,
            f"truncated: the header declares {declared / info.samplerate:.3f} s of audio but the file holds "
            f"{present / info.samplerate:.3f} s; copy the file again",
        )


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
    _check_complete(source, spec, uttid, info)
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

    start/end are seconds (a `segments` line); end=None or end<0 reads to the end. An end more than
    SEGMENT_OVERSHOOT_S past the audio is an error: the segments file and the audio disagree. With mono=True a
    multi-channel file is an error rather than silently mixed: Kaldi data dirs hold one channel per entry.
    NaN or infinite samples, and a WAV file shorter than its header says, are errors too.
    """
    source = _open_source(spec, uttid)
    try:
        with sf.SoundFile(source) as f:
            _check_complete(source, spec, uttid, f)
            sr = f.samplerate
            length = f.frames / sr
            first = 0 if start is None else int(round(start * sr))
            if first < f.frames and end is not None and end >= 0 and end > length + SEGMENT_OVERSHOOT_S:
                raise AudioError(
                    uttid, spec, f"segment {start}-{end} s ends past the audio (length {length:.3f} s); fix segments"
                )
            last = f.frames if end is None or end < 0 else min(int(round(end * sr)), f.frames)
            if first >= f.frames or last <= first:
                raise AudioError(uttid, spec, f"segment {start}-{end} s is outside the audio (length {length:.3f} s)")
            f.seek(first)
            wave = f.read(last - first, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(uttid, spec, f"cannot decode the audio ({e})") from None
    if wave.shape[0] == 0:
        raise AudioError(uttid, spec, "the audio has no samples (empty or truncated file)")
    finite = np.isfinite(wave)
    if not finite.all():
        bad = int((~finite).sum())
        at = int(np.argmax(~finite.all(axis=1)))
        raise AudioError(
            uttid, spec, f"{bad} samples are NaN or infinite (the first at {(first + at) / sr:.3f} s); fix the audio"
        )
    if mono:
        if wave.shape[1] != 1:
            raise AudioError(uttid, spec, f"expected mono audio, found {wave.shape[1]} channels")
        wave = wave[:, 0]
    return wave, sr


def resample(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc); a no-op when the rates match."""
    if orig_sr == new_sr:
        return wave
    # Imported here: reading and checking audio must not pay torch's import time (every CLI's --help, validation).
    import torch
    import torchaudio.functional

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
