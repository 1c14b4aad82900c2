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
    # Whisper *base* encoder states (frames, 512) float16, same window and frame rate; only when
    # the scorer's weights use the base Whisper GOP (``features.base_pooled``).
    base_states: np.ndarray | None = None


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


def gather_whisper(asr, audio: np.ndarray, words: list[str], encoded=None) -> WhisperEvidence:
    """Encoder states and the reference words' token odds. ``encoded``: what
    :func:`encoder_states` returned for this audio, to reuse instead of encoding again."""
    from faster_whisper.tokenizer import Tokenizer

    model = _model(asr)
    states, output = encoded if encoded is not None else encoder_states(asr, audio)
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


_MAX_TOKENS = 200  # one read sentence; Whisper's own limit is 224
# Tokens per second of audio a transcript may hold (fast speech is ~6): caps greedy loops.
_TOKENS_PER_SECOND = 8
# Tokens Whisper must not produce in a plain transcript (its "suppress" default: -1).
_SUPPRESS = [-1]


def _without_loop(tokens: list[int], n: int = 4) -> list[int]:
    """Cut a greedy decoding where it starts the transcript over (a known Whisper loop)."""
    for i in range(n, len(tokens) - n + 1):
        if tokens[i : i + n] == tokens[:n]:
            return tokens[:i]
    return tokens


def transcribe_short(asr, audio: np.ndarray, encoded=None):
    """Greedy transcript from the short-window encoder: (words, text, mean log probability).

    faster-whisper's ``transcribe`` always encodes a padded 30 s window; for one sentence this
    reuses the cheaper encoding. Word probabilities and start/end times come from forcing the
    decoded tokens back through ``align``, as faster-whisper does for word timestamps.
    ``encoded``: :func:`encoder_states` of this audio, if already computed.
    """
    from faster_whisper.tokenizer import Tokenizer

    from duetto.apps.tutor.evidence import HeardWord, normalise_word

    model = _model(asr)
    states, output = encoded if encoded is not None else encoder_states(asr, audio)
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
    )
    prompt = list(tokenizer.sot_sequence) + [tokenizer.no_timestamps]
    limit = min(_MAX_TOKENS, len(prompt) + 4 + int(_TOKENS_PER_SECOND * len(audio) / 16_000))
    result = model.model.generate(
        output, [prompt], beam_size=1, max_length=limit, return_scores=True,
        suppress_blank=True, suppress_tokens=_SUPPRESS,
    )[0]  # fmt: skip
    tokens = _without_loop([t for t in result.sequences_ids[0] if t < tokenizer.eot])
    text = tokenizer.decode(tokens).strip()
    if not tokens:
        return (), text, 0.0
    logprob = float(result.scores[0]) / (len(tokens) + 1)
    aligned = model.model.align(output, prompt, [tokens + [tokenizer.eot]], max(len(states), 1))[0]
    probs = list(aligned.text_token_probs)
    first: dict[int, int] = {}
    for text_index, time_index in aligned.alignments:
        first.setdefault(int(text_index), int(time_index))
    words, word_tokens = tokenizer.split_to_word_tokens(tokens + [tokenizer.eot])
    out, k = [], 0
    for word, piece in zip(words, word_tokens, strict=True):
        n = len(piece)
        if n and piece[0] < tokenizer.eot and normalise_word(word):
            start = first.get(k, 0) * ENC_FRAME_S
            end = first.get(k + n, first.get(k, 0) + n) * ENC_FRAME_S
            p = float(np.mean(probs[k : k + n])) if probs[k : k + n] else 0.0
            out.append(
                HeardWord(
                    normalise_word(word), round(start, 2), round(max(end, start), 2), round(p, 3)
                )
            )
        k += n
    return tuple(out), text, logprob
