"""In-process speech synthesis with libespeak-ng (shipped by the `espeakng_loader` wheel) through ctypes.

Only what the embedded corpus needs: pick a voice, set rate/pitch/range/word gap, synthesise a text and get back
the waveform plus espeak's phoneme events (mnemonic and start sample).

Determinism: libespeak-ng keeps synthesis state in static variables (e.g. the pitch-flutter index and the
waveform phase) that survive espeak_Terminate/espeak_Initialize, so the same text and voice give slightly different
audio (and lengths) depending on what was synthesised before. To make an utterance's audio a function of its inputs
alone, every call loads a fresh copy of the library's state: dlclose + dlopen + espeak_Initialize, which costs about
2 ms. The Klatt variants also draw noise from libc's rand(), so each call seeds it (and espeak's own generator).
"""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# espeak_AUDIO_OUTPUT: synchronous, samples handed to the callback.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_Initialize options: bit 0 enables phoneme events; 0x8000 stops espeak from calling exit() on bad data.
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
# Callback buffer length in ms; longer buffers mean fewer Python callbacks per utterance.
_BUFFER_MS = 500
# espeak_EVENT_TYPE values used here.
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
# espeak_PARAMETER values.
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7
# Amplitude 0-200 (default 100): at 100 some voices (en-gb-scotland, klatt4, linda) clip int16 a little, so
# synthesise quieter and leave loudness to the caller.
_VOLUME = 60
# espeak_POSITION_TYPE POS_CHARACTER, and espeakCHARS_UTF8 for espeak_Synth's flags.
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_NOT_FOUND = 2


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded or failed while synthesising."""


class _Event(ctypes.Structure):
    # espeak_EVENT from speak_lib.h; `id` is a union whose largest member is char[8] (phoneme mnemonic).
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """An espeak voice: base language voice, optional variant (voices/!v/<variant>) and prosody settings.

    rate is in words per minute (80-450, espeak's default 175); pitch and pitch_range are espeak's 0-99 scales
    (50 = the voice's own); word_gap adds pauses between words in units of 10 ms.
    """

    base: str = "en-us"
    variant: str | None = None
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    word_gap: int = 0

    @property
    def name(self) -> str:
        """The name espeak_SetVoiceByName takes, e.g. "en-us+m3"."""
        return f"{self.base}+{self.variant}" if self.variant else self.base

    def describe(self) -> str:
        """One-line `key=value` description (used for spk2voice)."""
        return (
            f"base={self.base} variant={self.variant or 'none'} rate={self.rate} pitch={self.pitch} "
            f"range={self.pitch_range} wordgap={self.word_gap}"
        )


@dataclass(frozen=True)
class PhoneEvent:
    """A phoneme event: espeak's mnemonic (stress marks kept, e.g. "'E") and its first sample."""

    phone: str
    start: int


@dataclass(frozen=True)
class Synthesis:
    """float32 samples in [-1, 1] at `sample_rate`, and the phoneme events in time order."""

    samples: np.ndarray
    sample_rate: int
    phones: tuple[PhoneEvent, ...]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def data_path() -> Path:
    """The espeak-ng-data folder of the espeakng_loader wheel."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


@lru_cache(maxsize=1)
def list_variants() -> tuple[str, ...]:
    """Names of the voice variants shipped in espeak-ng-data/voices/!v (case-sensitive, as espeak matches them)."""
    return tuple(sorted(p.name for p in (data_path() / "voices" / "!v").iterdir() if p.is_file()))


class _Engine:
    """Owns the loaded library; one synthesis at a time (espeak's state is global to the process)."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lib_path = espeakng_loader.get_library_path()
        self._data = str(data_path()).encode()
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._chunks: list[np.ndarray] = []
        self._events: list[PhoneEvent] = []
        # Kept as an attribute: ctypes callbacks must outlive every call that may invoke them.
        self._callback = _CALLBACK(self._on_audio)
        self._libc = ctypes.CDLL(None)
        self.sample_rate = self._load()
        self._unload()

    def _on_audio(self, wav, num_samples: int, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.frombuffer(ctypes.string_at(wav, num_samples * 2), dtype=np.int16).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                # `sample` is the exact sample index; audio_position is the same in whole milliseconds.
                self._events.append(PhoneEvent(ev.id.decode("ascii", errors="replace"), int(ev.sample)))
            i += 1
        return 0  # 0 = keep synthesising

    def _load(self) -> int:
        try:
            lib = ctypes.CDLL(self._lib_path, mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise EspeakError(f"cannot load libespeak-ng from {self._lib_path}: {e}") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, self._data, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
        )
        if rate <= 0:
            _ctypes.dlclose(lib._handle)
            raise EspeakError(f"espeak_Initialize failed ({rate}) with data path {self._data.decode()}")
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        return rate

    def _unload(self) -> None:
        if self._lib is not None:
            self._lib.espeak_Terminate()
            # Unmapping the library is what resets its static state (see the module docstring).
            _ctypes.dlclose(self._lib._handle)
            self._lib = None

    def synthesize(self, text: str, voice: Voice, seed: int) -> Synthesis:
        with self._lock:
            self._load()
            try:
                return self._synthesize(text, voice, seed)
            finally:
                self._unload()
                self._chunks, self._events = [], []

    def _synthesize(self, text: str, voice: Voice, seed: int) -> Synthesis:
        lib = self._lib
        assert lib is not None
        status = lib.espeak_SetVoiceByName(voice.name.encode())
        if status == _EE_NOT_FOUND:
            raise ValueError(f"unknown espeak voice {voice.base!r} (voice name {voice.name!r})")
        if status != 0:
            raise EspeakError(f"espeak_SetVoiceByName({voice.name!r}) failed with status {status}")
        for param, value in (
            (_PARAM_VOLUME, _VOLUME),
            (_PARAM_RATE, voice.rate),
            (_PARAM_PITCH, voice.pitch),
            (_PARAM_RANGE, voice.pitch_range),
            (_PARAM_WORDGAP, voice.word_gap),
        ):
            if lib.espeak_SetParameter(param, value, 0) != 0:
                raise EspeakError(f"espeak_SetParameter({param}, {value}) failed")
        lib.espeak_ng_SetRandSeed(seed)
        self._libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        data = text.encode("utf-8")
        status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0 or lib.espeak_Synchronize() != 0:
            raise EspeakError(f"espeak_Synth failed with status {status} for text {text!r}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        samples = pcm.astype(np.float32) / 32768.0
        # Events are emitted in order; clamp to the waveform in case the last pause event points past its end.
        phones = tuple(PhoneEvent(e.phone, min(max(e.start, 0), len(samples))) for e in self._events)
        return Synthesis(samples=samples, sample_rate=self.sample_rate, phones=phones)


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def native_sample_rate() -> int:
    """espeak's output sample rate (22050 Hz for the shipped voices), as reported by espeak_Initialize."""
    return _get_engine().sample_rate


def _check_voice(voice: Voice) -> None:
    if not voice.base or "+" in voice.base or any(c.isspace() for c in voice.base):
        raise ValueError(f"bad espeak base voice name {voice.base!r}")
    # espeak silently ignores an unknown variant, so check it against the shipped files ourselves.
    if voice.variant is not None and voice.variant not in list_variants():
        raise ValueError(f"unknown espeak voice variant {voice.variant!r} (see {data_path() / 'voices' / '!v'})")
    for field, value, low, high in (
        ("rate", voice.rate, 80, 450),
        ("pitch", voice.pitch, 0, 99),
        ("pitch_range", voice.pitch_range, 0, 99),
        ("word_gap", voice.word_gap, 0, 100),
    ):
        if not low <= value <= high:
            raise ValueError(f"voice {field}={value} is outside {low}..{high}")


def synthesize(text: str, voice: Voice, seed: int = 0) -> Synthesis:
    """Synthesise `text` with `voice` at espeak's native rate; the result depends only on the arguments.

    Raises ValueError for empty text or an unknown voice/variant, EspeakError if the library fails.
    """
    if not text.strip():
        raise ValueError("cannot synthesise empty text")
    _check_voice(voice)
    return _get_engine().synthesize(text, voice, seed)
