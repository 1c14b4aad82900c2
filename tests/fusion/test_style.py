import numpy as np
import pytest

from duetto.audio import SAMPLE_RATE, resample
from duetto.errors import ConfigError
from duetto.fusion.features import pitch
from duetto.fusion.style import STYLES, StyleRenderer, render, style_for, tts_speed
from duetto.tts import synthesize

REPLY = "I am sorry, your card has been blocked while we check the payment."


@pytest.mark.parametrize(
    ("reply", "style"),
    [
        ("I'm so sorry about that, let me fix it.", "apologetic"),
        ("Unfortunately the transfer failed.", "apologetic"),
        ("Please block your card right away, this looks like fraud.", "urgent"),
        ("Great news, your loan was approved!", "cheerful"),
        ("Don't worry, take your time.", "calm"),
        ("Your balance is 40 pounds.", "neutral"),
    ],
)
def test_style_follows_the_words_of_the_reply(reply, style):
    assert style_for(reply).name == style


def test_default_style_is_kept_when_words_carry_no_cue_and_bad_names_fail():
    assert style_for("Your balance is 40 pounds.", default="calm").name == "calm"
    with pytest.raises(ConfigError):
        style_for("hello", default="sarcastic")


def measure(tts, style: str) -> tuple[float, float, float]:
    """(seconds, median pitch Hz, RMS dBFS) of REPLY rendered in ``style``."""
    audio = np.concatenate(list(render(tts, REPLY, style)))
    audio16 = resample(audio, tts.sample_rate, SAMPLE_RATE)
    f0, _ = pitch(audio16)
    rms = 20 * np.log10(np.sqrt(np.mean(audio**2)))
    return len(audio) / tts.sample_rate, float(np.median(f0[f0 > 0])), float(rms)


def test_an_apology_is_rendered_slower_lower_and_softer(tts):
    style = STYLES["apologetic"]
    # Rate, through the TTS (Piper varies a little from one synthesis to the next).
    seconds, _, _ = measure(tts, "neutral")
    a_seconds, _, _ = measure(tts, "apologetic")
    assert a_seconds / seconds == pytest.approx(1 / style.rate, rel=0.12)
    # Pitch and volume, by signal processing on the very same speech.
    speech = synthesize(tts, REPLY)
    shifted = StyleRenderer(style).process(speech)
    f0, _ = pitch(resample(speech, tts.sample_rate, SAMPLE_RATE))
    g0, _ = pitch(resample(shifted, tts.sample_rate, SAMPLE_RATE))
    assert np.median(g0[g0 > 0]) < np.median(f0[f0 > 0]) * 2 ** (-0.5 / 12)
    # The exact size of the shift, on a steady harmonic tone.
    t = np.arange(tts.sample_rate) / tts.sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * 300 * t)).astype(
        np.float32
    )
    h0, _ = pitch(resample(tone, tts.sample_rate, SAMPLE_RATE))
    h1, _ = pitch(resample(StyleRenderer(style).process(tone), tts.sample_rate, SAMPLE_RATE))
    shift = 12 * np.log2(np.median(h1[h1 > 0]) / np.median(h0[h0 > 0]))
    assert shift == pytest.approx(style.pitch_st, abs=0.15)
    db = 10 * np.log10(np.mean(shifted**2) / np.mean(speech**2))
    assert db == pytest.approx(style.gain_db, abs=0.3)


def test_urgent_is_faster_higher_and_louder_than_calm(tts):
    c_seconds, _, _ = measure(tts, "calm")
    u_seconds, _, _ = measure(tts, "urgent")
    assert u_seconds < 0.92 * c_seconds  # nominal 0.77; Piper varies from run to run
    # Pitch and level on the very same speech (Piper's own intonation varies between runs).
    speech = synthesize(tts, REPLY)
    calm, urgent = StyleRenderer("calm").process(speech), StyleRenderer("urgent").process(speech)
    f_calm, _ = pitch(resample(calm, tts.sample_rate, SAMPLE_RATE))
    f_urgent, _ = pitch(resample(urgent, tts.sample_rate, SAMPLE_RATE))
    assert np.median(f_urgent[f_urgent > 0]) > 1.05 * np.median(f_calm[f_calm > 0])
    assert 10 * np.log10(np.mean(urgent**2) / np.mean(calm**2)) > 3


def test_chunked_rendering_is_seamless_and_never_clips():
    rng = np.random.default_rng(1)
    x = (np.sin(np.arange(22050) * 0.05) * 0.99 + rng.standard_normal(22050) * 0.01).astype(
        np.float32
    )
    whole = StyleRenderer("urgent")
    one = np.concatenate([whole.process(x), whole.flush()])
    parts = StyleRenderer("urgent")
    chunks = [parts.process(c) for c in np.array_split(x, 7)] + [parts.flush()]
    many = np.concatenate(chunks)
    assert len(one) == len(many) and np.allclose(one, many, atol=1e-6)
    assert np.abs(many).max() <= 1.0
    assert tts_speed(STYLES["cheerful"]) < STYLES["cheerful"].rate  # the pitch shift speeds up
