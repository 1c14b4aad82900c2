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
