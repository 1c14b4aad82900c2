"""The TTS wrapper chain: Piper's run-to-run variation can be switched off."""

from __future__ import annotations

import numpy as np

from duetto.config import TTSSettings
from duetto.tts import load_tts, synthesize


def test_variation_zero_speaks_the_same_audio_every_time():
    tts = load_tts(TTSSettings(variation=0.0, watermark=False))
    first = synthesize(tts, "The same words, the same sound.")
    again = synthesize(tts, "The same words, the same sound.")
    assert len(first) > tts.sample_rate  # over a second of speech
    assert np.array_equal(first, again)


def test_default_variation_differs_from_run_to_run():
    tts = load_tts(TTSSettings(watermark=False))
    first = synthesize(tts, "The same words, the same sound.")
    again = synthesize(tts, "The same words, the same sound.")
    assert len(first) != len(again) or not np.allclose(first, again)
