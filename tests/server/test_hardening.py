"""Server hardening: rate limits, keys, size/duration limits, stage timeouts, clean error bodies,
CORS off by default, and a small schemathesis + WebSocket fuzz run."""

from __future__ import annotations

import asyncio
import copy
import io
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from duetto.audio import SAMPLE_RATE

from .conftest import ServerThread, realtime_connect, start_server

LEAKS = ("Traceback", "/etc/", "/srv/", "/home/", "/tmp/", "site-packages", 'File "')


def assert_clean(response: httpx.Response) -> dict:
    """An OpenAI-shaped error body that names no file and holds no stack trace."""
    for leak in LEAKS:
        assert leak not in response.text, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def wav_bytes(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE, format="WAV")
    return buf.getvalue()


def transcribe(url: str, data: bytes, name: str = "a.wav", **headers) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/audio/transcriptions",
        files={"file": (name, data)},
        data={"model": "whisper-1"},
        headers=headers,
        timeout=60,
    )


# ----------------------------------------------------------------------------- rate limits, keys
def test_rate_limit_gives_429_with_retry_after(engine):
    srv = start_server(engine, rate_limit_per_min=3)
    try:
        codes = [httpx.get(f"{srv.url}/v1/models").status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = httpx.get(f"{srv.url}/v1/models")
        assert limited.status_code == 429
        error = assert_clean(limited)
        assert error["code"] == "rate_limit_exceeded" and "per minute" in error["message"]
        assert int(limited.headers["retry-after"]) >= 1
        assert httpx.get(f"{srv.url}/healthz").status_code == 200  # monitoring is not limited
    finally:
        srv.__exit__()


def test_each_key_has_its_own_budget_and_guesses_spend_the_address(engine):
    srv = start_server(engine, api_keys=("key-one", "key-two"), rate_limit_per_min=2)
    try:

        def get(key):
            return httpx.get(f"{srv.url}/v1/models", headers={"Authorization": f"Bearer {key}"})

        assert [get("key-one").status_code for _ in range(3)] == [200, 200, 429]
        assert get("key-two").status_code == 200  # another key, another budget
        assert [get(f"guess-{i}").status_code for i in range(3)] == [401, 401, 429]
        assert assert_clean(get("guess"))["code"] == "rate_limit_exceeded"
    finally:
        srv.__exit__()


def test_realtime_handshake_checks_every_key_and_the_rate_limit(engine):
    import websockets

    srv = start_server(engine, api_keys=("k1", "k2"), rate_limit_per_min=2)

    async def connect(key):
        try:
            async with realtime_connect(
                srv.ws_url, additional_headers={"Authorization": f"Bearer {key}"}
            ) as ws:
                return (await ws.recv()) and 101
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    try:
        assert asyncio.run(connect("k2")) == 101
        assert asyncio.run(connect("nope")) == 401
        assert asyncio.run(connect("k2")) == 101
        assert asyncio.run(connect("k2")) == 429
    finally:
        srv.__exit__()


# ----------------------------------------------------------------------------- sizes and duration
def test_audio_longer_than_the_limit_is_refused(engine):
    srv = start_server(engine, max_audio_s=1.0)
    try:
        buf = io.BytesIO()  # 60 s of silence in FLAC: a few kB that decode to 3.8 MB
        sf.write(buf, np.zeros(60 * SAMPLE_RATE, np.float32), SAMPLE_RATE, format="FLAC")
        assert len(buf.getvalue()) < 100_000
        for data in (wav_bytes(2.0), buf.getvalue()):
            response = transcribe(srv.url, data)
            assert response.status_code == 413
            assert assert_clean(response)["code"] == "audio_too_long"
    finally:
        srv.__exit__()


# ----------------------------------------------------------------------------- error bodies
def test_error_bodies_name_no_path_and_hold_no_trace(server):
    speech = httpx.post(
        f"{server.url}/v1/audio/speech",
        json={"model": "tts-1", "input": "hello", "voice": "/etc/passwd"},
    )
    assert speech.status_code == 404 and assert_clean(speech)["code"] == "model_not_found"
    broken = transcribe(server.url, b"RIFF\x00\x00WAVEfmt garbage", name="/home/me/secret.wav")
    assert broken.status_code == 400 and assert_clean(broken)["code"] == "invalid_audio"
    assert "secret.wav" in broken.json()["error"]["message"]  # the name, not the folder
    torn = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        content=b"--xyz\r\nContent-Disposition: form-data; name=file\r\n\r\nabc",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert 400 <= torn.status_code < 500
    assert_clean(torn)


class BrokenASR:
    """An ASR that fails the way a bug would: an exception whose text names a server path."""

    def __init__(self, asr):
        self.asr = asr

    def __getattr__(self, name):
        return getattr(self.asr, name)

    def transcribe(self, *args, **kwargs):
        raise RuntimeError("model weights missing at /srv/secret/whisper/model.bin")


class StuckASR(BrokenASR):
    def __init__(self, asr):
        super().__init__(asr)
        self.release = threading.Event()

    def transcribe(self, *args, **kwargs):
        self.release.wait(10)
        return self.asr.transcribe(*args, **kwargs)


def server_with_asr(engine, asr, **config) -> ServerThread:
    patched = copy.copy(engine)
    patched.asr = asr
    return start_server(patched, **config)


def test_an_internal_exception_is_a_500_without_details(engine):
    srv = server_with_asr(engine, BrokenASR(engine.asr))
    try:
        response = transcribe(srv.url, wav_bytes(0.5))
        assert response.status_code == 500
        error = assert_clean(response)
        assert error["message"] == "internal error: RuntimeError" and "secret" not in response.text
    finally:
        srv.__exit__()


# ----------------------------------------------------------------------------- timeouts
def test_a_stuck_asr_times_out_with_504(engine):
    asr = StuckASR(engine.asr)
    srv = server_with_asr(engine, asr, asr_timeout_s=0.5)
    try:
        started = time.monotonic()
        response = transcribe(srv.url, wav_bytes(0.5))
        assert time.monotonic() - started < 5
        assert response.status_code == 504
        error = assert_clean(response)
        assert error["code"] == "stage_timeout" and "speech recognition" in error["message"]
    finally:
        asr.release.set()
        srv.__exit__()


def test_a_stuck_llm_times_out_with_504(engine, monkeypatch):
    from duetto.dialogue import Conversation

    release = threading.Event()

    def stuck(self, user_text, **kwargs):
        release.wait(10)
        yield "too late"

    monkeypatch.setattr(Conversation, "respond", stuck)
    srv = start_server(engine, llm_timeout_s=0.5)
    try:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(f"{srv.url}/v1/chat/completions", json=body, timeout=30)
        assert response.status_code == 504
        assert "the LLM" in assert_clean(response)["message"]
    finally:
        release.set()
        srv.__exit__()


def test_a_stuck_voice_times_out_with_504(engine, monkeypatch):
    import duetto.tts

    release = threading.Event()

    class StuckVoice:
        sample_rate = 22_050

        def stream(self, text, speed=1.0):
            release.wait(10)
            yield np.zeros(100, np.float32)

    monkeypatch.setattr(duetto.tts, "load_tts", lambda settings: StuckVoice())
    srv = start_server(engine, tts_timeout_s=0.5)
    try:
        body = {"model": "tts-1", "input": "hello", "voice": "alloy", "response_format": "wav"}
        response = httpx.post(f"{srv.url}/v1/audio/speech", json=body, timeout=30)
        assert response.status_code == 504
        assert "speech synthesis" in assert_clean(response)["message"]
    finally:
        release.set()
        srv.__exit__()


class StuckResponder:
    """An agent whose LLM never answers (until the test ends)."""

    release = threading.Event()

    def __init__(self, settings=None):
        from duetto.dialogue import Memory

        self.memory = Memory("stuck")

    def respond(self, user_text, *, context=None):
        StuckResponder.release.wait(15)
        yield "too late"

    def record(self, user_text, agent_text, *, interrupted=False):
        pass


def test_a_stuck_realtime_turn_gets_a_timeout_error_event(engine, speak):
    from duetto.server.app import create_app
    from duetto.server.state import ServerConfig

    from .conftest import Realtime

    app = create_app(
        engine.settings, ServerConfig(llm_timeout_s=1.0), engine=engine,
        agents={"stuck": StuckResponder},
    )  # fmt: skip
    srv = ServerThread(app).__enter__()

    async def talk():
        async with realtime_connect(srv.ws_url + "?agent=stuck") as ws:
            rt = Realtime(ws)
            await rt.next("session.created")
            rt.feed(speak("What time is it?"))
            await rt.next("input_audio_buffer.committed", timeout=60)
            error = await rt.next("error", timeout=30)
            rt.stop_feeding()
            return error["error"]

    try:
        error = asyncio.run(talk())
        assert error["code"] == "stage_timeout" and "LLM" in error["message"]
    finally:
        StuckResponder.release.set()
        srv.__exit__()


# ----------------------------------------------------------------------------- CORS
def test_cors_is_off_by_default_and_on_when_configured(server, engine):
    origin = {"Origin": "https://evil.example"}
    plain = httpx.get(f"{server.url}/v1/models", headers=origin)
    preflight = httpx.options(
        f"{server.url}/v1/models",
        headers=origin | {"Access-Control-Request-Method": "GET"},
    )
    for response in (plain, preflight):
        assert not any(h.startswith("access-control-") for h in response.headers)
    srv = start_server(engine, cors_origins=("https://app.example",))
    try:
        allowed = httpx.get(f"{srv.url}/v1/models", headers={"Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.get(f"{srv.url}/v1/models", headers=origin)
        assert "access-control-allow-origin" not in other.headers
    finally:
        srv.__exit__()


# ----------------------------------------------------------------------------- fuzzing (small)
def test_schemathesis_finds_no_server_error(engine):
    pytest.importorskip("schemathesis")
    from duetto.safety.hardening import fuzz_http

    srv = start_server(engine, rate_limit_per_min=0)
    try:
        report = fuzz_http(srv.url, examples=4, seed=3)
        assert report.cases >= 30
        assert report.server_errors == []
        assert report.check_failures == []
        assert any(code.startswith("4") for code in report.statuses)  # bad input was generated
        assert httpx.get(f"{srv.url}/healthz").json()["status"] == "ok"
    finally:
        srv.__exit__()


def test_malformed_realtime_events_never_drop_the_session(server):
    from duetto.safety.hardening import fuzz_realtime

    report = asyncio.run(
        fuzz_realtime(server.ws_url, cases=48, seed=5, max_event_bytes=4 * 1024 * 1024)
    )
    assert report.server_errors == []
    assert report.statuses.get("error event", 0) >= 40  # each bad event got an error back
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
