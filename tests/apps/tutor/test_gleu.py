"""GLEU: the properties that make it a GEC metric, and one sentence worked out by hand."""

import pytest

from duetto.apps.tutor.gleu import corpus_gleu, from_stats, sentence_stats


def test_hypothesis_equal_to_reference_scores_100():
    src = ["he go to school"]
    ref = [["he goes to school"]]
    assert corpus_gleu(src, ["he goes to school"], ref, iterations=5) == pytest.approx(100.0)


def test_copying_the_source_scores_below_making_the_edit():
    src = ["at home she have two cat and a dog at home ."]
    refs = [
        ["at home she has two cats and a dog at home ."],
        ["at home she has two cats and a dog at home ."],
    ]
    copy = corpus_gleu(src, src, refs, iterations=5)
    fixed = corpus_gleu(src, refs[0], refs, iterations=5)
    half = corpus_gleu(src, ["at home she has two cat and a dog at home ."], refs, iterations=5)
    assert copy < half < fixed


def test_source_ngrams_the_reference_dropped_are_penalised():
    # hypothesis "a b c", source "a b c", reference "a b d":
    # unigrams: h&r = {a, b} = 2; dropped source unigrams = {c} and h has c -> 2 - 1 = 1 of 3.
    stats = sentence_stats("a b c".split(), "a b c".split(), "a b d".split())
    assert stats[:4] == [3, 3, 1, 3]
    # bigrams: h&r = {a b} = 1; dropped = {b c} in h -> 0 of 2, so GLEU is 0
    assert stats[4:6] == [0, 2]
    assert from_stats(stats) == 0.0


def test_mismatched_line_counts_are_refused():
    with pytest.raises(ValueError):
        corpus_gleu(["a"], ["a", "b"], [["a"]])
