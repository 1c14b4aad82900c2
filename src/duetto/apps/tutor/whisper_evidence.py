"""Whisper evidence for pronunciation: encoder states per 20 ms and the reference's token odds.

The encoder states are rich phonetic features: pooled over a phone's aligned span they tell a
trained scorer how the phone sounded. Forcing the reference text through the decoder gives the
probability Whisper assigns to each word the learner was meant to say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ENC_FRAME_S = 0.02  # Whisper's encoder emits one state per 20 ms
_MEL_PER_SECOND = 100
_MAX_MEL = 3000  # Whisper's 30 s window
# The encoder runs on the audio's own length (rounded up to whole seconds) instead of a padded
# 30 s window: 10-20x faster on short sentences; training and scoring use the same rule.
_ROUND_MEL = 100


@dataclass(frozen=True)
class WhisperEvidence:
    states: np.ndarray  # (frames, dim) float16 encoder output
    word_probs: tuple[tuple[float, ...], ...]  # token probabilities of each reference word


def _model(asr):
    model = getattr(asr, "model", None)
    if model is None or not hasattr(model, "feature_extractor"):
        raise TypeError("whisper evidence needs duetto's faster-whisper ASR backend")
    return model


def encoder_states(asr, audio: np.ndarray):
    """(numpy states (frames, dim) float16, the CTranslate2 encoder output for the decoder)."""
    from faster_whisper.audio import pad_or_trim

    model = _model(asr)
    mel = model.feature_extractor(audio)
    n = min(_MAX_MEL, max(_ROUND_MEL, math.ceil((mel.shape[-1] + 1) / _ROUND_MEL) * _ROUND_MEL))
    output = model.encode(pad_or_trim(mel, n))
    return np.asarray(output)[0].astype(np.float16), output


def _written(words: list[str]) -> list[str]:
    """Reference words as Whisper would write them: lower case, sentence-initial capital, "I"."""
    out = []
    for k, word in enumerate(words):
        w = word.lower()
        if w == "i" or w.startswith("i'"):
            w = "I" + w[1:]
        elif k == 0:
            w = w[:1].upper() + w[1:]
        out.append(w)
    return out


def gather_whisper(asr, audio: np.ndarray, words: list[str]) -> WhisperEvidence:
    from faster_whisper.tokenizer import Tokenizer

    model = _model(asr)
    states, output = encoder_states(asr, audio)
    if not words:
        return WhisperEvidence(states, ())
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
    )
    pieces = [tokenizer.encode(" " + w) for w in _written(words)]
    tokens = [t for p in pieces for t in p] + [tokenizer.eot]
    result = model.model.align(
        output,
        list(tokenizer.sot_sequence) + [tokenizer.no_timestamps],
        [tokens],
        max(len(states), 1),
    )[0]
    probs = list(result.text_token_probs)
    out, k = [], 0
    for piece in pieces:
        out.append(tuple(float(p) for p in probs[k : k + len(piece)]))
        k += len(piece)
    return WhisperEvidence(states, tuple(out))
