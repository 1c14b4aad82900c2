"""Running voice sessions: from a file at real-time pace, from the microphone, and the demo."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from duetto.audio import SAMPLE_RATE, load_audio, resample, write_wav
from duetto.config import Settings, TTSSettings
from duetto.dialogue import Conversation, Responder
from duetto.errors import DeviceError, DuettoError
from duetto.frames import (
    AgentText,
    Frame,
    Interrupt,
    SpeechAudio,
    SpeechStarted,
    StageError,
    Transcript,
    TurnDone,
    TurnMetrics,
)
from duetto.pipeline import VoiceSession

# 20 ms: the usual packet size of real-time audio (WebRTC, telephony).
CHUNK_S = 0.02
# After the input ends, time is allowed to run on until the agent finishes, at most this long.
MAX_TAIL_S = 60.0

DEMO_QUESTIONS = ("What is the capital of Spain?", "How can I become a better cook?")


@dataclass
class Engine:
    """The loaded models, shared by every session of a process."""

    settings: Settings
    vad_factory: object
    asr: object
    tts: object
    load_seconds: dict = field(default_factory=dict)
    end_of_turn: object = None

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        from duetto.asr import load_asr
        from duetto.tts import load_tts
        from duetto.vad import load_vad

        times = {}
        t = time.perf_counter()
        asr = load_asr(settings.asr)
        times["asr"] = time.perf_counter() - t
        t = time.perf_counter()
        tts = load_tts(engine_tts_settings(settings), language=settings.asr.language)
        times["tts"] = time.perf_counter() - t
        t = time.perf_counter()
        load_vad()
        times["vad"] = time.perf_counter() - t
        t = time.perf_counter()
        _warm_up(asr, tts)
        times["warm_up"] = time.perf_counter() - t
        engine = cls(settings, load_vad, asr, tts, times)
        t = time.perf_counter()
        engine.end_of_turn = load_end_of_turn(settings)
        if engine.end_of_turn is not None:
            times["end_of_turn"] = time.perf_counter() - t
        return engine

    def session(self, responder: Responder | None = None, realtime: bool = True) -> VoiceSession:
        if responder is None:
            t = time.perf_counter()
            responder = Conversation.from_settings(self.settings)
            self.load_seconds.setdefault("llm", time.perf_counter() - t)
        return VoiceSession(
            self.settings,
            vad=self.vad_factory(),
            asr=self.asr,
            tts=self.tts,
            responder=responder,
            realtime=realtime,
            end_of_turn=self.end_of_turn,
            context_provider=_prosody_context if self.settings.llm.prosody_context else None,
        )


def engine_tts_settings(settings: Settings) -> TTSSettings:
    """The TTS settings an engine loads with, ``tts.threads = 0`` (auto) resolved."""
    if settings.tts.threads == 0 and settings.llm.url:
        # The LLM server goes on generating while a clause is synthesized: one thread each.
        return replace(settings.tts, threads=1)
    return settings.tts


def _warm_up(asr, tts) -> None:
    """Run each model once, so the first turn does not pay for first-call set-up (~0.5 s each)."""
    asr.transcribe(np.zeros(SAMPLE_RATE, np.float32))
    for _ in tts.stream("Hello."):
        pass


def load_end_of_turn(settings: Settings):
    """The end-of-turn model the settings ask for (None: silence alone ends turns)."""
    turn = settings.turn
    # The model is asked at the early transcription if there is one, else when the reply starts.
    asked_at_ms = turn.transcribe_after_ms or turn.speculate_after_ms
    if turn.end_of_turn == "silence" or asked_at_ms <= 0:
        return None
    from duetto.fusion.eot import EndOfTurnModel

    return EndOfTurnModel(turn.end_of_turn, pause_s=asked_at_ms / 1000)


def _prosody_context(audio: np.ndarray, transcript: str) -> str | None:
    from duetto.fusion.prosody import context_provider

    return context_provider(audio, transcript)


@dataclass
class TalkResult:
    turns: list[TurnMetrics]
    frames: list[Frame]
    agent_audio: np.ndarray
    sample_rate: int

    def to_dict(self) -> dict:
        v2v = [t.voice_to_voice_ms for t in self.turns if t.voice_to_voice_ms is not None]
        return {
            "turns": [t.to_dict() for t in self.turns],
            "median_voice_to_voice_ms": round(statistics.median(v2v), 1) if v2v else None,
            "interruptions": sum(isinstance(f, Interrupt) for f in self.frames),
            "errors": [f.to_dict() for f in self.frames if isinstance(f, StageError)],
        }


async def run_session(
    session: VoiceSession,
    audio: np.ndarray,
    realtime: bool = True,
    on_frame=None,
) -> TalkResult:
    """Feed ``audio`` (16 kHz) in 20 ms packets, then silence until the agent is done."""
    frames: list[Frame] = []

    async def consume():
        async for frame in session.events():
            frames.append(frame)
            if on_frame:
                on_frame(frame)

    consumer = asyncio.ensure_future(consume())
    step = int(CHUNK_S * SAMPLE_RATE)
    start = time.perf_counter()
    sent = 0
    tail = np.zeros(step, np.float32)
    while True:
        if sent < len(audio):
            chunk = audio[sent : sent + step]
        elif session.busy() and sent < len(audio) + MAX_TAIL_S * SAMPLE_RATE:
            chunk = tail
        else:
            break
        session.push(chunk)
        sent += len(chunk)
        if realtime:
            delay = start + sent / SAMPLE_RATE - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))
        else:
            await asyncio.sleep(0)
    await session.close()
    await consumer
    turns = [f.metrics for f in frames if isinstance(f, TurnDone)]
    agent = render_timeline(frames, session.sample_rate, min_seconds=sent / SAMPLE_RATE)
    return TalkResult(
        turns=turns, frames=frames, agent_audio=agent, sample_rate=session.sample_rate
    )


def render_timeline(frames: list[Frame], sample_rate: int, min_seconds: float = 0.0) -> np.ndarray:
    """Agent audio on the session's timeline; audio after an interruption is cut off."""
    placed: list[list] = []  # [start_sample, samples]
    for frame in frames:
        if isinstance(frame, SpeechAudio):
            placed.append([int(round(frame.t * sample_rate)), frame.samples])
        elif isinstance(frame, Interrupt):
            cut = int(round(frame.stopped_at * sample_rate))
            for item in placed:
                keep = max(0, cut - item[0])
                item[1] = item[1][:keep]
    end = max([s + len(a) for s, a in placed] + [int(min_seconds * sample_rate)])
    out = np.zeros(end, np.float32)
    for start, samples in placed:
        out[start : start + len(samples)] += samples
    return out


