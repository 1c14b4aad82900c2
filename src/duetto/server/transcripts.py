"""A :class:`~duetto.asr.Transcription` in each of OpenAI's ``response_format`` shapes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from duetto.asr import Segment, Transcription
from duetto.audio import SAMPLE_RATE

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")

# Streaming cuts the audio at pauses at least this long, so each piece is a phrase or sentence.
STREAM_PAUSE_MS = 600
# Pieces shorter than this are joined to the next one: a word alone loses Whisper's context.
STREAM_MIN_PIECE_S = 1.0
# ... unless the joined piece would pass Whisper's 30 s window, which it decodes in one pass.
STREAM_MAX_PIECE_S = 28.0
# Audio kept around each piece, so no syllable is cut.
STREAM_PAD_S = 0.2


def to_json(result: Transcription) -> dict:
    return {"text": result.text, "usage": _usage(result)}


def to_verbose_json(result: Transcription, granularities: set[str]) -> dict:
    out = {
        "task": "transcribe",
        "language": result.language,
        "duration": round(result.duration, 3),
        "text": result.text,
        "usage": _usage(result),
    }
    if "segment" in granularities or not granularities:
        out["segments"] = [_segment(i, s) for i, s in enumerate(result.segments)]
    if "word" in granularities:
        out["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in result.words]
    return out


def to_srt(result: Transcription) -> str:
    blocks = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(_timed(result), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(result: Transcription) -> str:
    blocks = [
        f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n"
        for s in _timed(result)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _timed(result: Transcription) -> list[Segment]:
    return [s for s in result.segments if s.text.strip()]


def _segment(i: int, s: Segment) -> dict:
    return {
        "id": i,
        "seek": 0,
        "start": s.start,
        "end": s.end,
        "text": s.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": round(s.avg_logprob, 4),
        "compression_ratio": 0.0,
        "no_speech_prob": round(s.no_speech_prob, 4),
    }


def _usage(result: Transcription) -> dict:
    return {"type": "duration", "seconds": round(result.duration, 3)}


def _clock(seconds: float, comma: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{comma}{ms:03d}"


def stream_pieces(audio: np.ndarray) -> Iterator[np.ndarray]:
    """The audio cut at pauses into phrases that can be transcribed, and streamed, one by one."""
    from duetto.vad import speech_segments

    spans = speech_segments(audio, min_silence_ms=STREAM_PAUSE_MS)
    if not spans:
        yield audio  # no speech found: let the ASR have the whole thing
        return
    start = spans[0][0]
    for (_, end), following in zip(spans, spans[1:] + [None], strict=True):
        if following is None:
            yield _cut(audio, start, end)
        elif end - start >= STREAM_MIN_PIECE_S or following[1] - start > STREAM_MAX_PIECE_S:
            yield _cut(audio, start, end)
            start = following[0]


def _cut(audio: np.ndarray, start: float, end: float) -> np.ndarray:
    a = max(0, int((start - STREAM_PAD_S) * SAMPLE_RATE))
    b = min(len(audio), int((end + STREAM_PAD_S) * SAMPLE_RATE))
    return audio[a:b]
