"""The streaming voice dialogue: VAD -> ASR -> responder (LLM) -> TTS, with barge-in.

A :class:`VoiceSession` is fed user audio with :meth:`VoiceSession.push` as it arrives (from a
microphone, a file at real-time pace, or a WebSocket) and yields frames from
:meth:`VoiceSession.events`: speech start/stop, partial and final transcripts, agent text and
audio placed on the output timeline, interruptions and per-turn metrics.

Time: ``t`` in frames is *audio time*, seconds of user audio received since the session began.
Agent audio is placed on the same timeline, as a speaker would play it: a chunk starts when it
is ready, or when the previous chunk ends, whichever is later.

Speculation (``turn.speculate_after_ms``): a short pause starts the whole reply (final ASR, LLM,
TTS) while the session waits to be sure the turn is over; its audio is held back and released
the moment the end of turn is confirmed, or thrown away unheard if the user goes on. That hides
ASR, LLM and TTS time behind the endpointing wait.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

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


class EndOfTurn(Protocol):
    """Decides how much silence ends the turn, from the audio and the words heard so far."""

    def silence_needed_ms(self, audio: np.ndarray, transcript: str) -> float: ...


@dataclass
class _Turn:
    """The user turn being heard."""

    index: int
    start: float
    audio: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    last_voiced: float = 0.0
    last_voiced_wall: float = 0.0
    partial_samples: int = 0
    text: str = ""
    silence_needed_ms: float | None = None  # set by the end-of-turn model at a pause
    # The transcription (and end-of-turn decision) started at a short pause, and the
    # ``last_voiced`` it was made at: valid while no speech has come since.
    early: asyncio.Future | None = None
    early_voiced: float = -1.0

    def add(self, samples: np.ndarray) -> None:
        self.audio.append(samples)
        self.samples += len(samples)


@dataclass
class _Reply:
    turn: _Turn
    cancel: threading.Event
    held: bool = False  # speculative: audio is kept back until the end of turn is confirmed
    heard_samples: int = 0  # how much of the turn's audio the reply was made from
    voiced_at: float = 0.0  # the turn's last voiced time when the reply began
    held_audio: list[tuple[np.ndarray, str]] = field(default_factory=list)
    text: str | None = None  # the final transcript the reply answers, once the ASR is done
    alternatives: tuple[tuple[str, float], ...] = ()  # the ASR's n-best for it (asr.nbest)
    waiting: tuple[str, str | None] | None = None  # (text, context) held for a confirmed turn
    clauses: list[str] = field(default_factory=list)
    # (start, end, text) of each audio chunk on the output timeline
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    generated: bool = False  # the responder and TTS are done (audio may still be playing)
    finished: bool = False  # recorded in history and reported: played out, or interrupted
    interrupted: bool = False
    timer_set: bool = False  # a check is scheduled for when the audio has played out


class VoiceSession:
    """One conversation. Feed audio with :meth:`push`; read frames from :meth:`events`.

    Create it inside the event loop that feeds it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        vad: VAD,
        asr: ASR,
        tts: TTS,
        responder: Responder,
        realtime: bool = True,
        end_of_turn: EndOfTurn | None = None,
        context_provider: Callable[[np.ndarray, str], str | None] | None = None,
    ):
        self.settings = settings
        self.vad, self.asr, self.tts, self.responder = vad, asr, tts, responder
        self.realtime = realtime
        self.end_of_turn = end_of_turn
        self.context_provider = context_provider
        self.sample_rate = tts.sample_rate  # agent audio keeps the voice's own rate
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._pending = np.zeros(0, np.float32)
        self._received = 0  # samples of user audio received
        self._wall0 = time.perf_counter()
        self._history = np.zeros(int(PRE_ROLL_S * SAMPLE_RATE), np.float32)
        self._speech_run = 0  # consecutive voiced windows
        self._turn: _Turn | None = None
        self._turns = 0
        self._reply: _Reply | None = None  # the newest reply
        self._unfinished: list[_Reply] = []
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
            self._on_window(data[i : i + window], end_sample / SAMPLE_RATE, wall)
        self._received = chunk_end
        for reply in list(self._unfinished):
            if reply.generated:
                self._maybe_finish(reply)

    def _on_window(self, window: np.ndarray, t_end: float, wall: float) -> None:
        prob = self.vad.probability(window)
        vad, turn_settings = self.settings.vad, self.settings.turn
        window_s = len(window) / SAMPLE_RATE
        turn = self._turn
        if turn is None:
            self._history = np.concatenate([self._history, window])[-len(self._history) :]
            self._speech_run = self._speech_run + 1 if prob >= vad.threshold else 0
            if self._speech_run * window_s * 1000 >= max(vad.min_speech_ms, window_s * 1000):
                self._start_turn(t_end, wall, window_s)
            return
        turn.add(window)
        if prob >= vad.threshold - HYSTERESIS:
            turn.last_voiced, turn.last_voiced_wall = t_end, wall
            turn.silence_needed_ms = None
            if prob >= vad.threshold:
                self._drop_speculation(turn)
        silence_ms = (t_end - turn.last_voiced) * 1000
        if silence_ms <= 0:
            # Partials only while the user is voiced: one made during a pause would compete for
            # the CPU with the speculative reply's own transcription of the same audio.
            self._maybe_partial(turn)
        if turn.last_voiced <= turn.start:
            return
        early = turn_settings.transcribe_after_ms
        if 0 < early <= silence_ms and turn.early_voiced != turn.last_voiced:
            self._transcribe_early(turn)
        speculate = turn_settings.speculate_after_ms
        if 0 < speculate <= silence_ms and not self._speculating(turn):
            self._begin_reply(turn, held=True)
        if silence_ms >= self._silence_needed(turn):
            self._end_turn(turn, decided_wall=wall)

    def _silence_needed(self, turn: _Turn) -> float:
        if turn.silence_needed_ms is not None:
            return turn.silence_needed_ms
        return self.settings.turn.end_silence_ms

    def _start_turn(self, t_end: float, wall: float, window_s: float) -> None:
        start = t_end - self._speech_run * window_s
        self._speech_run = 0
        reply = self._reply
        agent_busy = reply is not None and not reply.finished or self._play_cursor > t_end
        if agent_busy and reply is not None:
            resumed_in_ms = (start - reply.turn.last_voiced) * 1000
            silent_so_far = not reply.spans and self._play_cursor <= t_end
            if silent_so_far and resumed_in_ms <= self.settings.turn.resume_window_ms:
                # The user went on before the agent said anything: the pause was not the end of
                # the turn. Drop the reply and keep listening to the same turn.
                self._drop(reply)
                turn = reply.turn
                turn.add(self._history.copy())
                turn.last_voiced, turn.last_voiced_wall = t_end, wall
                turn.silence_needed_ms = None
                self._turn = turn
                self._emit(SpeechStarted(t=round(start, 3)))
                return
        if agent_busy and self.settings.turn.barge_in:
            self._barge_in(t_end)
        self._turns += 1
        turn = _Turn(index=self._turns, start=start)
        turn.add(self._history.copy())
        turn.last_voiced, turn.last_voiced_wall = t_end, wall
        self._turn = turn
        self._emit(SpeechStarted(t=round(start, 3)))

    def _maybe_partial(self, turn: _Turn) -> None:
        every = self.settings.turn.partial_every_ms / 1000 * SAMPLE_RATE
        if every <= 0 or self._asr_busy or turn.samples - turn.partial_samples < every:
            return
        turn.partial_samples = turn.samples
        audio = np.concatenate(turn.audio)
        options = self._asr_options(final=False)
        self._asr_busy = True

        def run():
            try:
                return self.asr.transcribe(audio, **options).text
            finally:
                self._asr_busy = False

        def done(fut: asyncio.Future):
            ok = not fut.cancelled() and fut.exception() is None
            if ok and self._turn is turn and fut.result():
                turn.text = fut.result()
                self._emit(Transcript(text=fut.result(), final=False, t=round(self.now(), 3)))

        self._spawn(self._loop.run_in_executor(None, run), done)

    def _asr_options(self, final: bool = True) -> dict:
        """The ASR's per-call options for the responder's turns (``Responder.asr_options``:
        ``prompt``, ``beam_size``, ``nbest``), read at each call since a session's responder
        can change. A partial (``final=False``) takes the prompt only: ``nbest=1`` (an interim
        transcript never pays for the beam's alternatives), the settings' beam and ``partial``
        (none of the noisy-audio extras: a noisy beam, speeds, a language model's choice)."""
        options = dict(getattr(self.responder, "asr_options", None) or {})
        if final:
            return options
        prompt = {"prompt": options["prompt"]} if "prompt" in options else {}
        return {"nbest": 1, "partial": True} | prompt

    def _transcribe_early(self, turn: _Turn) -> None:
        """At a short pause, transcribe the turn and ask the end-of-turn model, before any reply.

        A reply begun later in the same pause reuses the result; speech resuming makes it stale.
        """
        audio = np.concatenate(turn.audio)
        turn.early_voiced = voiced = turn.last_voiced
        eot = self.end_of_turn

        options = self._asr_options()

        def run():
            result = self.asr.transcribe(audio, **options)
            needed = eot.silence_needed_ms(audio, result.text) if eot is not None else None
            return result, needed

        def done(fut: asyncio.Future):
            if fut.cancelled() or fut.exception() is not None:
                return
            needed = fut.result()[1]
            fresh = self._turn is turn and turn.early is fut and turn.last_voiced == voiced
            if fresh and needed is not None:
                turn.silence_needed_ms = needed

        turn.early = self._loop.run_in_executor(None, run)
        self._spawn(turn.early, done)

    def _end_turn(self, turn: _Turn, decided_wall: float) -> None:
        self._turn = None
        self._emit(SpeechStopped(t=round(turn.last_voiced, 3)))
        reply = self._reply
        if reply is not None and reply.turn is turn and reply.held and not reply.cancel.is_set():
            reply.metrics["endpoint_ms"] = (decided_wall - turn.last_voiced_wall) * 1000
            reply.metrics["speculative"] = True
            self._release(reply)
            return
        reply = self._begin_reply(turn, held=False)
        reply.metrics["endpoint_ms"] = (decided_wall - turn.last_voiced_wall) * 1000

    # ----------------------------------------------------------------------------- reply
    def _begin_reply(self, turn: _Turn, held: bool) -> _Reply:
        reply = _Reply(
            turn=turn,
            cancel=threading.Event(),
            held=held,
            heard_samples=turn.samples,
            voiced_at=turn.last_voiced,
        )
        self._reply = reply
        self._unfinished.append(reply)
        self._spawn(asyncio.ensure_future(self._answer(reply, np.concatenate(turn.audio))))
        return reply

    def _speculating(self, turn: _Turn) -> bool:
        reply = self._reply
        return reply is not None and reply.turn is turn and not reply.cancel.is_set()

    def _drop_speculation(self, turn: _Turn) -> None:
        """Speech resumed: a reply started at the pause is thrown away unheard."""
        reply = self._reply
        if reply is not None and reply.turn is turn and reply.held:
            self._drop(reply)

    def _drop(self, reply: _Reply) -> None:
        reply.cancel.set()
        reply.finished = True
        if reply in self._unfinished:
            self._unfinished.remove(reply)
        if self._reply is reply:
            self._reply = None

    async def _answer(self, reply: _Reply, audio: np.ndarray) -> None:
        """Final ASR (and the end-of-turn model), then hand the reply to its speaking thread."""
        try:
            text = await self._transcribe_final(reply, audio)
        except Exception as exc:  # noqa: BLE001 - a failing ASR ends the turn, not the session
            self._emit(StageError(stage="asr", message=str(exc)))
            self._drop(reply)
            return
        if reply.cancel.is_set():
            if reply.interrupted and not reply.finished:
                self._finish_reply(reply)  # cancelled before it spoke: record the turn anyway
            return
        if not has_words(text):
            self._drop(reply)  # a cough or noise: nothing to answer
            return
        context = self.context_provider(audio, text) if self.context_provider else None
        if reply.held and not getattr(self.responder, "speculative", True):
            reply.waiting = (text, context)  # this responder hears confirmed turns only
            return
        if not reply.held:
            self._emit_final(reply)
        self._start_speaking(reply, text, context)

    def _start_speaking(self, reply: _Reply, text: str, context: str | None) -> None:
        threading.Thread(target=self._speak, args=(reply, text, context), daemon=True).start()

    async def _transcribe_final(self, reply: _Reply, audio: np.ndarray) -> str:
        turn = reply.turn
        started = time.perf_counter()
        if turn.early is not None and turn.early_voiced == reply.voiced_at:
            # Transcribed at the pause already (and the end of turn asked): only wait for it.
            result = (await asyncio.shield(turn.early))[0]
            reply.metrics["asr_ms"] = result.seconds * 1000
        else:
            options = self._asr_options()
            result = await self._loop.run_in_executor(
                None, lambda: self.asr.transcribe(audio, **options)
            )
            reply.metrics["asr_ms"] = (time.perf_counter() - started) * 1000
        reply.metrics["asr_rtf"] = result.rtf
        early_decides = self.settings.turn.transcribe_after_ms > 0  # asked at the early run
        if self.end_of_turn is not None and reply.held and self._turn is turn and not early_decides:
            needed = await self._loop.run_in_executor(
                None, self.end_of_turn.silence_needed_ms, audio, result.text
            )
            if self._turn is turn and turn.last_voiced_wall <= started:
                turn.silence_needed_ms = needed
        if not reply.cancel.is_set() or reply.interrupted:  # a dropped reply leaves the turn alone
            turn.text = reply.text = result.text
            reply.alternatives = result.alternatives
        return result.text

    def _emit_final(self, reply: _Reply) -> None:
        self._emit(
            Transcript(
                text=reply.text or "",
                final=True,
                t=round(self.now(), 3),
                alternatives=reply.alternatives,
            )
        )

    def _speak(self, reply: _Reply, user_text: str, context: str | None) -> None:
        """Runs in its own thread: stream clauses from the responder into the TTS."""
        m = reply.metrics
        llm_start = time.perf_counter()
        speed = self.settings.tts.speed
        audio_seconds = tts_seconds = 0.0
        try:
            extra = {"cancel": reply.cancel} if getattr(self.responder, "cancellable", 0) else {}
            if getattr(self.responder, "hears_alternatives", False):
                extra["alternatives"] = reply.alternatives
            for clause in self.responder.respond(user_text, context=context, **extra):
                if reply.cancel.is_set():
                    break
                m.setdefault("first_clause_ms", (time.perf_counter() - llm_start) * 1000)
                first_token = getattr(self.responder, "first_token_at", None)
                if first_token and "llm_first_token_ms" not in m:
                    m["llm_first_token_ms"] = (first_token - llm_start) * 1000
                reply.clauses.append(clause)
                self._call(self._clause_ready, reply, clause)
                tts_start = time.perf_counter()
                for samples in self.tts.stream(clause, speed=speed):
                    if reply.cancel.is_set():
                        break
                    ready = time.perf_counter()
                    tts_seconds += ready - tts_start
                    m.setdefault("tts_first_audio_ms", (ready - tts_start) * 1000)
                    audio_seconds += len(samples) / self.sample_rate
                    self._call(self._audio_ready, reply, samples, clause)
                    tts_start = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - a failing stage ends the turn, not the session
            self._call(self._emit, StageError(stage="reply", message=str(exc)))
        if audio_seconds:
            m["tts_rtf"] = tts_seconds / audio_seconds
        self._call(self._generated, reply)

    def _call(self, func, *args) -> None:
        self._loop.call_soon_threadsafe(func, *args)

    def _clause_ready(self, reply: _Reply, clause: str) -> None:
        if not reply.held and not reply.cancel.is_set():
            self._emit(AgentText(text=clause))

    def _audio_ready(self, reply: _Reply, samples: np.ndarray, text: str) -> None:
        if reply.cancel.is_set():
            return
        if reply.held:
            reply.held_audio.append((samples, text))
        else:
            self._schedule_audio(reply, samples, text)

    def _release(self, reply: _Reply) -> None:
        """The end of turn is confirmed: what a speculative reply has made is played now."""
        reply.held = False
        if reply.text is not None:
            self._emit_final(reply)
        for clause in reply.clauses:
            self._emit(AgentText(text=clause))
        held, reply.held_audio = reply.held_audio, []
        for samples, text in held:
            self._schedule_audio(reply, samples, text)
        if reply.waiting is not None:
            text, context = reply.waiting
            reply.waiting = None
            self._start_speaking(reply, text, context)
        if reply.generated:
            self._maybe_finish(reply)

    def _schedule_audio(self, reply: _Reply, samples: np.ndarray, text: str) -> None:
        if "voice_to_voice_ms" not in reply.metrics:
            reply.metrics["voice_to_voice_ms"] = (
                time.perf_counter() - reply.turn.last_voiced_wall
            ) * 1000
        start = max(self.now(), self._play_cursor)
        end = start + len(samples) / self.sample_rate
        self._play_cursor = end
        reply.spans.append((start, end, text))
        self._emit(
            SpeechAudio(samples=samples, sample_rate=self.sample_rate, t=round(start, 4), text=text)
        )

    def _generated(self, reply: _Reply) -> None:
        reply.generated = True
        self._maybe_finish(reply)

    def _maybe_finish(self, reply: _Reply) -> None:
        """A reply is done once its audio has played out, or at once when interrupted."""
        if reply.finished or reply.held:
            return
        playing = self._play_cursor - self.now()
        if playing > 1e-3 and not reply.cancel.is_set():
            # Also checked on every push; one timer covers a client that went quiet (not one timer
            # per push, which piled up 50 a second while the reply played).
            if self.realtime and not reply.timer_set:
                reply.timer_set = True
                self._loop.call_later(playing, self._timer_expired, reply)
            return
        self._finish_reply(reply)

    def _timer_expired(self, reply: _Reply) -> None:
        reply.timer_set = False
        self._maybe_finish(reply)

    def _finish_reply(self, reply: _Reply) -> None:
        reply.finished = True
        if reply in self._unfinished:
            self._unfinished.remove(reply)
        stopped_at = reply.metrics.get("stopped_at")
        said = _said_text(reply, until=stopped_at if reply.interrupted else None)
        self.responder.record(reply.turn.text, said, interrupted=reply.interrupted)
        m = reply.metrics
        spans = reply.spans
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
            speculative=bool(m.get("speculative")),
            user_start=round(reply.turn.start, 3),
            user_end=round(reply.turn.last_voiced, 3),
            agent_start=round(spans[0][0], 3) if spans else None,
            agent_end=round(min(spans[-1][1], stopped_at or 1e9), 3) if spans else None,
        )
        self._emit(TurnDone(metrics=metrics))

    # ----------------------------------------------------------------------------- barge-in
    def _barge_in(self, t: float) -> None:
        reply = self._reply
        stopped_at = round(t, 3)
        self._play_cursor = min(self._play_cursor, t)
        if reply is None or reply.interrupted or reply.finished:
            return
        reply.interrupted = True
        reply.metrics["stopped_at"] = stopped_at
        reply.cancel.set()
        said = _said_text(reply, until=stopped_at)
        self._emit(Interrupt(t=stopped_at, stopped_at=stopped_at, said=said))
        if reply.generated:
            self._maybe_finish(reply)  # fully generated but still playing: record what was heard

    def end_turn(self) -> bool:
        """End the user's turn now, as if silence had (push-to-talk release, a client's commit).

        False when no speech has been heard since the last turn ended."""
        turn = self._turn
        if turn is None:
            return False
        self._end_turn(turn, decided_wall=time.perf_counter())
        return True

    def discard_turn(self) -> None:
        """Forget the speech heard since the last turn ended (a client's buffer clear)."""
        turn, self._turn = self._turn, None
        self._speech_run = 0
        if turn is not None:
            self._drop_speculation(turn)

    def interrupt(self) -> None:
        """Stop the agent now (a client's response.cancel)."""
        reply = self._reply
        if reply is not None and not reply.held and not reply.finished:
            self._barge_in(self.now())

    # ----------------------------------------------------------------------------- output
    def busy(self) -> bool:
        """True while the user is mid-turn or the agent is thinking or still speaking."""
        return (
            self._turn is not None
            or bool(self._unfinished)
            or self._asr_busy
            or self._play_cursor > self.now()
            or any(not t.done() for t in self._tasks)
        )

    async def close(self, end_of_input: bool = True) -> None:
        """End of input: finish the turn in progress, let the reply complete, end the stream."""
        turn = self._turn
        if end_of_input and turn is not None and turn.last_voiced > turn.start:
            self._end_turn(turn, decided_wall=time.perf_counter())
        while any(not t.done() for t in self._tasks) or self._unfinished:
            for reply in list(self._unfinished):
                if reply.generated:
                    self._play_cursor = min(self._play_cursor, self.now())
                    self._maybe_finish(reply)
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

    def _spawn(self, fut: asyncio.Future, done: Callable | None = None) -> None:
        self._tasks.add(fut)
        fut.add_done_callback(self._tasks.discard)
        fut.add_done_callback(self._report_failure)
        if done is not None:
            fut.add_done_callback(done)

    def _report_failure(self, fut: asyncio.Future) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self._emit(StageError(stage="pipeline", message=str(fut.exception())))

    def cancel_all(self) -> None:
        """Free everything at once (a client disconnected)."""
        for reply in self._unfinished:
            reply.cancel.set()
        for task in list(self._tasks):
            task.cancel()
        self._closed = True


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


def has_words(text: str) -> bool:
    """Something was said: two letters, or a number ("2891" is a spoken PIN, not a cough)."""
    return sum(c.isalpha() for c in text) >= 2 or any(c.isdigit() for c in text)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
