"""Speech synthesis: one protocol, backends in their own modules.

Piper and espeak-ng are GPL-3.0; their modules are imported only here, on demand, and need
the optional extra ``duetto[piper]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from duetto.config import TTSSettings
from duetto.errors import ConfigError

BACKENDS = ("piper", "espeak")


class TTS(Protocol):
    """Streams float32 mono audio chunks at ``sample_rate`` for a text."""

    sample_rate: int
    name: str

    def stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]: ...


def synthesize(tts: TTS, text: str, *, speed: float = 1.0) -> np.ndarray:
    """The whole utterance as one array (at ``tts.sample_rate``)."""
    chunks = list(tts.stream(text, speed=speed))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


_LOADED: dict[tuple, TTS] = {}


def load_tts(settings: TTSSettings | None = None) -> TTS:
    """The TTS backend for ``settings``, loaded once per process and shared."""
    settings = settings or TTSSettings()
    key = (settings.backend, settings.voice)
    if key in _LOADED:
        return _LOADED[key]
    if settings.backend == "piper":
        from duetto.tts.piper import PiperTTS

        tts: TTS = PiperTTS(settings.voice)
    elif settings.backend == "espeak":
        from duetto.tts.espeak import EspeakTTS

        tts = EspeakTTS("en-us" if settings.voice == "bundled" else settings.voice)
    else:
        raise ConfigError(
            f"unknown TTS backend '{settings.backend}'", f"use one of: {', '.join(BACKENDS)}"
        )
    _LOADED[key] = tts
    return tts
