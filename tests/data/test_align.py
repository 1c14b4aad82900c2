"""Forced alignment: times that follow the audio, output formats, bad input."""

import numpy as np
import pytest

from duetto.data.align import align, letter_to_sound, spoken_number, text_words, to_srt, to_textgrid
from duetto.errors import DuettoError

RATE = 16_000


def _silence(seconds):
    return np.zeros(int(seconds * RATE), np.float32)


@pytest.fixture(scope="module")
def padded(speak):
    """ "Kate loves China", 1 s pause, "two six four eight": we know where the pause is."""
    first, second = speak("Kate loves China."), speak("Two six four eight.")
    audio = np.concatenate([_silence(0.5), first, _silence(1.0), second, _silence(0.3)])
    return audio, 0.5, 0.5 + len(first) / RATE, 1.5 + len(first) / RATE


def test_words_follow_the_audio(padded):
    audio, start, pause_start, pause_end = padded
    result = align(audio, "Kate loves China, 2 6 4 8")
    assert [w.word for w in result.words] == [
        "kate",
        "loves",
        "china",
        "two",
        "six",
        "four",
        "eight",
    ]
    words = {w.word: w for w in result.words}
    assert words["kate"].start == pytest.approx(start, abs=0.1)
    assert words["china"].end <= pause_start + 0.05
    assert words["two"].start == pytest.approx(pause_end, abs=0.1)
    for w in result.words:
        assert w.start < w.end and w.phones
        assert (
            w.phones[0].start == pytest.approx(w.start, abs=0.011)
            and w.phones[-1].end <= w.end + 0.011
        )
    assert [p.phone for p in words["kate"].phones] == ["K", "EY", "T"]


def test_textgrid_and_srt(padded, tmp_path):
    result = align(padded[0], "Kate loves China two six four eight")
    grid = to_textgrid(result, tmp_path / "a.TextGrid")
    assert grid.startswith('File type = "ooTextFile"') and 'name = "phones"' in grid
    assert grid.count('text = "kate"') == 1 and (tmp_path / "a.TextGrid").read_text() == grid
    srt = to_srt(result)
    # the 1 s pause splits the subtitles in two cues
    assert srt.splitlines()[0] == "1" and "kate loves china" in srt and "\n2\n" in srt
    assert " --> " in srt.splitlines()[1]


def test_out_of_dictionary_words_still_align(speak):
    audio = np.concatenate([_silence(0.3), speak("Zorblax is here."), _silence(0.3)])
    result = align(audio, "Zorblax is here")
    assert result.words[0].oov and not result.words[1].oov
    assert len(result.words) == 3


def test_bad_text_is_refused(speak):
    with pytest.raises(DuettoError, match="no words"):
        align(speak("hello"), "?!")
    with pytest.raises(DuettoError, match="too short"):
        align(_silence(0.05), "this is a long sentence of many words for a tiny clip")


def test_text_helpers():
    assert spoken_number(25) == "twenty five" and spoken_number(301) == "three hundred one"
    assert text_words("It's 3 o'clock, Kate-Ann!") == ["it's", "three", "o'clock", "kate", "ann"]
    assert letter_to_sound("shoot") == "SH UW T"
