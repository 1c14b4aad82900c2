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


def test_a_thread_count_loads_the_voice_on_that_many_threads_and_speaks_alike():
    text = "One thread or two, the voice is the same."
    default = load_tts(TTSSettings(variation=0.0, watermark=False, styles=False))
    one = load_tts(TTSSettings(variation=0.0, watermark=False, styles=False, threads=1))
    assert one is not default  # the thread count is part of what is cached
    options = one.voice.session.get_session_options()
    assert options.intra_op_num_threads == 1
    a, b = synthesize(default, text), synthesize(one, text)
    assert len(a) == len(b) and np.allclose(a, b, atol=1e-3)
