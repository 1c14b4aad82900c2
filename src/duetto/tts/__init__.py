"""Speech synthesis: one protocol, backends in their own modules.

Piper and espeak-ng are GPL-3.0; their modules are imported only here, on demand, and need
the optional extra ``duetto[piper]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from duetto.config import TTSSettings
from duetto.errors import ConfigError

BACKENDS = ("piper", "espeak")
# The watermark's 4-bit model id: which backend spoke a clip.
WATERMARK_MODEL_IDS = {"piper": 1, "espeak": 2}


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


def load_tts(settings: TTSSettings | None = None, language: str | None = None) -> TTS:
    """The TTS backend for ``settings``, loaded once per process and shared.

    The bundled Piper voice speaks English; for another ``language`` it falls back to espeak-ng.
    """
    settings = settings or TTSSettings()
    if (
        language
        and not language.startswith("en")
        and settings.backend == "piper"
        and settings.voice == "bundled"
    ):
        settings = dataclasses.replace(settings, backend="espeak", voice=language)
    key = (
        settings.backend,
        settings.voice,
        settings.variation,
        settings.watermark,
        settings.styles,
        settings.threads,
    )
    if key in _LOADED:
        return _LOADED[key]
    if settings.backend == "piper":
        from duetto.tts.piper import PiperTTS

        tts: TTS = PiperTTS(settings.voice, settings.variation, threads=settings.threads)
    elif settings.backend == "espeak":
        from duetto.tts.espeak import EspeakTTS

        tts = EspeakTTS("en-us" if settings.voice == "bundled" else settings.voice)
    else:
        raise ConfigError(
            f"unknown TTS backend '{settings.backend}'", f"use one of: {', '.join(BACKENDS)}"
        )
    if settings.styles:
        tts = StyledTTS(tts)  # before the watermark: a pitch change would blur the mark
    if settings.watermark:
        tts = WatermarkedTTS(tts, WATERMARK_MODEL_IDS[settings.backend])
    _LOADED[key] = tts
    return tts


class StyledTTS:
    """Speaks each text in the style its words call for (duetto.fusion.style): rate, pitch, volume."""

    def __init__(self, inner: TTS):
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.name = inner.name
        self.load_seconds = getattr(inner, "load_seconds", 0.0)

    def stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        from duetto.fusion.style import StyleRenderer, style_for, tts_speed

        style = style_for(text)
        renderer = StyleRenderer(style)
        for chunk in self.inner.stream(text, speed=tts_speed(style, speed)):
            out = renderer.process(chunk)
            if len(out):
                yield out
        tail = renderer.flush()
        if len(tail):
            yield tail


class WatermarkedTTS:
    """Marks every clip a backend streams (one watermark per ``stream`` call, chunk by chunk)."""

    def __init__(self, inner: TTS, model_id: int):
        self.inner = inner
        self.model_id = model_id
        self.sample_rate = inner.sample_rate
        self.name = inner.name
        self.load_seconds = getattr(inner, "load_seconds", 0.0)

    def stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        from duetto.safety.watermark import Payload, Watermarker

        marker = Watermarker(self.sample_rate, Payload(self.model_id, Payload.bucket_now()))
        for chunk in self.inner.stream(text, speed=speed):
            yield marker.process(chunk)
