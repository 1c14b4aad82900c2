"""Paralinguistic cues of one user turn, and what they ask of the reply.

:func:`analyze_turn` measures speech rate, pause ratio, pitch level and range, loudness and
hesitation markers; :meth:`ProsodyCues.describe` turns them into a short phrase for the LLM's
context ("speaking slowly with long pauses, hesitant"), and :func:`reply_plan` says how the
reply should adapt: an instruction for the LLM and the speaking style it is rendered in.
Pure functions of the audio (16 kHz float32) and the transcript.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from duetto.fusion.features import log_mel, pitch
from duetto.fusion.pauses import speech_runs

# Speech rate (pauses included) of conversational English is about 3.5-5 syllables per second;
# under 3 sounds slow and deliberate, over 5.5 hurried.
SLOW_SYLLABLES_PER_S = 3.0
FAST_SYLLABLES_PER_S = 5.5
# Silence inside the turn, as a share of the time from first to last speech: fluent speech
# stays near 10-15%; a third or more is halting.
HIGH_PAUSE_RATIO = 0.3
# A silence this long inside a turn is a "long pause" (well over a breath between phrases).
LONG_PAUSE_S = 0.5
# Pitch range (10th-90th percentile) under 3 semitones sounds flat; over 9 animated.
FLAT_RANGE_ST = 3.0
LIVELY_RANGE_ST = 9.0
# Speech level (RMS of speech frames, dBFS): under -38 is quiet, over -14 loud.
QUIET_DBFS = -38.0
LOUD_DBFS = -14.0
FILLERS = {"um", "uh", "er", "erm", "hmm", "mm", "ah", "eh", "uhm", "umm"}
# Hesitation markers (fillers, repeated words, long pauses) at or above this count.
HESITANT_MARKERS = 2


@dataclass(frozen=True)
class ProsodyCues:
    """How the user spoke one turn."""

    speech_s: float  # time with speech
    span_s: float  # first to last speech
    words: int
    syllables_per_s: float  # speech rate: transcript syllables over the span, pauses included
    pause_ratio: float  # silence inside the turn / span
    long_pauses: int
    pitch_hz: float  # median voiced pitch (0 when none)
    pitch_range_st: float  # 10th-90th percentile, semitones
    loudness_dbfs: float  # RMS of speech frames
    fillers: int
    repetitions: int

    @property
    def hesitations(self) -> int:
        return self.fillers + self.repetitions + self.long_pauses

    @property
    def slow(self) -> bool:
        return bool(0 < self.syllables_per_s < SLOW_SYLLABLES_PER_S)

    @property
    def fast(self) -> bool:
        return bool(self.syllables_per_s > FAST_SYLLABLES_PER_S)

    @property
    def hesitant(self) -> bool:
        return self.hesitations >= HESITANT_MARKERS or (
            self.slow and self.pause_ratio >= HIGH_PAUSE_RATIO
        )

    @property
    def hurried(self) -> bool:
        return bool(self.fast and self.pause_ratio < HIGH_PAUSE_RATIO and not self.hesitant)

    def describe(self) -> str:
        """A compact phrase for the LLM's context, empty when nothing stands out."""
        if self.speech_s <= 0:
            return ""
        parts = []
        if self.slow:
            parts.append("speaking slowly")
        elif self.fast:
            parts.append("speaking fast")
        if self.pause_ratio >= HIGH_PAUSE_RATIO or self.long_pauses >= 2:
            parts.append("with long pauses" if parts else "pausing a lot")
        if self.hesitant:
            fillers = (
                f" ({self.fillers} filler{'s' if self.fillers > 1 else ''})" if self.fillers else ""
            )
            parts.append("hesitant" + fillers)
        if self.loudness_dbfs < QUIET_DBFS:
            parts.append("quiet")
        elif self.loudness_dbfs > LOUD_DBFS:
            parts.append("loud")
        if self.pitch_hz and self.pitch_range_st < FLAT_RANGE_ST:
            parts.append("flat voice")
        elif self.pitch_range_st > LIVELY_RANGE_ST:
            parts.append("animated voice")
        if not parts:
            return ""
        return " ".join(parts[:2]) + ("" if len(parts) <= 2 else ", " + ", ".join(parts[2:]))

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "hesitant": bool(self.hesitant),
            "hurried": bool(self.hurried),
            "describe": self.describe(),
        }


_WORD = re.compile(r"[a-z']+")
_VOWELS = re.compile(r"[aeiouy]+")


