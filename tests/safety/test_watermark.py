"""Watermark: detected after the issue's transformations, never on unmarked speech."""

from __future__ import annotations

import json

import numpy as np
import pytest

from duetto.audio import load_audio
from duetto.errors import ConfigError, EmptyAudioError
from duetto.safety import transforms as T
from duetto.safety.watermark import Payload, Watermarker, detect, embed

PAYLOAD = Payload(model_id=5, time_bucket=1234)
TEXT = "Your card has been frozen. I can send a new one to your home address within five days."


@pytest.fixture(scope="session")
def tts():
    """The bundled voice *without* the engine's own watermark (these tests add it themselves),
    the same audio every run: a short crop's 16 payload bits are right ~98% of the time, so a
    varying clip would make the payload asserts flaky rather than the detector worse."""
    from duetto.config import TTSSettings
    from duetto.tts import load_tts

    return load_tts(TTSSettings(watermark=False, variation=0.0))


@pytest.fixture(scope="session")
def chunks(tts):
    """One TTS clip as the engine produces it: a list of float32 chunks at the voice's rate."""
    parts = [c for c in tts.stream(TEXT) if len(c)]
    assert sum(map(len, parts)) / tts.sample_rate > 3.0
    return parts


@pytest.fixture(scope="session")
def plain(chunks):
    return np.concatenate(chunks)


@pytest.fixture(scope="session")
def marked(chunks, tts):
    """Marked chunk by chunk through the streaming embedder, as the engine will call it."""
    mark = Watermarker(tts.sample_rate, PAYLOAD)
    out = [mark.process(c) for c in chunks]
    assert [len(o) for o in out] == [len(c) for c in chunks]
    return np.concatenate(out)


def test_clean_clip_detected_with_payload(marked, tts):
    d = detect(marked, tts.sample_rate)
    assert d.found and d.payload == PAYLOAD
    assert d.confidence > 0.999


def test_unmarked_tts_is_not_detected(plain, tts):
    d = detect(plain, tts.sample_rate)
    assert not d.found and d.payload is None


@pytest.mark.parametrize(
    "name",
    ["mp3", "opus", "8k", "white", "speed+5", "speed-5", "crop2", "volume"],
)
def test_detected_after_transformation(name, marked, tts):
    sr = tts.sample_rate
    y, r = {
        "mp3": lambda: T.reencode(marked, sr, "mp3"),
        "opus": lambda: T.reencode(marked, sr, "opus"),
        "8k": lambda: T.telephone(marked, sr),
        "white": lambda: T.add_noise(marked, sr, None, 20.0),
        "speed+5": lambda: T.speed(marked, sr, 1.05),
        "speed-5": lambda: T.speed(marked, sr, 0.95),
        "crop2": lambda: T.crop(marked, sr, 2.0, 0.9),
        "volume": lambda: T.volume(marked, sr, 0.8),
    }[name]()
    d = detect(y, r)
    assert d.found, f"not detected after {name} (z={d.score})"
    if name.startswith("speed"):
        assert abs(d.speed - (1.05 if name == "speed+5" else 0.95)) <= 0.011


def test_any_one_second_window(marked, tts):
    sr = tts.sample_rate
    for start in (0.3, 1.1, 1.9):
        y, r = T.crop(marked, sr, 1.0, start)
        assert detect(y, r).found, f"1-second window at {start} s not detected"


def test_two_second_crop_pools_both_seconds(marked, tts):
    """A 2-second crop is scored as one window: clearly above either of its 1-second halves."""
    sr = tts.sample_rate
    for start in (0.3, 1.2, 2.1):
        y, r = T.crop(marked, sr, 2.0, start)
        halves = [detect(T.crop(y, r, 1.0, s)[0], r).score for s in (0.0, 1.0)]
        d = detect(y, r)
        assert d.found and d.payload == PAYLOAD
        assert d.score > 1.15 * max(halves), (start, d.score, halves)


def test_streaming_equals_whole_clip_marking(chunks, marked, tts):
    whole = embed(np.concatenate(chunks), tts.sample_rate, PAYLOAD)
    # Chunks are transformed on their own; away from chunk edges both agree closely.
    diff = np.abs(whole - marked)
    assert np.median(diff) < 1e-3
    assert detect(whole, tts.sample_rate).payload == PAYLOAD


def test_real_speech_is_not_detected(shared_data):
    rows = [json.loads(line) for line in open(shared_data / "speechocean762" / "dev.jsonl")][::40]
    for row in rows:
        d = detect(load_audio(shared_data / "speechocean762" / row["audio"]), 16_000)
        assert not d.found, f"false positive on {row['id']} (z={d.score})"


def test_payload_bits_round_trip():
    p = Payload(15, 4095)
    assert Payload.from_bits(p.to_bits()) == p
    assert len(p.to_bits()) == 16
    assert 0 <= Payload.bucket_now() < 4096


def test_engine_tts_output_is_marked_by_default():
    """The engine's TTS (duetto.tts.load_tts) marks what it speaks with model id 1 (Piper)."""
    from duetto.config import TTSSettings
    from duetto.tts import load_tts, synthesize

    tts = load_tts(TTSSettings(variation=0.0))  # the engine's chain; the same audio every run
    d = detect(synthesize(tts, "This sentence comes from the default voice."), tts.sample_rate)
    assert d.found and d.payload is not None and d.payload.time_bucket == Payload.bucket_now()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ConfigError, match="model_id"):
        Payload(model_id=16)
    with pytest.raises(ConfigError, match="sample rate"):
        Watermarker(4_000)
    with pytest.raises(EmptyAudioError):
        detect(np.zeros(0, np.float32), 16_000)
    assert not detect(np.zeros(800, np.float32), 16_000).found  # too short: no crash, not found
