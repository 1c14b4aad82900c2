"""The streaming voice dialogue: VAD -> ASR -> responder (LLM) -> TTS, with barge-in.

A :class:`VoiceSession` is fed user audio with :meth:`VoiceSession.push` as it arrives (from a
microphone, a file at real-time pace, or a WebSocket) and yields frames from
:meth:`VoiceSession.events`: speech start/stop, partial and final transcripts, agent text and
audio placed on the output timeline, interruptions and per-turn metrics.

Time: ``t`` in frames is *audio time*, seconds of user audio received since the session began.
Agent audio is placed on the same timeline, as a speaker would play it: a chunk starts when it
is ready, or when the previous chunk ends, whichever is later.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

from duetto.asr import ASR
from duetto.audio import SAMPLE_RATE
from duetto.config import Settings
from duetto.dialogue import Responder
from duetto.frames import (
    AgentText,
    Frame,
    Interrupt,
    SpeechAudio,
    SpeechStarted,
    SpeechStopped,
    StageError,
    Transcript,
    TurnDone,
    TurnMetrics,
)
from duetto.tts import TTS
from duetto.vad import VAD

# Audio kept from before speech was detected, so the ASR hears the first syllable whole.
PRE_ROLL_S = 0.3
# Silero's usual hysteresis: speech continues until the probability falls this far below threshold.
HYSTERESIS = 0.15


@dataclass
class _Turn:
    """The user turn being heard and, once it ends, the reply being made."""

    index: int
    start_sample: int
    start: float
    audio: list[np.ndarray] = field(default_factory=list)
    last_voiced: float = 0.0
    last_voiced_wall: float = 0.0
    partial_samples: int = 0
    text: str = ""


@dataclass
class _Reply:
    turn: _Turn
    cancel: threading.Event
    thread: threading.Thread | None = None
    clauses: list[str] = field(default_factory=list)
    # (start, end, text) of each audio chunk on the output timeline
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    generated: bool = False  # the responder and TTS are done (audio may still be playing)
    finished: bool = False  # recorded in history and reported: played out, or interrupted
    interrupted: bool = False


class VoiceSession:
    """One conversation. Feed audio with :meth:`push`; read frames from :meth:`events`."""

    def __init__(
        self,
        settings: Settings,
        *,
        vad: VAD,
        asr: ASR,
        tts: TTS,
        responder: Responder,
        realtime: bool = True,
        context_provider: Callable[[np.ndarray, str], str | None] | None = None,
    ):
        self.settings = settings
        self.vad, self.asr, self.tts, self.responder = vad, asr, tts, responder
        self.realtime = realtime
        self.context_provider = context_provider
        self.sample_rate = tts.sample_rate  # agent audio keeps the voice's own rate
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._loop = (
            asyncio.get_running_loop()
        )  # sessions live inside the event loop that feeds them
        self._pending = np.zeros(0, np.float32)
        self._received = 0  # samples of user audio received
        self._wall0 = time.perf_counter()
        self._history = np.zeros(int(PRE_ROLL_S * SAMPLE_RATE), np.float32)
        self._speech_run = 0  # consecutive voiced windows
        self._turn: _Turn | None = None
        self._turns = 0
        self._reply: _Reply | None = None
        self._play_cursor = 0.0  # end of the agent audio scheduled on the timeline
        self._asr_busy = False
        self._tasks: set[asyncio.Future] = set()
        self._closed = False

    # ----------------------------------------------------------------------------- input
    def now(self) -> float:
        """Current audio time. In real time it follows the wall clock, else the input."""
        if self.realtime:
            return max(time.perf_counter() - self._wall0, self._received / SAMPLE_RATE)
        return self._received / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> None:
        """Feed user audio (float32 mono, 16 kHz) as it arrives."""
        if self._closed:
            return
        if self._received == 0 and self.realtime:
            self._wall0 = time.perf_counter() - len(samples) / SAMPLE_RATE
        arrived = time.perf_counter()
        data = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        window = self.vad.window
        whole = len(data) // window * window
        self._pending = data[whole:]
        chunk_end = self._received + len(samples)
        for i in range(0, whole, window):
            end_sample = chunk_end - (len(data) - i - window)
            # Wall time at which this window's last sample arrived (the push carried it).
            wall = arrived - (chunk_end - end_sample) / SAMPLE_RATE
            self._on_window(data[i : i + window], end_sample, wall)
        self._received = chunk_end
        reply = self._reply
        if reply is not None and reply.generated and not reply.finished:
            self._maybe_finish(reply)

    def _on_window(self, window: np.ndarray, end_sample: int, wall: float) -> None:
        prob = self.vad.probability(window)
        t_end = end_sample / SAMPLE_RATE
        t_start = t_end - len(window) / SAMPLE_RATE
        vad = self.settings.vad
        if self._turn is None:
            self._history = np.concatenate([self._history, window])[-len(self._history) :]
            self._speech_run = self._speech_run + 1 if prob >= vad.threshold else 0
            needed = max(1, round(vad.min_speech_ms / 1000 / (len(window) / SAMPLE_RATE)))
            if self._speech_run >= needed:
                self._start_turn(end_sample, t_end, wall, window_s=len(window) / SAMPLE_RATE)
            return
        turn = self._turn
        turn.audio.append(window)
        if prob >= vad.threshold - HYSTERESIS:
            turn.last_voiced, turn.last_voiced_wall = t_end, wall
        self._maybe_partial(turn)
        silence_ms = (t_end - turn.last_voiced) * 1000
        if silence_ms >= self.settings.turn.end_silence_ms and turn.last_voiced > turn.start:
            self._end_turn(turn, decided_wall=wall)
        del t_start

    def _start_turn(self, end_sample: int, t_end: float, wall: float, window_s: float) -> None:
        start = t_end - self._speech_run * window_s
        self._speech_run = 0
        reply = self._reply
        agent_busy = reply is not None and not reply.finished or self._play_cursor > t_end
        if agent_busy:
            resumed_in_s = start - reply.turn.last_voiced if reply is not None else 1e9
            silent_so_far = reply is not None and not reply.spans and self._play_cursor <= t_end
            if silent_so_far and resumed_in_s * 1000 <= self.settings.turn.resume_window_ms:
                # The user went on before the agent said anything: the pause was not the end of
                # the turn. Drop the reply and keep listening to the same turn.
                self._cancel_reply(reply)
                turn = reply.turn
                turn.audio.append(self._history.copy())
                turn.last_voiced, turn.last_voiced_wall = t_end, wall
                self._turn = turn
                self._emit(SpeechStarted(t=round(start, 3)))
                return
            if self.settings.turn.barge_in:
                self._barge_in(t_end)
        self._turns += 1
        turn = _Turn(index=self._turns, start_sample=end_sample, start=start)
        turn.audio.append(self._history.copy())
        turn.last_voiced, turn.last_voiced_wall = t_end, wall
        self._turn = turn
        self._emit(SpeechStarted(t=round(start, 3)))

    def _maybe_partial(self, turn: _Turn) -> None:
        every = self.settings.turn.partial_every_ms / 1000 * SAMPLE_RATE
        heard = sum(len(a) for a in turn.audio)
        if every <= 0 or self._asr_busy or heard - turn.partial_samples < every:
            return
        turn.partial_samples = heard
        audio = np.concatenate(turn.audio)
        self._asr_busy = True

        def run():
            try:
                return self.asr.transcribe(audio).text
            finally:
                self._asr_busy = False

        def done(fut: asyncio.Future):
            if (
                not fut.cancelled()
                and fut.exception() is None
                and self._turn is turn
                and fut.result()
            ):
                turn.text = fut.result()
                self._emit(Transcript(text=fut.result(), final=False, t=round(self.now(), 3)))

        self._spawn(self._loop.run_in_executor(None, run), done)

    def _end_turn(self, turn: _Turn, decided_wall: float) -> None:
        self._turn = None
        self._emit(SpeechStopped(t=round(turn.last_voiced, 3)))
        audio = np.concatenate(turn.audio)
        reply = _Reply(turn=turn, cancel=threading.Event())
        reply.metrics["endpoint_ms"] = (decided_wall - turn.last_voiced_wall) * 1000
        self._reply = reply
        self._spawn(asyncio.ensure_future(self._answer(reply, audio)))

    # ----------------------------------------------------------------------------- reply
    async def _answer(self, reply: _Reply, audio: np.ndarray) -> None:
        turn = reply.turn
        started = time.perf_counter()
        result = await self._loop.run_in_executor(None, lambda: self.asr.transcribe(audio))
        reply.metrics["asr_ms"] = (time.perf_counter() - started) * 1000
        reply.metrics["asr_rtf"] = result.rtf
        if reply.cancel.is_set():
            return
        turn.text = result.text
        self._emit(
            Transcript(text=result.text, final=True, t=round(self.now(), 3), words=result.words)
        )
        if not _has_words(result.text):
            reply.finished = True
            return  # a cough or noise: nothing to answer
        context = self.context_provider(audio, result.text) if self.context_provider else None
        reply.thread = threading.Thread(
            target=self._speak, args=(reply, result.text, context), daemon=True
        )
        reply.thread.start()

    def _speak(self, reply: _Reply, user_text: str, context: str | None) -> None:
        """Runs in its own thread: stream clauses from the responder into the TTS."""
        m = reply.metrics
        llm_start = time.perf_counter()
        speed = self.settings.tts.speed
        audio_seconds = tts_seconds = 0.0
        try:
            for clause in self.responder.respond(user_text, context=context):
                if reply.cancel.is_set():
                    break
                m.setdefault("first_clause_ms", (time.perf_counter() - llm_start) * 1000)
                first_token = getattr(self.responder, "first_token_at", None)
                if first_token and "llm_first_token_ms" not in m:
                    m["llm_first_token_ms"] = (first_token - llm_start) * 1000
                reply.clauses.append(clause)
                self._emit_threadsafe(AgentText(text=clause))
                tts_start = time.perf_counter()
                for samples in self.tts.stream(clause, speed=speed):
                    if reply.cancel.is_set():
                        break
                    ready = time.perf_counter()
                    tts_seconds += ready - tts_start
                    m.setdefault("tts_first_audio_ms", (ready - tts_start) * 1000)
                    if "voice_to_voice_ms" not in m:
                        m["voice_to_voice_ms"] = (ready - reply.turn.last_voiced_wall) * 1000
                    audio_seconds += len(samples) / self.sample_rate
                    self._loop.call_soon_threadsafe(self._schedule_audio, reply, samples, clause)
                    tts_start = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - a failing stage ends the turn, not the session
            self._emit_threadsafe(StageError(stage="reply", message=str(exc)))
        if audio_seconds:
            m["tts_rtf"] = tts_seconds / audio_seconds
        self._loop.call_soon_threadsafe(self._generated, reply)

    def _generated(self, reply: _Reply) -> None:
        reply.generated = True
        self._maybe_finish(reply)

    def _maybe_finish(self, reply: _Reply) -> None:
        """A reply is done once its audio has played out, or at once when interrupted."""
        if reply.finished:
            return
        playing = self._play_cursor - self.now()
        if playing > 1e-3 and not reply.cancel.is_set():
            if self.realtime:  # also checked on every push; this covers a client that went quiet
                self._loop.call_later(playing, self._maybe_finish, reply)
            return
        self._finish_reply(reply)

    def _schedule_audio(self, reply: _Reply, samples: np.ndarray, text: str) -> None:
        if reply.cancel.is_set():
            return
        start = max(self.now(), self._play_cursor)
        end = start + len(samples) / self.sample_rate
        self._play_cursor = end
        reply.spans.append((start, end, text))
        self._emit(
            SpeechAudio(samples=samples, sample_rate=self.sample_rate, t=round(start, 4), text=text)
        )

    def _finish_reply(self, reply: _Reply) -> None:
        if reply.finished:
            return
        reply.finished = True
        if reply.cancel.is_set() and not reply.interrupted:
            return  # dropped because the user went on: the turn continues
        said = _said_text(
            reply, until=None if not reply.interrupted else reply.metrics.get("stopped_at")
        )
        self.responder.record(reply.turn.text, said, interrupted=reply.interrupted)
        m = reply.metrics
        metrics = TurnMetrics(
            turn=reply.turn.index,
            user_text=reply.turn.text,
            agent_text=said,
            interrupted=reply.interrupted,
            endpoint_ms=_ms(m.get("endpoint_ms")),
            asr_ms=_ms(m.get("asr_ms")),
            llm_first_token_ms=_ms(m.get("llm_first_token_ms")),
            first_clause_ms=_ms(m.get("first_clause_ms")),
            tts_first_audio_ms=_ms(m.get("tts_first_audio_ms")),
            voice_to_voice_ms=_ms(m.get("voice_to_voice_ms")),
            asr_rtf=_round(m.get("asr_rtf")),
            tts_rtf=_round(m.get("tts_rtf")),
            user_start=round(reply.turn.start, 3),
            user_end=round(reply.turn.last_voiced, 3),
            agent_start=round(reply.spans[0][0], 3) if reply.spans else None,
            agent_end=round(min(reply.spans[-1][1], m.get("stopped_at", 1e9)), 3)
            if reply.spans
            else None,
        )
        self._emit(TurnDone(metrics=metrics))

    # ----------------------------------------------------------------------------- barge-in
    def _barge_in(self, t: float) -> None:
        reply = self._reply
        stopped_at = round(t, 3)
        self._play_cursor = min(self._play_cursor, t)
        if reply is None or reply.interrupted:
            return
        reply.interrupted = True
        reply.metrics["stopped_at"] = stopped_at
        reply.cancel.set()
        said = _said_text(reply, until=stopped_at)
        self._emit(Interrupt(t=stopped_at, stopped_at=stopped_at, said=said))
        if reply.generated:
            self._maybe_finish(reply)  # fully generated but still playing: record what was heard

    def _cancel_reply(self, reply: _Reply) -> None:
        reply.cancel.set()
        if self._reply is reply:
            self._reply = None

    def interrupt(self) -> None:
        """Stop the agent now (a client's response.cancel)."""
        if self._reply is not None and (not self._reply.finished or self._play_cursor > self.now()):
            self._barge_in(self.now())

    # ----------------------------------------------------------------------------- output
    def busy(self) -> bool:
        """True while the user is mid-turn or the agent is thinking or still speaking."""
        reply_running = self._reply is not None and not self._reply.finished
        return (
            self._turn is not None
            or reply_running
            or self._asr_busy
            or self._play_cursor > self.now()
            or any(not t.done() for t in self._tasks)
        )

    async def close(self, end_of_input: bool = True) -> None:
        """End of input: finish the turn in progress, let the reply complete, end the stream."""
        if end_of_input and self._turn is not None and self._turn.last_voiced > self._turn.start:
            self._end_turn(self._turn, decided_wall=time.perf_counter())
        while any(not t.done() for t in self._tasks) or (
            self._reply is not None and not self._reply.finished
        ):
            await asyncio.sleep(0.02)
        self._closed = True
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[Frame]:
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            yield frame

    def _emit(self, frame: Frame) -> None:
        self._queue.put_nowait(frame)

    def _emit_threadsafe(self, frame: Frame) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, frame)

    def _spawn(self, fut: asyncio.Future, done: Callable | None = None) -> None:
        self._tasks.add(fut)
        fut.add_done_callback(self._tasks.discard)
        fut.add_done_callback(_log_failure(self))
        if done is not None:
            fut.add_done_callback(done)

    def cancel_all(self) -> None:
        """Free everything at once (a client disconnected)."""
        if self._reply is not None:
            self._reply.cancel.set()
        for task in list(self._tasks):
            task.cancel()
        self._closed = True


def _log_failure(session: VoiceSession):
    def check(fut: asyncio.Future) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            session._emit(StageError(stage="pipeline", message=str(fut.exception())))

    return check


def _said_text(reply: _Reply, until: float | None) -> str:
    """The words of the reply that were actually played before ``until`` (audio time)."""
    if until is None:
        return " ".join(reply.clauses)
    words: list[str] = []
    by_clause: dict[str, list[tuple[float, float]]] = {}
    for start, end, text in reply.spans:
        by_clause.setdefault(text, []).append((start, end))
    for clause in reply.clauses:
        spans = by_clause.get(clause)
        if not spans:
            break
        start, end = spans[0][0], spans[-1][1]
        clause_words = clause.split()
        if until >= end:
            words += clause_words
            continue
        if until > start:
            share = (until - start) / (end - start)
            words += clause_words[: int(len(clause_words) * share)]
        break
    return " ".join(words)


def _has_words(text: str) -> bool:
    return sum(c.isalpha() for c in text) >= 2


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
