"""asr.noisy_lm's parts: sentence log-probabilities under the bundled Gemma (real model), and the
choice among candidates they weigh. The engine's use of them on real noisy audio is tested in
test_word_filter.py, beside the speed decodings it chooses among."""

from __future__ import annotations

import pytest

from duetto.asr.whisper import lm_pick, medoid


@pytest.fixture(scope="module")
def scorer():
    from duetto.llm.scoring import GemmaScorer

    return GemmaScorer(threads=1)


def test_sentences_sharing_first_tokens_score_as_if_alone(scorer):
    texts = [
        "We call it bear.",
        "We call it a bear.",
        "We call it bare will.",
        "",
        "We call it bear.",
    ]
    together = scorer.sentence_logprobs(texts)
    alone = []
    for text in texts:
        scorer.cached = []
        alone.append(scorer.sentence_logprobs([text])[0])
    # llama.cpp's quantized kernels round a little differently with the batch's size
    assert together == pytest.approx(alone, abs=0.3)
    assert together[0] == together[4]
    assert together[0] > together[2] + 2  # the sentence reads better than the misheard one
    assert all(lp < 0 for lp in together)


def test_the_choice_weighs_agreement_likelihood_and_length():
    heard = ["we call it bear", "we call it bear it will", "we fall it bear"]
    flat = [0.0, 0.0, 0.0]
    # no language model and no bonus: the medoid, the first on a tie
    assert lm_pick(heard, heard, flat, 0.0, 0.0) == medoid(heard) == 0
    # a beam's alternative the decodings half agree with wins when it is far more likely
    candidates = [*heard, "we call it a bear"]
    assert lm_pick(candidates, heard, [-30.0, -40.0, -45.0, -10.0], 0.5, 0.0) == 3
    assert lm_pick(candidates, heard, [-30.0, -40.0, -45.0, -10.0], 0.01, 0.0) == 0
    # the word bonus offsets the deletions a likely short candidate would make
    assert lm_pick(heard, heard, flat, 0.0, 5.0) == 1


def test_llama_cpp_warnings_do_not_reach_stderr(capfd, caplog):
    # llama-cpp-python 0.3 prints llama.cpp's warnings as errors even with verbose=False
    import logging

    from duetto.llm.scoring import GemmaScorer

    with caplog.at_level(logging.DEBUG, logger="duetto.llama_cpp"):
        GemmaScorer(threads=1)
    assert "SWA" not in capfd.readouterr().err
    assert any("SWA" in r.getMessage() for r in caplog.records)  # logged, at debug level
