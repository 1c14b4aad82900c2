"""Grammar by an LLM: Gemma 270M likelihood re-ranking, and turning a chat model's rewrite into edits."""

import pytest

from duetto.apps.tutor.grammar import GrammarCorrector
from duetto.apps.tutor.grammar_llm import ChatCorrector, classify, ptb_split
from duetto.apps.tutor.grammar_lm import GemmaReranker, plain_text


@pytest.fixture(scope="module")
def reranker():
    # A short list keeps the test to a few evaluations; without the gate every sentence is scored.
    return GemmaReranker(shortlist=4, gate=None)


def test_gemma_prefers_the_grammatical_sentence(reranker):
    scorer = reranker.scorer
    good = scorer.tokenize("She has two cats.")
    bad = scorer.tokenize("She have two cat.")
    assert scorer.logprobs(good, 1).sum() > scorer.logprobs(bad, 1).sum() + 2
    # Prefix reuse gives the same numbers as a fresh evaluation.
    again = scorer.logprobs(good, 1)
    scorer.cached = []
    assert scorer.logprobs(good, 1) == pytest.approx(again, abs=1e-3)


def test_edits_decoded_side_by_side_score_as_one_at_a_time(reranker):
    scorer = reranker.scorer
    assert scorer.sequences == 5  # the shortlist's edits and the sentence
    source = scorer.tokenize("Yesterday she go to the market and buy two apple.")
    edits = ["Yesterday she went to the market and buy two apple.",
             "Yesterday she go to the market and bought two apple.",
             "Yesterday she go to the market and buy two apples.",
             "Yesterday she go to a market and buy two apple.",
             "Yesterday she goes to the market and buy two apple.",
             "She go to the market and buy two apple."]  # fmt: skip
    variants = []
    for text in edits:
        ids = scorer.tokenize(text)
        prefix = next(j for j, (a, b) in enumerate(zip(source, ids, strict=False)) if a != b)
        variants.append((ids, prefix, min(len(ids), prefix + 4)))
    scorer.logprobs(source, 1)
    together = scorer.logprobs_many(variants)  # six edits: two batches of four sequences
    alone = []
    for ids, start, stop in variants:
        scorer.cached = []
        alone.append(scorer.logprobs(ids, start, stop))
    for a, b in zip(together, alone, strict=True):
        assert len(a) == len(b) > 0
        # llama.cpp's quantized kernels round differently with the batch's size (~0.1 nat); a
        # wrong prefix or position would move these by nats.
        assert a == pytest.approx(b, abs=0.3)
    # The edit at the first word branches from the sentence start; the sentence stays cached.
    scorer.logprobs(source, 1)
    before = list(scorer.cached)
    scorer.logprobs_many(variants[-1:])
    assert scorer.cached == before
    assert scorer.logprobs(source, 1) == pytest.approx(scorer.logprobs(source, 1), abs=1e-3)


def test_reranked_corrections(reranker):
    tokens, edits = GrammarCorrector(reranker=reranker).correct_tokens("She have two cat .".split())
    assert tokens == "She has two cats .".split()
    assert {e.kind for e in edits} == {"subject agreement", "number agreement"}


def test_gate_puts_only_sentences_the_ngram_model_is_unsure_of_to_gemma(reranker):
    corrector = GrammarCorrector(reranker=reranker)
    reranker.gate, reranker.sentences = 1.0, 0
    try:
        # Every n-gram edit here clears its margin by more than the gate (or there is none).
        corrector.correct_tokens("She goes to school every day .".split())
        corrector.correct_tokens("I want to went home .".split())
        assert reranker.sentences == 0
        # "goes" for "go" gains just under the verb-form margin: Gemma decides.
        assert reranker.unsure(corrector, "My brother go to school yesterday .".split())
        tokens, _ = corrector.correct_tokens("My brother go to school yesterday .".split())
        assert reranker.sentences == 1 and tokens[2] == "went"
    finally:
        reranker.gate = None


def test_plain_text_undoes_treebank_tokens():
    assert plain_text("I do n't know , it 's late .".split()) == "I don't know, it's late."
    assert ptb_split(["don't", "it's", "cats"]) == ["do", "n't", "it", "'s", "cats"]


def test_a_rewrite_becomes_explained_edits():
    chat = ChatCorrector.__new__(ChatCorrector)  # no server: only the diff is under test
    tokens, edits = chat._diff("She have two cat .".split(), "She has two cats.", ptb=True)
    assert tokens == "She has two cats .".split()
    assert [(e.original, e.correction) for e in edits] == [("have", "has"), ("cat", "cats")]
    assert classify("cat", "cats") == "noun number"
    assert classify("", "the") == "missing article"
    # A reply that is not a correction of the sentence is ignored.
    tokens, edits = chat._diff("She have two cat .".split(), "Sure! Here is a poem about cats.")
    assert edits == [] and tokens == "She have two cat .".split()


def test_a_small_model_running_on_is_cut_at_the_full_stop():
    from duetto.apps.tutor.grammar_llm import _first_sentences

    assert _first_sentences("I bought a book. membeli", "I buyed a book.") == "I bought a book."
    assert _first_sentences("I bought a book", "I buyed a book") == "I bought a book"


def test_confident_ngram_edits_are_kept_without_gemma(reranker):
    corrector = GrammarCorrector(reranker=reranker)
    tokens = "She have two cat .".split()
    saved, reranker.confident = reranker.confident, None
    try:
        assert reranker.confident_edits(corrector, tokens) == {}  # Gemma judges every edit
        reranker.confident = 0.0
        kept = reranker.confident_edits(corrector, tokens)
        greedy = corrector._choose_greedy(tokens)
        assert kept and all(greedy[i] == edit for i, edit in kept.items())
        reranker.confident = 100.0  # no edit is that sure
        assert reranker.confident_edits(corrector, tokens) == {}
    finally:
        reranker.confident = saved


def test_default_corrector_falls_back_to_ngram_edits_without_llama_cpp(monkeypatch, caplog):
    import builtins
    import logging

    from duetto.apps.tutor import grammar, grammar_lm

    real_import = builtins.__import__

    def no_llama(name, *args, **kwargs):
        if name == "llama_cpp":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    grammar_lm.default_corrector.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_llama)
    try:
        with caplog.at_level(logging.WARNING):
            fallback = grammar_lm.default_corrector()
        assert fallback is grammar.corrector() and fallback.reranker is None
        assert "without Gemma re-ranking" in caplog.text and "llm" in caplog.text
    finally:
        monkeypatch.undo()
        grammar_lm.default_corrector.cache_clear()
    judged = grammar_lm.default_corrector()
    assert isinstance(judged.reranker, GemmaReranker) and judged.reranker.gate == grammar_lm.GATE


def test_one_thread_narrows_the_gate_so_the_median_sentence_skips_gemma():
    from duetto.apps.tutor import grammar_lm

    one = GemmaReranker(threads=1, shortlist=1)
    assert one.scorer.threads == 1 and one.gate == grammar_lm.ONE_THREAD_GATE < grammar_lm.GATE
    assert GemmaReranker(threads=2, shortlist=1).gate == grammar_lm.GATE
    assert GemmaReranker(threads=1, shortlist=1, gate=2.0).gate == 2.0  # asked for: kept
