"""A real uvicorn server on 127.0.0.1 (a free port) with the embedded models, shared by the tests.

Servers run in threads of the test process so they share one loaded engine; each is a complete
uvicorn server speaking HTTP and WebSocket over TCP, driven by real clients.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from duetto.audio import SAMPLE_RATE, resample, to_pcm16
from duetto.dialogue import Memory, Turn

WIRE_RATE = 24_000
# Realtime tests send audio this much faster than real time: the session's clock follows the
# audio it receives, so turns end and replies "play out" sooner without changing what is heard.
FAST = 4.0
PACKET_S = 0.04


class StoryResponder:
    """A long scripted reply, clause by clause: for tests about barge-in, cancel and transport,
    where the LLM's words do not matter. Records how far it got and when it was stopped."""

    CLAUSES = [
        "Once upon a time, in a valley far away, there lived a dragon.",
        "Every single night, the dragon counted the stars above the hills.",
        "He counted them slowly, one by one, from the first to the very last.",
        "The villagers below could hear him whisper the numbers in the dark.",
        "One winter, a little girl climbed the hill to ask him why he counted.",
        "He told her that a star forgotten was a wish that nobody could make.",
        "So the two of them counted together, night after night, until spring.",
        "And every star they counted became a wish for someone in the valley.",
    ]

    def __init__(self, settings=None):
        self.memory = Memory("story teller")
        self.first_token_at = None
        self.yielded = 0
        self.stopped = threading.Event()
        StoryResponder.last = self

    def respond(self, user_text, *, context=None):
        self.first_token_at = time.perf_counter()
        try:
            for clause in self.CLAUSES:
                self.yielded += 1
                yield clause
        finally:
            self.stopped.set()

    def record(self, user_text, agent_text, *, interrupted=False):
        self.memory.add(Turn(user_text, agent_text, interrupted))


class EchoResponder:
    """Repeats what it heard and how many turns it remembers: shows whose audio and history a
    session sees, without the LLM."""

    def __init__(self, settings=None):
        self.memory = Memory("echo")

    def respond(self, user_text, *, context=None):
        yield f"You said: {user_text.strip().rstrip('.?!')}."
        yield f"I remember {len(self.memory.turns)} earlier turns."

    def record(self, user_text, agent_text, *, interrupted=False):
        self.memory.add(Turn(user_text, agent_text, interrupted))


TEST_AGENTS = {"story": StoryResponder, "echo": EchoResponder}


class ServerThread:
    """uvicorn on a socket bound to 127.0.0.1:0, served from a daemon thread."""

    def __init__(self, app):
        import uvicorn

        from duetto.server.state import WS_MAX_FRAME_BYTES

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/realtime"
        self.app = app
        config = uvicorn.Config(app, log_level="warning", ws_max_size=WS_MAX_FRAME_BYTES)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def state(self):
        return self.app.state.duetto


@pytest.fixture(scope="session")
def engine():
    from duetto.config import Settings
    from duetto.server.app import load_engine

    settings = Settings()
    settings.tts.variation = 0.0  # the same audio for the same text on every run (no flaky lengths)
    engine, _ = load_engine(settings)
    return engine


def start_server(engine, **config) -> ServerThread:
    from duetto.server.app import create_app
    from duetto.server.state import ServerConfig

    app = create_app(engine.settings, ServerConfig(**config), engine=engine, agents=TEST_AGENTS)
    return ServerThread(app).__enter__()


# Small limits, so the tests of the limits move little data.
UPLOAD_LIMIT = 2 * 1024 * 1024
OUTBOX_LIMIT = 512 * 1024


@pytest.fixture(scope="session")
def server(engine) -> Iterator[ServerThread]:
    srv = start_server(engine, max_upload_bytes=UPLOAD_LIMIT, max_outbox_bytes=OUTBOX_LIMIT)
    yield srv
    srv.__exit__()


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def question_wav(tmp_path_factory, speak) -> tuple:
    """Two spoken questions with a pause between them, as a WAV file (path, 16 kHz samples)."""
    from duetto.audio import write_wav

    audio = np.concatenate(
        [
            np.zeros(int(0.3 * SAMPLE_RATE), np.float32),
            speak("What is the capital of France?"),
            np.zeros(int(1.0 * SAMPLE_RATE), np.float32),
            speak("And how many people live there?"),
            np.zeros(int(0.3 * SAMPLE_RATE), np.float32),
        ]
    )
    path = write_wav(tmp_path_factory.mktemp("audio") / "questions.wav", audio, SAMPLE_RATE)
    return path, audio


# ----------------------------------------------------------------------------- realtime helpers
def pcm_events(audio16k: np.ndarray) -> list[str]:
    """16 kHz float audio as input_audio_buffer.append events of PACKET_S each (24 kHz PCM16)."""
    wire = resample(audio16k, SAMPLE_RATE, WIRE_RATE)
    step = int(PACKET_S * WIRE_RATE)
    return [
        json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(to_pcm16(wire[i : i + step])).decode(),
            }
        )
        for i in range(0, len(wire), step)
    ]


class Realtime:
    """A websockets client that records every server event and can feed audio in the background."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []
        self.feeder: asyncio.Task | None = None

    async def next(self, kind: str, timeout: float = 90.0, **match) -> dict:
        """The next event of ``kind`` (whose fields equal ``match``), skipping others."""

        async def wait():
            while True:
                event = json.loads(await self.ws.recv())
                self.events.append(event)
                if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                    return event

        return await asyncio.wait_for(wait(), timeout)

    async def send(self, event: dict | str) -> None:
        await self.ws.send(event if isinstance(event, str) else json.dumps(event))

    def feed(self, audio16k: np.ndarray, speed: float = FAST, then_silence: bool = True) -> None:
        """Send ``audio`` at ``speed`` x real time, then silence until stopped (like a live mic)."""
        self.stop_feeding()

        async def run():
            gap = PACKET_S / speed
            for event in pcm_events(audio16k):
                await self.ws.send(event)
                await asyncio.sleep(gap)
            silence = pcm_events(np.zeros(int(PACKET_S * SAMPLE_RATE), np.float32))[0]
            while then_silence:
                await self.ws.send(silence)
                await asyncio.sleep(gap)

        self.feeder = asyncio.ensure_future(run())

    def stop_feeding(self) -> None:
        if self.feeder is not None:
            self.feeder.cancel()
            self.feeder = None

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]


def realtime_connect(url: str, **kwargs):
    import websockets

    return websockets.connect(url, max_size=None, open_timeout=30, **kwargs)


def metric(text: str, name: str, **labels) -> float:
    """A sample's value from a Prometheus exposition (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0
