"""Voice activity detection: a streaming protocol plus helpers for whole files."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from duetto.audio import SAMPLE_RATE
from duetto.errors import NoSpeechError


class VAD(Protocol):
    """Speech probability for consecutive fixed-size windows of 16 kHz audio."""

    window: int

    def probability(self, window: np.ndarray) -> float: ...

    def reset(self) -> None: ...


def load_vad() -> VAD:
    from duetto.vad.silero import SileroVAD

    return SileroVAD()


def speech_probabilities(audio: np.ndarray, vad: VAD | None = None) -> np.ndarray:
    """One probability per ``vad.window`` samples (the tail shorter than a window is padded)."""
    vad = vad or load_vad()
    vad.reset()
    n = -(-len(audio) // vad.window)
    padded = np.zeros(n * vad.window, np.float32)
    padded[: len(audio)] = audio
    return np.array([vad.probability(w) for w in padded.reshape(n, vad.window)], np.float32)


def speech_segments(
    audio: np.ndarray,
    threshold: float = 0.5,
    min_silence_ms: int = 100,
    min_speech_ms: int = 64,
    vad: VAD | None = None,
) -> list[tuple[float, float]]:
    """Speech regions ``(start_s, end_s)``; gaps shorter than ``min_silence_ms`` are bridged."""
    vad = vad or load_vad()
    probs = speech_probabilities(audio, vad)
    step = vad.window / SAMPLE_RATE
    segments: list[list[float]] = []
    for i, p in enumerate(probs):
        if p < threshold:
            continue
        start, end = i * step, (i + 1) * step
        if segments and start - segments[-1][1] < min_silence_ms / 1000:
            segments[-1][1] = end
        else:
            segments.append([start, end])
    return [(s, e) for s, e in segments if (e - s) * 1000 >= min_speech_ms]


def require_speech(audio: np.ndarray, label: str = "the audio", vad: VAD | None = None) -> None:
    """Raise :class:`NoSpeechError` when the VAD finds no speech at all (Whisper would invent some)."""
    if not speech_segments(audio, vad=vad):
        raise NoSpeechError(
            f"no speech found in {label}", "record closer to the microphone or check the file"
        )
