"""The WER normalizer: what must compare equal, what must not, and the WER arithmetic."""

import pytest

from duetto.data.textnorm import normalize_text, wer, word_errors


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("TWO SIX FOUR EIGHT", "2, 6, 4, 8."),
        ("TWO SIX FOUR EIGHT", "2648"),
        ("twenty-five", "25"),
        ("one hundred and five", "105"),
        ("two thousand and twenty four", "2024"),
        ("IT'S THREE O'CLOCK", "It\u2019s 3 o\u2019clock!"),
        ("MARK IS GOING TO SEE ELEPHANT", "Mark is going to see elephant."),
        ("the first day", "the 1st day"),
        ("rock and roll", "rock & roll"),
    ],
)
def test_equivalent_forms_normalize_equal(a, b):
    assert normalize_text(a) == normalize_text(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("TWO SIX", "26 6"),
        ("KATE LOVES CHINA", "Kate love China"),
        ("it's", "its"),
        ("ten", "eleven"),
    ],
)
def test_different_words_stay_different(a, b):
    assert normalize_text(a) != normalize_text(b)


def test_digit_sequences_stay_separate_digits():
    assert normalize_text("ONE ZERO ONE ZERO") == "one zero one zero"
    assert normalize_text("this one and that") == "this one and that"


def test_word_errors_counts_substitutions_insertions_deletions():
    assert word_errors("a b c d", "a x c") == (2, 4)
    assert word_errors("a b", "a b c c") == (2, 2)
    assert word_errors("", "") == (0, 0)


def test_wer_is_corpus_level_and_normalized():
    refs = ["TWO SIX FOUR EIGHT", "KATE LOVES CHINA"]
    assert wer(refs, ["2648.", "Kate loves china."]) == 0.0
    # one substitution over 7 reference words in total, not the mean of per-utterance rates
    assert wer(refs, ["2648", "Kate loves Japan"]) == pytest.approx(1 / 7)


def test_wer_matches_jiwer_on_normalized_text():
    jiwer = pytest.importorskip("jiwer")
    refs = ["the cat sat on the mat", "a quick brown fox", "hello world again"]
    hyps = ["the cat sat on mat today", "quick brown box", "hello word"]
    expected = jiwer.wer([normalize_text(r) for r in refs], [normalize_text(h) for h in hyps])
    assert wer(refs, hyps) == pytest.approx(expected)


def test_wer_rejects_mismatched_lengths_and_empty_references():
    with pytest.raises(ValueError, match="2 references but 1"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="undefined"):
        wer([""], ["word"])
    assert wer([""], [""]) == 0.0
