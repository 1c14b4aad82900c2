"""The one vocabulary of what flows through duetto.

Every stage consumes and produces these frozen records, whether it runs in the CLI, the
WebSocket server, a benchmark or a Ray replica. Times (``t``) are seconds of *audio time* since
the session started: the position in the user's input stream at which the event happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    def to_dict(self) -> dict:
        out = {"type": type(self).__name__}
        for key, value in asdict(self).items():
            if not isinstance(value, np.ndarray):
                out[key] = value
        return out


@dataclass(frozen=True)
class AudioChunk(Frame):
    """User audio: float32 mono samples at ``sample_rate`` starting at ``t``."""

    samples: np.ndarray = field(repr=False)
    sample_rate: int
    t: float


@dataclass(frozen=True)
class SpeechStarted(Frame):
    t: float


@dataclass(frozen=True)
class SpeechStopped(Frame):
    """Silence long enough to end the user's turn began at ``t`` (the last voiced sample)."""

    t: float


@dataclass(frozen=True)
class Word(Frame):
    word: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Transcript(Frame):
    text: str
    final: bool
    t: float
    words: tuple[Word, ...] = ()
    language: str = "en"
    # Final transcripts with asr.nbest > 1: the ASR's best hypotheses, best first, each
    # (text, mean token log-probability); the first is ``text``.
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class LLMToken(Frame):
    text: str


@dataclass(frozen=True)
class AgentText(Frame):
    """A clause of the agent's reply, handed to the TTS as soon as it is complete."""

    text: str
    style: str = "neutral"


@dataclass(frozen=True)
class SpeechAudio(Frame):
    """Agent audio, placed on the output timeline at ``t`` (audio time of the session)."""

    samples: np.ndarray = field(repr=False)
    sample_rate: int
    t: float
    text: str = ""


@dataclass(frozen=True)
class Interrupt(Frame):
    """The user barged in at ``t``; agent audio stopped at ``stopped_at``."""

    t: float
    stopped_at: float
    said: str


@dataclass(frozen=True)
class StageError(Frame):
    stage: str
    message: str


@dataclass(frozen=True)
class TurnMetrics(Frame):
    """Per-turn latencies in milliseconds (None where a stage did not run)."""

    turn: int
    user_text: str
    agent_text: str
    interrupted: bool
    endpoint_ms: float | None = None  # last voiced sample -> end of turn decided
    asr_ms: float | None = None  # end of turn -> final transcript
    llm_first_token_ms: float | None = None  # LLM request -> first token
    first_clause_ms: float | None = None  # LLM request -> first complete clause
    tts_first_audio_ms: float | None = None  # first clause -> first audio chunk
    voice_to_voice_ms: float | None = None  # last voiced sample -> first reply audio sample
    asr_rtf: float | None = None
    tts_rtf: float | None = None
    speculative: bool = False  # the reply was started at a pause, before the end of turn
    user_start: float = 0.0
    user_end: float = 0.0
    agent_start: float | None = None
    agent_end: float | None = None


@dataclass(frozen=True)
class TurnDone(Frame):
    metrics: TurnMetrics