def print_frame(frame: Frame, out=sys.stdout) -> None:
    """Human-readable progress of a session."""
    if isinstance(frame, SpeechStarted):
        print(f"[{frame.t:6.2f}s] user speaking…", file=out, flush=True)
    elif isinstance(frame, Transcript) and frame.final:
        print(f"[{frame.t:6.2f}s] user: {frame.text}", file=out, flush=True)
    elif isinstance(frame, Transcript):
        print(f"[{frame.t:6.2f}s] … {frame.text}", file=out, flush=True)
    elif isinstance(frame, AgentText):
        print(f"          agent: {frame.text}", file=out, flush=True)
    elif isinstance(frame, Interrupt):
        print(
            f"[{frame.t:6.2f}s] ✋ user barged in; agent stopped after: “{frame.said}”",
            file=out,
            flush=True,
        )
    elif isinstance(frame, StageError):
        print(f"          ! {frame.stage} error: {frame.message}", file=out, flush=True)
    elif isinstance(frame, TurnDone):
        print(format_metrics(frame.metrics), file=out, flush=True)


def format_metrics(m: TurnMetrics) -> str:
    def ms(v):
        return "—" if v is None else f"{v:.0f} ms"

    flag = (" (interrupted)" if m.interrupted else "") + (
        " (speculative start)" if m.speculative else ""
    )
    return (
        f"  turn {m.turn}{flag}: voice-to-voice {ms(m.voice_to_voice_ms)} = endpoint {ms(m.endpoint_ms)}"
        f" + ASR {ms(m.asr_ms)} + LLM first clause {ms(m.first_clause_ms)}"
        f" (first token {ms(m.llm_first_token_ms)}) + TTS first audio {ms(m.tts_first_audio_ms)}"
    )


def talk_file(
    path: str | Path,
    settings: Settings,
    output: str | Path | None = None,
    realtime: bool = True,
    show: bool = True,
    engine: Engine | None = None,
    responder: Responder | None = None,
) -> dict:
    """``duetto talk --input``: a whole voice dialogue from a file."""
    from duetto.vad import require_speech

    audio = load_audio(path)
    require_speech(audio, str(path))
    engine = engine or Engine.load(settings)

    async def main() -> TalkResult:
        session = engine.session(responder, realtime=realtime)
        if show:
            print(f"models loaded: {_load_summary(engine)}", flush=True)
        return await run_session(session, audio, realtime, print_frame if show else None)

    result = asyncio.run(main())
    if output:
        write_wav(output, result.agent_audio, result.sample_rate)
    data = result.to_dict()
    data["load_seconds"] = {k: round(v, 3) for k, v in engine.load_seconds.items()}
    if output:
        data["output"] = str(output)
    if show:
        _print_summary(data)
    return data


