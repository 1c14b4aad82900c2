"""The voice pipeline end to end, on real models, fed at real-time pace."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jiwer
import numpy as np
import pytest

from duetto.audio import SAMPLE_RATE
from duetto.config import Settings
from duetto.dialogue import APOLOGY, Conversation, Memory, Turn
from duetto.frames import AgentText, Interrupt, SpeechAudio, SpeechStopped, Transcript, TurnDone
from duetto.pipeline import PRE_ROLL_S
from duetto.talk import Engine, make_dialogue_audio, render_timeline, run_session


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def engine():
    return Engine.load(Settings())


@pytest.fixture(scope="module")
def silence_engine(engine):
    """Turns end after 500 ms of silence, whatever the end-of-turn model would say."""
    settings = Settings()
    settings.turn.end_of_turn = "silence"
    return Engine(settings, engine.vad_factory, engine.asr, engine.tts, {}, end_of_turn=None)


def test_two_spoken_questions_get_two_replies(engine, tts):
    questions = ["What is the capital of Spain?", "How many days are there in a year?"]
    audio = make_dialogue_audio(tts, questions, gap_s=8.0)

    async def main():
        return await run_session(engine.session(), audio, realtime=True)

    result = asyncio.run(main())
    assert len(result.turns) == 2
    for turn, question in zip(result.turns, questions, strict=True):
        assert jiwer.wer(normalize(question), normalize(turn.user_text)) <= 0.10, turn.user_text
        assert turn.agent_text.strip() and not turn.interrupted
        assert turn.voice_to_voice_ms is not None and turn.voice_to_voice_ms > 0
        assert turn.agent_start > turn.user_end  # the agent answers after the user stops
        for stage in (
            "endpoint_ms",
            "asr_ms",
            "first_clause_ms",
            "tts_first_audio_ms",
            "llm_first_token_ms",
        ):
            assert getattr(turn, stage) is not None, stage
    # The agent's audio lies on the input's timeline, inside each reply's window.
    agent = result.agent_audio
    rate = result.sample_rate
    first = result.turns[0]
    assert np.abs(agent[: int(first.user_end * rate)]).max() == 0  # silent while the user asks
    assert np.abs(agent[int(first.agent_start * rate) : int(first.agent_end * rate)]).max() > 0.1
    partials = [f for f in result.frames if isinstance(f, Transcript) and not f.final]
    assert partials, "no partial transcript while the user spoke"


class ScriptedResponder:
    """A long, fixed reply, streamed clause by clause: this test is about barge-in, not the LLM."""

    CLAUSES = [
        "Once upon a time, in a valley far away,",
        "there lived a dragon who loved to count the stars every single night,",
        "and he never, ever missed a single one of them.",
    ]

    def __init__(self):
        self.memory = Memory("story teller")
        self.first_token_at = None

    def respond(self, user_text, *, context=None):
        yield from self.CLAUSES

    def record(self, user_text, agent_text, *, interrupted=False):
        self.memory.add(Turn(user_text, agent_text, interrupted))


def speech_onset(audio: np.ndarray, threshold: float = 0.02) -> float:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return loud[0] / SAMPLE_RATE


def test_barge_in_stops_the_agent_within_200_ms(engine, speak):
    question = np.concatenate(
        [np.zeros(8000, np.float32), speak("Tell me a story about a dragon.")]
    )
    interruption = speak("Wait, stop please.")
    responder = ScriptedResponder()
    step = int(0.02 * SAMPLE_RATE)

    async def main():
        session = engine.session(responder, realtime=True)
        frames = []

        async def consume():
            async for frame in session.events():
                frames.append(frame)

        consumer = asyncio.ensure_future(consume())
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        first_audio_at = None
        interrupt_onset = None
        audio = question
        while sent < len(audio) or session.busy():
            if sent < len(audio):
                chunk = audio[sent : sent + step]
            else:
                chunk = np.zeros(step, np.float32)
            session.push(chunk)
            sent += len(chunk)
            if first_audio_at is None and any(isinstance(f, SpeechAudio) for f in frames):
                first_audio_at = sent / SAMPLE_RATE
            if (
                interrupt_onset is None
                and first_audio_at
                and sent / SAMPLE_RATE > first_audio_at + 1.0
            ):
                # The agent has been speaking for a second: the user cuts in.
                interrupt_onset = sent / SAMPLE_RATE + speech_onset(interruption)
                audio = np.concatenate(
                    [
                        audio,
                        np.zeros(sent - len(audio), np.float32),
                        interruption,
                        np.zeros(SAMPLE_RATE, np.float32),
                    ]
                )
            await asyncio.sleep(max(0.0, start + sent / SAMPLE_RATE - loop.time()))
            if sent > 60 * SAMPLE_RATE:
                break
        await session.close()
        await consumer
        return frames, interrupt_onset, session.sample_rate

    frames, onset, rate = asyncio.run(main())
    assert onset is not None, "the agent never started speaking"
    interrupts = [f for f in frames if isinstance(f, Interrupt)]
    assert len(interrupts) == 1
    stop = interrupts[0].stopped_at
    assert 0 <= stop - onset <= 0.200, (
        f"agent stopped {1000 * (stop - onset):.0f} ms after the user began"
    )
    # Nothing of the interrupted reply is heard after the stop.
    agent = render_timeline(frames, rate)
    first_reply_end = [f for f in frames if isinstance(f, TurnDone)][0].metrics.agent_end
    assert first_reply_end <= stop + 1e-3
    assert np.abs(agent[int(stop * rate) + 1 : int((stop + 0.8) * rate)]).max(initial=0) == 0
    # History records what was actually said, marked as interrupted.
    turn = responder.memory.turns[0]
    full = " ".join(ScriptedResponder.CLAUSES)
    assert turn.interrupted and turn.agent and full.startswith(turn.agent) and turn.agent != full
    assert interrupts[0].said == turn.agent


class _FlakyLLMServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that dies in the middle of its first reply."""

    calls = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._json({"object": "list", "data": [{"id": "flaky", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not body.get("stream"):  # a keep-warm request (llm.keep_warm), not a reply
            self._json({"choices": [{"message": {"role": "assistant", "content": "."}}]})
            return
        type(self).calls += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        words = (
            ["Sure", ", let", " me", " check", " that."]
            if type(self).calls == 1
            else ["It", " is", " sunny", " today."]
        )
        for i, word in enumerate(words):
            chunk = {"choices": [{"delta": {"content": word}, "index": 0}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if type(self).calls == 1 and i == 1:
                self.connection.shutdown(2)  # the server dies mid-reply
                return
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_dead_llm_mid_turn_apologises_and_the_session_goes_on(engine, tts):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyLLMServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = Settings()
        settings.llm.url = f"http://127.0.0.1:{server.server_port}/v1"
        conversation = Conversation.from_settings(settings)
        # The gap leaves the whole apology (~5 s) time to play out even on a loaded machine.
        audio = make_dialogue_audio(tts, ["What is the weather like?", "And tomorrow?"], gap_s=10.0)

        async def main():
            return await run_session(engine.session(conversation), audio, realtime=True)

        result = asyncio.run(main())
    finally:
        server.shutdown()
    said = [f.text for f in result.frames if isinstance(f, AgentText)]
    assert APOLOGY in said
    assert len(result.turns) == 2
    assert APOLOGY in result.turns[0].agent_text
    assert result.turns[1].agent_text == "It is sunny today."
    assert any(
        isinstance(f, SpeechAudio) and f.text == APOLOGY for f in result.frames
    )  # spoken, not just logged


def test_cancel_right_at_the_end_of_turn_records_the_turn_and_frees_the_session(engine, speak):
    """A client's response.cancel while the final ASR may still run: nothing hangs or leaks."""
    audio = np.concatenate(
        [
            np.zeros(8000, np.float32),
            speak("What time is it?"),
            np.zeros(3 * SAMPLE_RATE, np.float32),
        ]
    )
    responder = ScriptedResponder()
    step = int(0.02 * SAMPLE_RATE)

    async def main():
        session = engine.session(responder, realtime=True)
        frames = []

        async def consume():
            async for frame in session.events():
                frames.append(frame)
                if isinstance(frame, SpeechStopped):
                    session.interrupt()

        consumer = asyncio.ensure_future(consume())
        loop = asyncio.get_running_loop()
        start = loop.time()
        for sent in range(0, len(audio), step):
            session.push(audio[sent : sent + step])
            await asyncio.sleep(max(0.0, start + (sent + step) / SAMPLE_RATE - loop.time()))
        await asyncio.wait_for(session.close(), timeout=30)
        await consumer
        return frames, session

    frames, session = asyncio.run(main())
    done = [f.metrics for f in frames if isinstance(f, TurnDone)]
    assert len(done) == 1 and done[0].interrupted and done[0].agent_text == ""
    # Reply audio may already have been queued when the cancel came: it is cut at once.
    agent = render_timeline(frames, engine.tts.sample_rate)
    assert np.count_nonzero(np.abs(agent) > 1e-4) / engine.tts.sample_rate < 0.05
    assert responder.memory.turns[0].interrupted
    assert not session.busy()


def trimmed(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Without the voice's own leading and trailing silence, so a pause is exactly what we add."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return audio[loud[0] : loud[-1] + 1]


class CountingResponder(ScriptedResponder):
    def __init__(self, speculative: bool):
        super().__init__()
        self.speculative = speculative
        self.heard: list[str] = []

    def respond(self, user_text, *, context=None):
        self.heard.append(user_text)
        yield "Done."


@pytest.mark.parametrize("speculative", [True, False])
def test_a_responder_with_side_effects_hears_only_confirmed_turns(
    silence_engine, speak, speculative
):
    pause = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)  # past speculation, short of the end
    audio = np.concatenate(
        [
            np.zeros(8000, np.float32),
            trimmed(speak("Transfer fifty pounds")),
            pause,
            trimmed(speak("to my savings account.")),
            np.zeros(3 * SAMPLE_RATE, np.float32),
        ]
    )
    responder = CountingResponder(speculative)

    async def main():
        return await run_session(silence_engine.session(responder), audio, realtime=True)

    result = asyncio.run(main())
    assert len(result.turns) == 1 and "savings" in result.turns[0].user_text.lower()
    assert "savings" in responder.heard[-1].lower()
    if not speculative:
        # Never asked about the half-turn "Transfer fifty pounds" (a speculative responder may
        # have been, its reply dropped unheard).
        assert len(responder.heard) == 1


def test_a_spoken_number_is_answered_not_dropped_as_noise(silence_engine, tts):
    """Whisper writes "two eight nine one" as "2891": no letters, but the user said something."""
    audio = make_dialogue_audio(tts, ["Two eight nine one."], gap_s=6.0)

    async def main():
        return await run_session(silence_engine.session(), audio, realtime=True)

    result = asyncio.run(main())
    assert len(result.turns) == 1
    turn = result.turns[0]
    assert re.fullmatch(r"[\d\s.,]+", turn.user_text), turn.user_text  # the case under test
    assert turn.agent_text.strip() and turn.agent_start is not None


def test_a_pause_is_transcribed_once_early_and_the_reply_reuses_it(engine, tts, monkeypatch):
    """turn.transcribe_after_ms: the turn is transcribed ~100 ms into the pause (and the
    end-of-turn model asked); the speculative reply at 200 ms waits for that, not a second run."""
    calls = []
    transcribe = engine.asr.transcribe

    def counting(audio, **kwargs):
        calls.append(len(audio) / SAMPLE_RATE)
        return transcribe(audio, **kwargs)

    monkeypatch.setattr(engine.asr, "transcribe", counting)
    audio = make_dialogue_audio(tts, ["What is the tallest mountain in the world?"], gap_s=6.0)

    async def main():
        return await run_session(engine.session(), audio, realtime=True)

    result = asyncio.run(main())
    assert len(result.turns) == 1 and result.turns[0].agent_text
    turn = result.turns[0]
    # Seconds of pause at the end of each call's audio (the turn's audio starts a pre-roll early).
    pauses = [seconds - (turn.user_end - turn.user_start) - PRE_ROLL_S for seconds in calls]
    at_pause = [p for p in pauses if p > 0.05]
    assert len(at_pause) == 1, pauses  # one transcription of the ended turn, shared
    assert at_pause[0] < Settings().turn.speculate_after_ms / 1000, pauses


class AlternativesResponder:
    """Reads the ASR's n-best of each turn (duetto.dialogue.Responder.hears_alternatives)."""

    hears_alternatives = True

    def __init__(self):
        self.heard: list[tuple[str, tuple]] = []

    def respond(self, user_text, *, context=None, alternatives=()):
        self.heard.append((user_text, alternatives))
        yield "Noted."

    def record(self, user_text, agent_text, *, interrupted=False):
        pass


def test_the_asrs_alternatives_reach_the_responder_and_the_final_transcript(silence_engine, tts):
    from duetto.asr.whisper import WhisperASR
    from duetto.talk import Engine

    e = silence_engine
    settings = Settings()
    settings.turn.end_of_turn = "silence"
    settings.asr.nbest = 3
    engine = Engine(settings, e.vad_factory, WhisperASR(settings.asr), e.tts, {}, end_of_turn=None)
    audio = make_dialogue_audio(tts, ["I need to withdraw some money from a cash machine."], 6.0)
    responder = AlternativesResponder()

    async def main():
        return await run_session(engine.session(responder), audio, realtime=True)

    result = asyncio.run(main())
    assert len(result.turns) == 1 and len(responder.heard) == 1
    text, alternatives = responder.heard[0]
    assert len(alternatives) == 3 and alternatives[0][0] == text == result.turns[0].user_text
    finals = [f for f in result.frames if isinstance(f, Transcript) and f.final]
    assert [f.alternatives for f in finals] == [alternatives]
    partials = [f for f in result.frames if isinstance(f, Transcript) and not f.final]
    assert partials and all(f.alternatives == () for f in partials)  # partials never pay
