"""Speaking style of the agent's reply -> how the TTS renders it: rate, pitch and volume.

The rate goes through the TTS's own ``speed`` parameter; pitch and volume are applied to the
float32 audio chunks as they stream out, by :class:`StyleRenderer`. Pitch is shifted by
resampling (which also speeds the audio up by the same factor), so the TTS is asked for a speed
that cancels that: the net rate is the style's, the pitch moves on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from duetto.errors import ConfigError


@dataclass(frozen=True)
class SpeakingStyle:
    name: str
    rate: float  # 1.0 = the voice's normal speed
    pitch_st: float  # semitones up (+) or down (-)
    gain_db: float


# Directions follow studies of vocal emotion: apologies and calm speech are slower, lower and
# softer; cheerful speech higher and a little faster; urgent speech faster and louder. The sizes
# are kept small (a few semitones, a few dB) so the voice stays natural.
STYLES = {
    "neutral": SpeakingStyle("neutral", 1.0, 0.0, 0.0),
    "calm": SpeakingStyle("calm", 0.88, -1.0, -2.0),
    "cheerful": SpeakingStyle("cheerful", 1.06, 2.0, 1.0),
    "apologetic": SpeakingStyle("apologetic", 0.9, -1.5, -4.0),
    "urgent": SpeakingStyle("urgent", 1.15, 1.0, 3.0),
    "brisk": SpeakingStyle("brisk", 1.1, 0.0, 0.0),
}
# Peak level the renderer never exceeds after gain (a soft knee above it).
PEAK = 0.97

_CUES = (
    (
        "apologetic",
        re.compile(r"\b(sorry|apolog\w*|unfortunately|i'm afraid|i am afraid|my mistake|regret)\b"),
    ),
    (
        "urgent",
        re.compile(
            r"\b(immediately|right away|right now|urgent\w*|as soon as possible|asap|warning|emergency|fraud)\b"
        ),
    ),
    (
        "cheerful",
        re.compile(
            r"\b(great|glad|happy|congratulations|wonderful|good news|welcome|awesome|fantastic)\b"
        ),
    ),
    (
        "calm",
        re.compile(
            r"\b(don't worry|no problem|take your time|relax|it's okay|it is okay|step by step)\b"
        ),
    ),
)


def style_for(reply: str, default: str = "neutral") -> SpeakingStyle:
    """The style a reply's words call for (an apology sounds apologetic, a fraud alert urgent).

    ``default`` (e.g. from :func:`duetto.fusion.prosody.reply_plan`) is kept when the words
    carry no cue.
    """
    text = reply.lower()
    for name, pattern in _CUES:
        if pattern.search(text):
            return STYLES[name]
    return get_style(default)


def get_style(name: str) -> SpeakingStyle:
    if name not in STYLES:
        raise ConfigError(f"unknown speaking style '{name}'", f"use one of: {', '.join(STYLES)}")
    return STYLES[name]


def pitch_factor(style: SpeakingStyle) -> float:
    return float(2.0 ** (style.pitch_st / 12.0))


def tts_speed(style: SpeakingStyle, base: float = 1.0) -> float:
    """The TTS ``speed`` to request so that, after the pitch shift, the rate is ``base * rate``."""
    return base * style.rate / pitch_factor(style)


class StyleRenderer:
    """Applies a style's pitch and volume to consecutive float32 chunks of one utterance.

    Stateful so chunk boundaries stay seamless: the resampling position carries over.
    """

    def __init__(self, style: SpeakingStyle | str):
        self.style = get_style(style) if isinstance(style, str) else style
        self.factor = pitch_factor(self.style)
        self.gain = float(10.0 ** (self.style.gain_db / 20.0))
        self._pos = 0.0  # next output position, in input samples since the last kept sample
        self._tail = np.zeros(0, np.float32)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        x = np.concatenate([self._tail, chunk])
        if self.factor == 1.0:
            out, self._tail = x, np.zeros(0, np.float32)
        else:
            # Read the input faster (factor > 1: higher pitch) by linear interpolation.
            positions = np.arange(self._pos, len(x) - 1, self.factor)
            i = positions.astype(np.int64)
            frac = (positions - i).astype(np.float32)
            out = x[i] * (1 - frac) + x[i + 1] * frac if len(i) else np.zeros(0, np.float32)
            nxt = positions[-1] + self.factor if len(positions) else self._pos
            keep = int(nxt)
            self._tail = x[keep:]
            self._pos = nxt - keep
        return _soft_limit(out * self.gain)

    def flush(self) -> np.ndarray:
        tail, self._tail, self._pos = self._tail, np.zeros(0, np.float32), 0.0
        return _soft_limit(tail * self.gain)


def _soft_limit(x: np.ndarray) -> np.ndarray:
    over = np.abs(x) > PEAK
    if over.any():
        x = x.copy()
        x[over] = np.sign(x[over]) * (
            PEAK + (1 - PEAK) * np.tanh((np.abs(x[over]) - PEAK) / (1 - PEAK))
        )
    return x.astype(np.float32, copy=False)


def render(tts, text: str, style: SpeakingStyle | str, base_speed: float = 1.0):
    """Stream ``text`` from a TTS (``.stream(text, speed=)``) in ``style``: float32 chunks."""
    style = get_style(style) if isinstance(style, str) else style
    renderer = StyleRenderer(style)
    for chunk in tts.stream(text, speed=tts_speed(style, base_speed)):
        out = renderer.process(chunk)
        if len(out):
            yield out
    tail = renderer.flush()
    if len(tail):
        yield tail
