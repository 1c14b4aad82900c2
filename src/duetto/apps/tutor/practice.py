"""A voice practice session in the terminal: the tutor says a sentence, the learner repeats it.

Each round: choose a sentence for the learner (:mod:`duetto.apps.tutor.bank`), speak it, record
the learner's reading (microphone, or files with ``--recordings``), score it, print the scores,
speak back the worst phones' tips, and store the attempt and the recording.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from duetto.apps.tutor import bank
from duetto.apps.tutor.progress import Progress
from duetto.apps.tutor.scoring import Assessment, Scorer
from duetto.audio import SAMPLE_RATE, load_audio, write_wav
from duetto.errors import DeviceError, DuettoError, NoSpeechError

MAX_RECORD_S = 15.0  # a practice sentence never takes longer
END_SILENCE_S = 1.2  # the learner has finished after this much silence following speech
_BLOCK_S = 0.1


class PracticeIO(Protocol):
    """How the session talks to the learner: speak a text, get their reading back."""

    def say(self, text: str) -> None: ...

    def listen(self) -> np.ndarray | None: ...  # None: no more input


class FileIO:
    """Recordings from files, in order (for scripted sessions and tests); speaks nothing."""

    def __init__(self, paths: list[str | Path]):
        self._paths: Iterator[Path] = iter(Path(p) for p in paths)
        self.said: list[str] = []

    def say(self, text: str) -> None:
        self.said.append(text)

    def listen(self) -> np.ndarray | None:
        path = next(self._paths, None)
        return None if path is None else load_audio(path)


class DeviceIO:
    """Speaker and microphone through sounddevice, voice from duetto's TTS."""

    def __init__(self):
        try:
            import sounddevice as sd

            sd.query_devices(kind="input")
            sd.query_devices(kind="output")
        except Exception as exc:  # PortAudioError is not importable without PortAudio
            raise DeviceError(
                f"no microphone or speaker found ({exc})",
                "use --recordings FILE... to practise from files",
            ) from None
        from duetto.tts import load_tts

        self.sd = sd
        self.tts = load_tts()

    def say(self, text: str) -> None:
        from duetto.tts import synthesize

        audio = synthesize(self.tts, text)
        self.sd.play(audio, self.tts.sample_rate)
        self.sd.wait()

    def listen(self) -> np.ndarray | None:
        """Record until the learner stops (energy-based end point) or MAX_RECORD_S."""
        block = int(_BLOCK_S * SAMPLE_RATE)
        parts: list[np.ndarray] = []
        spoke, quiet = False, 0.0
        with self.sd.InputStream(
            samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=block
        ) as stream:
            while len(parts) * _BLOCK_S < MAX_RECORD_S:
                data, _ = stream.read(block)
                parts.append(data[:, 0].copy())
                loud = float(np.sqrt(np.mean(data**2))) > 0.01
                spoke = spoke or loud
                quiet = 0.0 if loud else quiet + _BLOCK_S
                if spoke and quiet >= END_SILENCE_S:
                    break
        return np.concatenate(parts)


@dataclass(frozen=True)
class Round:
    sentence: str
    level: int
    assessment: Assessment | None  # None when nothing was heard
    attempt_id: int | None


def recordings_dir(learner: str) -> Path:
    from duetto.models import cache_dir

    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in learner)
    path = cache_dir() / "tutor" / "recordings" / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(
    learner: str,
    io: PracticeIO,
    *,
    rounds: int = 5,
    progress: Progress | None = None,
    scorer: Scorer | None = None,
    rng: random.Random | None = None,
    show: Callable[[str], None] = print,
) -> list[Round]:
    """Practise ``rounds`` sentences; returns what happened in each."""
    progress = progress or Progress()
    scorer = scorer or Scorer()
    session = progress.start_session(learner)
    out = []
    for k in range(rounds):
        history = progress.attempts(learner)
        sentence = bank.choose(history, rng)
        show(f"\n[{k + 1}/{rounds}] level {sentence.level}: {sentence.text}")
        io.say(f"Please repeat after me. {sentence.text}")
        audio = io.listen()
        if audio is None:
            break
        try:
            result = scorer.score(audio, sentence.text)
        except (NoSpeechError, DuettoError) as exc:
            show(f"  I did not catch that: {exc}")
            io.say("I did not hear you. Let's try the next one.")
            out.append(Round(sentence.text, sentence.level, None, None))
            continue
        path = recordings_dir(learner) / f"{int(time.time() * 1000)}.wav"
        write_wav(path, audio, SAMPLE_RATE)
        attempt = progress.record(
            session, sentence.text, sentence.level, result.to_dict(), str(path)
        )
        show(summary(result))
        io.say(feedback(result))
        out.append(Round(sentence.text, sentence.level, result, attempt))
    return out


def summary(result: Assessment) -> str:
    u, f = result.utterance, result.fluency
    lines = [f"  total {u.total}  accuracy {u.accuracy}  fluency {u.fluency}  prosody {u.prosody}  "
             f"completeness {u.completeness}",
             f"  {f.words_per_minute:.0f} words/min, {f.pause_count} pauses ({f.pause_seconds:.1f} s)"]  # fmt: skip
    weak = [w for w in result.words if w.miscue != "none"]
    if weak:
        lines.append(
            "  words to work on: " + ", ".join(f"{w.word.lower()} ({w.miscue})" for w in weak)
        )
    lines += [f"  tip: {t.text}" for t in result.tips]
    return "\n".join(lines)


def feedback(result: Assessment) -> str:
    """What the tutor says back: praise or the worst phones with the word to repeat."""
    total = result.utterance.total
    opening = "Excellent!" if total >= 8.5 else ("Good." if total >= 6.5 else "Let's work on this.")
    if not result.tips:
        return opening
    focus = " ".join(f"Listen: {t.word.lower()}. {t.word.lower()}." for t in result.tips)
    return f"{opening} {focus}"
