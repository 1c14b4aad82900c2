"""The OpenAI-compatible endpoints, driven by the official ``openai`` client over real HTTP."""

from __future__ import annotations

import json
import re
import time

import httpx
import jiwer
import numpy as np
import openai
import pytest

from duetto.audio import SAMPLE_RATE, load_audio

from .conftest import metric

QUESTIONS = "What is the capital of France? And how many people live there?"


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def test_transcription_matches_duetto_transcribe(client, question_wav, capsys):
    from duetto.cli import main

    path, _ = question_wav
    with open(path, "rb") as f:
        api = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert main(["transcribe", str(path), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert api.text == cli["text"]
    with open(path, "rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert text == api.text + "\n"
    assert jiwer.wer(normalize(QUESTIONS), normalize(api.text)) <= 0.15, api.text


def test_transcription_formats_and_timestamps(client, question_wav):
    path, audio = question_wav
    with open(path, "rb") as f:
        verbose = client.audio.transcriptions.create(
            model="duetto-asr",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert verbose.duration == pytest.approx(len(audio) / SAMPLE_RATE, abs=0.01)
    assert jiwer.wer(normalize(QUESTIONS), normalize(verbose.text)) <= 0.15
    words = verbose.words
    assert len(words) >= 10
    assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
    # The second question starts after the 1 s pause that follows the first (~0.3 + 1.9 s).
    second = next(w for w in words if normalize(w.word) == "and")
    assert second.start > 2.5, second
    assert [normalize(s.text) for s in verbose.segments if s.text.strip()] == [
        normalize("What is the capital of France?"),
        normalize("And how many people live there?"),
    ]
    with open(path, "rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    blocks = [b.splitlines() for b in srt.strip().split("\n\n")]
    assert [b[0] for b in blocks] == ["1", "2"]
    assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", blocks[1][1])
    assert blocks[1][1] > blocks[0][1] and "France" in blocks[0][2]
    with open(path, "rb") as f:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n") and re.search(r"\d\d:\d\d:\d\d\.\d{3} --> ", vtt)


def test_transcription_streams_phrase_by_phrase(client, question_wav):
    path, _ = question_wav
    with open(path, "rb") as f:
        events = list(
            client.audio.transcriptions.create(model="gpt-4o-transcribe", file=f, stream=True)
        )
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) == 2, deltas  # one per question: the pause between them cuts the audio
    assert events[-1].type == "transcript.text.done"
    assert events[-1].text == "".join(deltas)
    assert jiwer.wer(normalize(QUESTIONS), normalize(events[-1].text)) <= 0.15


FORMATS = ["wav", "mp3", "flac", "opus", "aac", "pcm"]


def test_speech_in_every_format(client):
    text = "Hello there. This is duetto speaking."
    durations = {}
    for fmt in FORMATS:
        with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, response_format=fmt
        ) as response:
            data = response.read()
        if fmt == "pcm":
            samples, rate = np.frombuffer(data, "<i2") / 32768, 24_000  # raw, as OpenAI's
        else:
            samples, rate = load_audio(data), SAMPLE_RATE
        durations[fmt] = len(samples) / rate
        assert np.abs(samples).max() > 0.2, fmt  # speech, not silence
    reference = durations["wav"]
    assert 1.0 < reference < 5.0
    for fmt, seconds in durations.items():
        # Each call is synthesized anew (Piper's durations vary a little) and lossy encoders pad.
        assert seconds == pytest.approx(reference, rel=0.2), (fmt, durations)


def test_speech_is_streamed_as_synthesized(server):
    """Bytes of the first sentence arrive while later ones are still being synthesized."""
    sentences = " ".join(f"This is sentence number {n}, spoken on its own." for n in range(1, 7))
    body = {"model": "tts-1", "voice": "alloy", "input": sentences, "response_format": "wav"}
    arrivals = []
    with httpx.stream("POST", f"{server.url}/v1/audio/speech", json=body, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        started = time.perf_counter()
        for chunk in r.iter_raw():
            arrivals.append((time.perf_counter() - started, len(chunk)))
    total_time = arrivals[-1][0]
    first_audio = next(t for t, n in arrivals if n > 44)
    assert len(arrivals) >= 3
    assert first_audio < 0.6 * total_time, arrivals


def test_speech_roundtrip_and_speed(client, server):
    text = "Please send the report to the office tomorrow morning."
    audio = {}
    for speed in (1.0, 2.0):
        data = client.audio.speech.create(
            model="duetto-tts", voice="bundled", input=text, response_format="wav", speed=speed
        ).content
        audio[speed] = load_audio(data)
    assert len(audio[2.0]) < 0.7 * len(audio[1.0])
    heard = server.state.engine.asr.transcribe(audio[1.0]).text
    assert jiwer.wer(normalize(text), normalize(heard)) <= 0.2, heard


def test_chat_completion(client):
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a helpful geography assistant."},
            {"role": "user", "content": "What is the capital of Italy?"},
        ],
    )
    text = reply.choices[0].message.content
    assert "rome" in text.lower(), text
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0
    assert "Assistant:" not in text and "User:" not in text  # the few-shot scaffolding is cut


def test_chat_completion_streamed(client):
    chunks = list(
        client.chat.completions.create(
            model="duetto-chat",
            messages=[{"role": "user", "content": "Can you give me a tip for cooking pasta?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert deltas and len("".join(deltas).split()) >= 3
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens > 0


def test_models(client):
    ids = {m.id for m in client.models.list()}
    assert {
        "duetto-asr",
        "whisper-1",
        "duetto-tts",
        "tts-1",
        "duetto-chat",
        "duetto-realtime",
    } <= ids
    assert client.models.retrieve("whisper-1").owned_by == "duetto"


def test_health_docs_and_metrics(server, client):
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok" and "assistant" in health["agents"]
    assert httpx.get(f"{server.url}/docs").status_code == 200
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/audio/transcriptions", "/v1/audio/speech", "/v1/chat/completions"} <= set(paths)
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "Start conversation" in page.text
    before = httpx.get(f"{server.url}/metrics").text
    client.models.list()
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    after = httpx.get(f"{server.url}/metrics").text
    labels = {"method": "GET", "route": "/v1/models", "status": "200"}
    assert metric(after, "duetto_http_requests_total", **labels) == (
        metric(before, "duetto_http_requests_total", **labels) + 1
    )
    errors = {"route": "/v1/models/{model_id}", "code": "model_not_found"}
    assert metric(after, "duetto_errors_total", **errors) == (
        metric(before, "duetto_errors_total", **errors) + 1
    )
    assert "duetto_realtime_active_sessions" in after
    assert "duetto_stage_latency_seconds_bucket" in after
