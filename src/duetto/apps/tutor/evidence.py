"""Everything the scorer learns from one recording, gathered once: alignment, phone loop, ASR.

:class:`Evidence` is plain data (JSON round-trip), so training can cache it per utterance and
iterate on features without decoding the audio again.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass

import numpy as np

from duetto.apps.tutor.align import (
    AlignedPhone,
    AlignedWord,
    Alignment,
    FreePhone,
    align,
)
from duetto.audio import SAMPLE_RATE


@dataclass(frozen=True)
class HeardWord:
    word: str  # normalised (upper case, letters and apostrophes)
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Evidence:
    reference: tuple[str, ...]  # reference words, normalised
    pronunciations: tuple[tuple[str, ...], ...]  # expected phones per reference word
    duration: float
    rms: float  # loudness of the whole recording (0 for digital silence)
    alignment: Alignment
    asr_words: tuple[HeardWord, ...]
    asr_text: str
    asr_logprob: float  # mean token log probability of the transcript
    seconds: dict  # wall time per stage

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Evidence:
        al = data["alignment"]
        alignment = Alignment(
            n_frames=al["n_frames"],
            words=tuple(
                AlignedWord(
                    w["index"],
                    w["start"],
                    w["frames"],
                    tuple(AlignedPhone(**p) for p in w["phones"]),
                )
                for w in al["words"]
            ),
            silences=tuple(tuple(s) for s in al["silences"]),
            free=tuple(FreePhone(**f) for f in al["free"]),
            ok=al["ok"],
        )
        return cls(
            reference=tuple(data["reference"]),
            pronunciations=tuple(tuple(p) for p in data["pronunciations"]),
            duration=data["duration"],
            rms=data["rms"],
            alignment=alignment,
            asr_words=tuple(HeardWord(**w) for w in data["asr_words"]),
            asr_text=data["asr_text"],
            asr_logprob=data["asr_logprob"],
            seconds=data["seconds"],
        )


def normalise_word(token: str) -> str:
    """Upper-case letters and inner apostrophes only ("Ann's," -> "ANN'S")."""
    return re.sub(r"[^A-Z']", "", token.upper()).strip("'")


def gather(
    audio: np.ndarray, reference: list[str], pronunciations: list[list[str]], asr=None
) -> Evidence:
    """Decode ``audio`` (16 kHz mono float32) against the reference words and their phones.

    ``asr`` is a duetto ASR backend (``load_asr()``); ``None`` skips the ASR evidence.
    """
    seconds = {}
    started = time.perf_counter()
    alignment = align(audio, pronunciations)
    seconds["align"] = time.perf_counter() - started
    words: tuple[HeardWord, ...] = ()
    text, logprob = "", 0.0
    if asr is not None:
        words, text, logprob, seconds["asr"] = transcribe(asr, audio)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return Evidence(
        reference=tuple(reference),
        pronunciations=tuple(tuple(p) for p in pronunciations),
        duration=len(audio) / SAMPLE_RATE,
        rms=rms,
        alignment=alignment,
        asr_words=words,
        asr_text=text,
        asr_logprob=logprob,
        seconds=seconds,
    )


def transcribe(asr, audio: np.ndarray) -> tuple[tuple[HeardWord, ...], str, float, float]:
    """ASR words (normalised, with probabilities), text, mean log probability and wall time."""
    if len(audio) < SAMPLE_RATE // 10:
        return (), "", 0.0, 0.0
    started = time.perf_counter()
    result = asr.transcribe(audio, words=True)
    words = tuple(
        HeardWord(normalise_word(w.word), w.start, w.end, w.probability)
        for w in result.words
        if normalise_word(w.word)
    )
    probs = [s.avg_logprob for s in result.segments]
    logprob = float(np.mean(probs)) if probs else 0.0
    return words, result.text, logprob, time.perf_counter() - started
