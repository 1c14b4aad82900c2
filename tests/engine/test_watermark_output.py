"""Every clip duetto synthesizes carries the watermark; switching it off removes it."""

import time

from duetto.config import TTSSettings
from duetto.safety.watermark import Payload, detect
from duetto.tts import WATERMARK_MODEL_IDS, load_tts, synthesize


def test_synthesized_speech_is_watermarked_by_default():
    tts = load_tts(TTSSettings(variation=0.0))  # defaults but the same audio every run
    audio = synthesize(tts, "Your balance is two hundred and forty pounds. Is there anything else?")
    found = detect(audio, tts.sample_rate)
    assert found.found
    assert found.payload == Payload(WATERMARK_MODEL_IDS["piper"], Payload.bucket_now(time.time()))


def test_watermark_can_be_switched_off():
    tts = load_tts(TTSSettings(watermark=False, variation=0.0))
    audio = synthesize(tts, "Your balance is two hundred and forty pounds. Is there anything else?")
    assert not detect(audio, tts.sample_rate).found
