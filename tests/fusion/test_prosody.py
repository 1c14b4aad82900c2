import numpy as np
import pytest

from duetto.audio import SAMPLE_RATE
from duetto.fusion.prosody import analyze_turn, count_syllables, prompt_context, reply_plan
from duetto.fusion.style import get_style, render


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


@pytest.fixture(scope="module")
def hesitant(speak):
    """Slow speech broken by long silences and fillers."""
    parts = [
        speak("I would like", 0.7),
        silence(0.9),
        speak("um", 0.7),
        silence(0.7),
        speak("to open", 0.7),
        silence(0.8),
        speak("an account.", 0.7),
    ]
    text = "I would like um to open an account"
    return np.concatenate(parts), text


@pytest.fixture(scope="module")
def hurried(speak):
    text = "I need to block my card now because someone stole my wallet"
    return speak(text, 1.5), text


def test_syllable_counts():
    assert [count_syllables(w) for w in ("card", "account", "balance", "the", "immediately")] == [
        1,
        2,
        2,
        1,
        5,
    ]


def test_hesitant_speech_is_measured_slow_and_halting(hesitant, hurried):
    h, f = analyze_turn(*hesitant), analyze_turn(*hurried)
    assert h.syllables_per_s < f.syllables_per_s
    assert h.pause_ratio > 0.3 > f.pause_ratio
    assert h.long_pauses >= 2 and h.fillers == 1 and h.hesitant and not f.hesitant
    assert "pauses" in h.describe() and "hesitant" in h.describe()
    assert f.hurried and "fast" in f.describe()
    assert h.pitch_hz > 50 and h.loudness_dbfs > -60


def test_loudness_and_level_follow_the_signal(hurried):
    audio, text = hurried
    loud, quiet = analyze_turn(audio, text), analyze_turn(audio * 0.1, text)
    assert loud.loudness_dbfs - quiet.loudness_dbfs == pytest.approx(20, abs=1.5)
    assert abs(loud.pitch_hz - quiet.pitch_hz) < 10


def test_a_hesitant_speaker_gets_a_slower_simpler_reply(tts, hesitant, hurried):
    slow_plan, fast_plan = reply_plan(analyze_turn(*hesitant)), reply_plan(analyze_turn(*hurried))
    assert slow_plan.max_sentences > fast_plan.max_sentences
    assert "simple" in slow_plan.instruction and "short" in fast_plan.instruction
    assert "(The user is speaking slowly" in prompt_context(analyze_turn(*hesitant))
    reply = "You can open an account in the app under new products."
    slow = np.concatenate(list(render(tts, reply, get_style(slow_plan.style))))
    fast = np.concatenate(list(render(tts, reply, get_style(fast_plan.style))))
    # Nominally 25% slower; Piper responds to its speed setting less than linearly and varies.
    assert len(slow) > 1.04 * len(fast)


def test_silence_gives_empty_cues():
    cues = analyze_turn(np.zeros(SAMPLE_RATE, np.float32), "")
    assert cues.speech_s == 0 and cues.describe() == "" and prompt_context(cues) == ""
