"""Bad input over HTTP: each gets the right status and an OpenAI-shaped error naming the problem."""

from __future__ import annotations

import io
import subprocess
import sys

import httpx
import openai
import pytest

from .conftest import UPLOAD_LIMIT, start_server


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code", "param"} <= set(body["error"])
    return body["error"]


def test_upload_too_large_is_413(client):
    big = io.BytesIO(b"\0" * (UPLOAD_LIMIT + 1024))
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", big))
    assert info.value.status_code == 413
    error = error_of(info.value)
    assert error["code"] == "file_too_large" and "limit" in error["message"]


def test_chunked_upload_too_large_is_413(server):
    def body():
        for _ in range(UPLOAD_LIMIT // 65536 + 2):
            yield b"\0" * 65536

    r = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("notes.wav", b"this is plainly not audio at all" * 20, "not audio duetto can decode"),
        ("cut.wav", None, "truncated"),
        ("empty.mp3", b"", "empty"),
    ],
)
def test_bad_audio_is_400(client, question_wav, name, data, says):
    if data is None:
        data = question_wav[0].read_bytes()[:5000]  # header promises more than is there
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=(name, io.BytesIO(data)))
    error = error_of(info.value)
    assert says in error["message"] and name in error["message"]
    assert error["type"] == "invalid_request_error"


def test_missing_fields_are_422(server):
    r = httpx.post(f"{server.url}/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert r.status_code == 422
    assert r.json()["error"]["param"] == "file" and "missing" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "input"
    r = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "duetto-chat"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "messages"


def test_out_of_range_values_are_422(client):
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=9.0)
    assert error_of(info.value)["param"] == "speed"


def test_unknown_model_or_voice_is_404_with_the_valid_ones(client, question_wav):
    with pytest.raises(openai.NotFoundError) as info:
        client.audio.speech.create(model="tts-1", voice="darth-vader", input="Hello.")
    error = error_of(info.value)
    assert "darth-vader" in error["message"] and "alloy" in error["message"]
    with pytest.raises(openai.NotFoundError) as info:
        client.audio.speech.create(model="tts-9000", voice="alloy", input="Hello.")
    assert "tts-1" in error_of(info.value)["message"]
    with open(question_wav[0], "rb") as f, pytest.raises(openai.NotFoundError) as info:
        client.audio.transcriptions.create(model="whisper-9", file=f)
    assert "whisper-1" in error_of(info.value)["message"]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert "duetto-chat" in error_of(info.value)["message"]


def test_voice_must_be_a_name_not_a_server_path(client):
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="tts-1", voice="/etc/passwd", input="Hello.")


def test_chat_must_end_with_a_user_message(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="duetto-chat", messages=[{"role": "assistant", "content": "Hi!"}]
        )
    assert "last message" in error_of(info.value)["message"]


def test_unknown_route_is_404_in_openai_shape(server):
    r = httpx.get(f"{server.url}/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.fixture(scope="module")
def locked_server(engine):
    srv = start_server(engine, api_key="s3cret-key")
    yield srv
    srv.__exit__()


def test_api_key_is_required_when_set(locked_server):
    wrong = openai.OpenAI(base_url=f"{locked_server.url}/v1", api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert error_of(info.value)["code"] == "invalid_api_key"
    right = openai.OpenAI(base_url=f"{locked_server.url}/v1", api_key="s3cret-key", max_retries=0)
    assert any(m.id == "whisper-1" for m in right.models.list())
    # The page and health stay public: they hold no data and the page asks for the key itself.
    assert httpx.get(f"{locked_server.url}/healthz").json()["auth_required"] is True


def test_serve_reports_a_busy_port_in_one_line(server):
    result = subprocess.run(
        [sys.executable, "-m", "duetto.cli", "serve", "--port", str(server.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr


def test_unknown_language_is_400(client, question_wav):
    with open(question_wav[0], "rb") as f, pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=f, language="klingon")
    assert "unknown language 'klingon'" in error_of(info.value)["message"]
