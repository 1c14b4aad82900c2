"""faster-whisper backend (CTranslate2): the bundled tiny.en by default, any model by name/path."""

from __future__ import annotations

import time

import numpy as np

from duetto.asr import Segment, Transcription
from duetto.audio import SAMPLE_RATE
from duetto.config import ASRSettings, auto_threads
from duetto.errors import ModelNotFoundError
from duetto.frames import Word
from duetto.models import whisper_model


class WhisperASR:
    def __init__(self, settings: ASRSettings):
        from faster_whisper import WhisperModel

        self.settings = settings
        started = time.perf_counter()
        try:
            self.model = WhisperModel(
                whisper_model(settings.model),
                device="cpu",
                compute_type=settings.compute_type,
                cpu_threads=auto_threads(settings.threads),
            )
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelNotFoundError(
                f"could not load ASR model '{settings.model}': {exc}",
                "give a local CTranslate2 folder or 'bundled' when offline",
            ) from None
        self.load_seconds = time.perf_counter() - started
        self.multilingual = self.model.model.is_multilingual

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        words: bool = False,
        prompt: str | None = None,
        language: str | None = None,
        temperature: float = 0.0,
    ) -> Transcription:
        started = time.perf_counter()
        language = language or self.settings.language
        if not self.multilingual:
            language = "en"
        segments, info = self.model.transcribe(
            audio.astype(np.float32, copy=False),
            language=language,
            beam_size=self.settings.beam_size,
            temperature=temperature,
            initial_prompt=prompt,
            word_timestamps=words,
            condition_on_previous_text=False,
            without_timestamps=not words,
            vad_filter=False,
        )
        out = tuple(_segment(s) for s in segments)  # decoding happens while iterating
        text = " ".join(s.text for s in out).strip()
        return Transcription(
            text=" ".join(text.split()),
            segments=out,
            language=info.language,
            duration=len(audio) / SAMPLE_RATE,
            seconds=time.perf_counter() - started,
        )


def _segment(seg) -> Segment:
    words = tuple(
        Word(
            word=w.word.strip(),
            start=round(w.start, 3),
            end=round(w.end, 3),
            probability=round(w.probability, 3),
        )
        for w in (seg.words or ())
    )
    return Segment(
        start=round(seg.start, 3),
        end=round(seg.end, 3),
        text=seg.text.strip(),
        words=words,
        avg_logprob=seg.avg_logprob,
        no_speech_prob=seg.no_speech_prob,
    )