def count_syllables(word: str) -> int:
    """Vowel groups, less a silent final e: good to about one syllable in ten."""
    word = word.lower()
    n = len(_VOWELS.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(1, n)


def analyze_turn(
    audio: np.ndarray, transcript: str = "", vad_probs: np.ndarray | None = None
) -> ProsodyCues:
    """Cues of one user turn: its 16 kHz float32 audio and its transcript.

    ``vad_probs`` (Silero, 32 ms windows) is computed when not given.
    """
    audio = np.asarray(audio, np.float32).reshape(-1)
    if vad_probs is None:
        from duetto.vad import speech_probabilities

        vad_probs = speech_probabilities(audio)
    runs = speech_runs(vad_probs)
    words = _WORD.findall(transcript.lower())
    syllables = sum(count_syllables(w) for w in words if w not in FILLERS)
    if not runs:
        return ProsodyCues(0.0, 0.0, len(words), 0.0, 0.0, 0, 0.0, 0.0, -120.0, 0, 0)
    speech_s = sum(e - s for s, e in runs)
    span_s = runs[-1][1] - runs[0][0]
    gaps = [b[0] - a[1] for a, b in zip(runs, runs[1:], strict=False)]
    mask = _speech_mask(len(audio), runs)
    f0, level = _pitch_and_level(audio, mask)
    voiced = f0[f0 > 0]
    if len(voiced) >= 5:
        lo, mid, hi = np.percentile(voiced, [10, 50, 90])
        pitch_hz, range_st = float(mid), float(12 * np.log2(hi / lo))
    else:
        pitch_hz, range_st = 0.0, 0.0
    return ProsodyCues(
        speech_s=round(float(speech_s), 3),
        span_s=round(float(span_s), 3),
        words=len(words),
        syllables_per_s=round(syllables / span_s, 2) if span_s > 0 else 0.0,
        pause_ratio=round(1 - speech_s / span_s, 3) if span_s > 0 else 0.0,
        long_pauses=int(sum(g >= LONG_PAUSE_S for g in gaps)),
        pitch_hz=round(pitch_hz, 1),
        pitch_range_st=round(range_st, 2),
        loudness_dbfs=round(float(level), 1),
        fillers=sum(w in FILLERS for w in words),
        repetitions=sum(a == b for a, b in zip(words, words[1:], strict=False) if a not in FILLERS),
    )


def _speech_mask(n_samples: int, runs: list[tuple[float, float]]) -> np.ndarray:
    """Per 10 ms frame: inside a VAD speech run."""
    n = n_samples // 160
    mask = np.zeros(n, bool)
    for s, e in runs:
        mask[int(s * 100) : int(np.ceil(e * 100))] = True
    return mask


def _pitch_and_level(audio: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    _, energy = log_mel(audio)
    f0, _ = pitch(audio, energy)
    n = min(len(f0), len(mask))
    f0 = np.where(mask[:n], f0[:n], 0.0)
    speech_energy = energy[:n][mask[:n]]
    if not len(speech_energy):
        return f0, -120.0
    # energy is ln(mean square); dBFS of the mean power of speech frames.
    power = float(np.mean(np.exp(speech_energy)))
    return f0, 10 * np.log10(power + 1e-12)


@dataclass(frozen=True)
class ReplyPlan:
    """How the agent should answer a turn spoken with these cues."""

    context: str  # for the LLM's prompt: how the user spoke
    instruction: str  # for the LLM's prompt: how to answer
    style: str  # speaking style of the reply (see duetto.fusion.style)
    max_sentences: int


def reply_plan(cues: ProsodyCues) -> ReplyPlan:
    """A hesitant speaker gets a slower, simpler, calm answer; a hurried one a short one."""
    context = cues.describe()
    if cues.hesitant or (cues.slow and cues.pause_ratio >= HIGH_PAUSE_RATIO):
        return ReplyPlan(
            context, "Answer patiently in short, simple words, one step at a time.", "calm", 2
        )
    if cues.hurried:
        return ReplyPlan(
            context, "Answer in one short sentence, most important fact first.", "brisk", 1
        )
    return ReplyPlan(context, "", "neutral", 2)


def prompt_context(cues: ProsodyCues) -> str:
    """One line to add to the LLM's context for this turn (empty when nothing stands out)."""
    plan = reply_plan(cues)
    if not plan.context and not plan.instruction:
        return ""
    said = f"(The user is {plan.context}.)" if plan.context else ""
    return " ".join(x for x in (said, plan.instruction) if x)


def context_provider(audio: np.ndarray, transcript: str) -> str | None:
    """For the engine's ``context_provider`` hook: one line on how the user spoke, or None."""
    return prompt_context(analyze_turn(audio, transcript)) or None
