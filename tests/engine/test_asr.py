"""Whisper on the trimmed window: what it hears, and the loop guard for short clips."""

from __future__ import annotations

import jiwer
import pytest

from duetto.asr.whisper import WhisperASR, _drop_repeats
from duetto.config import ASRSettings


@pytest.fixture(scope="module")
def asr():
    return WhisperASR(ASRSettings())


@pytest.mark.parametrize(
    ("decoded", "kept"),
    [
        ("Yes. Yes.", "Yes."),
        ("A b c d. A b c d.", "A b c d."),
        (
            "Can you help me practice my pronunciation today? "
            "Can you help help me practice My pronunciation today",
            "Can you help me practice my pronunciation today?",
        ),
        # Two different sentences, even with words in common, are both kept.
        (
            "What is my balance today? What is my savings rate today?",
            "What is my balance today? What is my savings rate today?",
        ),
        ("No. Go on.", "No. Go on."),
    ],
)
def test_a_sentence_decoded_twice_is_kept_once(decoded, kept):
    assert _drop_repeats(decoded) == kept


def test_a_short_question_is_heard_once(asr, speak):
    # On a 3 s clip tiny.en used to start the sentence again after finishing it.
    question = "Can you help me practise my pronunciation today?"
    heard = asr.transcribe(speak(question)).text
    assert heard.lower().count("pronunciation") == 1, heard
    assert jiwer.wer("can you help me practice my pronunciation today", heard.lower()[:-1]) < 0.2


# "KATE LOVES CHINA" (a 6-year-old speaker): tiny.en hears "Cajun loves China" without help.
KATE = ("speechocean762", "audio", "000030024.flac")
NAMES = "Kate, Tina, Layla."


@pytest.fixture(scope="module")
def kate():
    from conftest import require_shared
    from duetto.audio import load_audio

    return load_audio(require_shared(*KATE))


@pytest.mark.parametrize("words", [False, True], ids=["trimmed-window", "word-timestamps"])
def test_a_prompt_setting_with_domain_words_changes_decoding(asr, kate, words):
    prompted = WhisperASR(ASRSettings(prompt=NAMES))
    assert "kate" not in asr.transcribe(kate, words=words).text.lower()
    assert prompted.transcribe(kate, words=words).text.lower().startswith("kate loves china")


def test_a_prompt_given_to_transcribe_overrides_the_setting(kate):
    prompted = WhisperASR(ASRSettings(prompt=NAMES))
    assert "kate" not in prompted.transcribe(kate, prompt="").text.lower()
    assert "kate" in WhisperASR(ASRSettings()).transcribe(kate, prompt=NAMES).text.lower()