def _load_summary(engine: Engine) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in engine.load_seconds.items())


def _print_summary(data: dict) -> None:
    turns = data["turns"]
    print(f"\n{len(turns)} turn(s), {data['interruptions']} interruption(s)")
    if data["median_voice_to_voice_ms"] is not None:
        print(f"median voice-to-voice: {data['median_voice_to_voice_ms']:.0f} ms")
    if data.get("output"):
        print(f"agent audio (same timeline as the input): {data['output']}")


def run_demo(settings: Settings, out_dir: Path, show: bool = True) -> dict:
    """Two spoken questions made with our TTS, answered through the full voice pipeline."""
    engine = Engine.load(settings)
    user = make_dialogue_audio(engine.tts, DEMO_QUESTIONS)
    out_dir.mkdir(parents=True, exist_ok=True)
    user_path = write_wav(out_dir / "user.wav", user, SAMPLE_RATE)
    if show:
        print(f"user audio: {user_path} ({len(user) / SAMPLE_RATE:.1f} s, two questions)")
    data = talk_file(user_path, settings, output=out_dir / "agent.wav", show=show, engine=engine)
    agent, rate = load_audio(out_dir / "agent.wav", sample_rate=SAMPLE_RATE), SAMPLE_RATE
    n = max(len(agent), len(user))
    stereo = np.zeros((n, 2), np.float32)
    stereo[: len(user), 0], stereo[: len(agent), 1] = user, agent
    import soundfile as sf

    sf.write(str(out_dir / "conversation.wav"), stereo, rate, subtype="PCM_16")
    data["files"] = {
        "user": str(user_path),
        "agent": str(out_dir / "agent.wav"),
        "stereo": str(out_dir / "conversation.wav"),
    }
    if show:
        print(f"both sides, user left / agent right: {out_dir / 'conversation.wav'}")
    return data


def make_dialogue_audio(
    tts, questions, gap_s: float = 6.0, lead_s: float = 0.5, speed: float = 1.0
) -> np.ndarray:
    """User turns spoken by our TTS with ``gap_s`` of silence after each (time for the reply)."""
    from duetto.tts import synthesize

    parts = [np.zeros(int(lead_s * SAMPLE_RATE), np.float32)]
    for q in questions:
        parts.append(resample(synthesize(tts, q, speed=speed), tts.sample_rate, SAMPLE_RATE))
        parts.append(np.zeros(int(gap_s * SAMPLE_RATE), np.float32))
    return np.concatenate(parts)


def talk_live(settings: Settings, show: bool = True, responder: Responder | None = None) -> int:
    """``duetto talk`` with no input: microphone in, speaker out."""
    try:
        import sounddevice as sd
    except OSError as exc:
        raise DeviceError(
            f"no audio system available ({exc})", "use --input FILE to talk from a file"
        ) from None
    try:
        sd.query_devices(kind="input")
        sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError):
        raise DeviceError(
            "no microphone or speaker found", "use --input FILE to talk from a file"
        ) from None
    engine = Engine.load(settings)
    return asyncio.run(_live(engine, sd, show, responder))


async def _live(engine: Engine, sd, show: bool, responder: Responder | None) -> int:
    import queue

    session = engine.session(responder, realtime=True)
    loop = asyncio.get_running_loop()
    playback: queue.Queue[np.ndarray | None] = queue.Queue()
    rate = session.sample_rate

    def on_input(indata, frames, _time, _status):
        loop.call_soon_threadsafe(session.push, indata[:, 0].copy())

    def player():
        with sd.OutputStream(samplerate=rate, channels=1, dtype="float32") as out:
            while (item := playback.get()) is not None:
                out.write(item.reshape(-1, 1))

    import threading

    threading.Thread(target=player, daemon=True).start()
    if show:
        print(
            "listening — speak (Ctrl+C to stop). Use headphones so the agent does not hear itself."
        )
    with sd.InputStream(
        samplerate=SAMPLE_RATE,
        channels=1,
        dtype="float32",
        blocksize=int(CHUNK_S * SAMPLE_RATE),
        callback=on_input,
    ):
        try:
            async for frame in session.events():
                if show:
                    print_frame(frame)
                if isinstance(frame, SpeechAudio):
                    playback.put(frame.samples)
                elif isinstance(frame, Interrupt):
                    while not playback.empty():
                        playback.get_nowait()
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        finally:
            playback.put(None)
            session.cancel_all()
    return 0


__all__ = [
    "Engine",
    "TalkResult",
    "run_session",
    "talk_file",
    "talk_live",
    "run_demo",
    "DuettoError",
]
