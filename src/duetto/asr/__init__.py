"""Speech recognition: one protocol, backends in their own modules."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Protocol

import numpy as np

from duetto.config import ASRSettings
from duetto.frames import Word


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


@dataclass(frozen=True)
class Transcription:
    text: str
    segments: tuple[Segment, ...]
    language: str
    duration: float
    seconds: float  # wall time spent decoding
    # The beam's best hypotheses, best first, each (text, mean token log-probability); the first
    # is ``text``. Empty unless asked for (``asr.nbest`` > 1) and the decode could give them.
    alternatives: tuple[tuple[str, float], ...] = ()

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def rtf(self) -> float:
        return self.seconds / self.duration if self.duration else 0.0


class ASR(Protocol):
    """Transcribes 16 kHz float32 mono audio. ``nbest`` overrides ``asr.nbest`` for one call
    (1: no alternatives, as partial transcripts ask), ``beam_size`` ``asr.beam_size`` and
    ``prompt`` ``asr.prompt``: a responder's own choices for its turns
    (``Responder.asr_options``) share the one loaded model. ``partial``: an interim transcript
    of a turn still going on, decoded once and cheaply (none of the noisy-audio extras that
    multiply a final transcript's cost)."""

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        words: bool = False,
        prompt: str | None = None,
        language: str | None = None,
        temperature: float = 0.0,
        nbest: int | None = None,
        beam_size: int | None = None,
        partial: bool = False,
    ) -> Transcription: ...


_LOADED: dict[tuple, ASR] = {}


def load_asr(settings: ASRSettings | None = None) -> ASR:
    """The ASR backend for ``settings``, loaded once per process and shared."""
    from duetto.asr.whisper import WhisperASR

    settings = settings or ASRSettings()
    # Every field: two settings that differ only in the prompt or a word filter decode
    # differently, so they must not share an instance.
    key = astuple(settings)
    if key not in _LOADED:
        _LOADED[key] = WhisperASR(settings)
    return _LOADED[key]
