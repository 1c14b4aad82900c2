"""Grammar feedback from an OpenAI-compatible chat server: the model rewrites, we explain the diff.

``duetto tutor grammar --llm-url http://host:8080/v1 "..."`` sends the sentence to the server
(llama.cpp server, vLLM, Ollama, OpenAI ...) with a short instruction and three worked examples,
takes the first line of the reply as the correction, and turns the word-level difference into
edits with the same kinds and explanations as the embedded corrector. A reply that is empty or
shares too little with the sentence (a small model rambling) is ignored: the sentence is kept.
"""

from __future__ import annotations

import difflib
import re
import time

from duetto.apps.tutor.grammar import (
    ARTICLES,
    EXPLAIN,
    PREPOSITIONS,
    Correction,
    Edit,
    detokenize,
    tokenize,
)
from duetto.apps.tutor.grammar_lm import plain_text

INSTRUCTION = (
    "You correct sentences written by learners of English. Reply with the corrected sentence "
    "only, on one line: fix spelling, grammar, punctuation and word choice, keep the meaning "
    "and as much of the learner's wording as you can."
)
EXAMPLES = (
    ("she have two cat and she love they .", "She has two cats and she loves them."),
    ("Yesterday I go to the libary for study.", "Yesterday I went to the library to study."),
    ("The weather is nice today.", "The weather is nice today."),
)
# A reply sharing fewer of the sentence's words than this (difflib ratio) is not a correction.
MIN_SIMILARITY = 0.5
EXPLAIN_REWRITE = "rewritten by the language model"


class ChatCorrector:
    """Corrects with a chat model behind an OpenAI-compatible ``/chat/completions`` route."""

    def __init__(self, url: str, model: str = "", timeout_s: float = 60.0):
        from duetto.config import LLMSettings
        from duetto.llm.openai_compat import OpenAICompatLLM

        settings = LLMSettings(url=url, remote_model=model or "default", timeout_s=timeout_s)
        self.llm = OpenAICompatLLM(settings)
        self.llm.check()

    def rewrite(self, text: str) -> str:
        from duetto.llm import Message

        messages = [Message("system", INSTRUCTION)]
        for learner, fixed in EXAMPLES:
            messages += [Message("user", learner), Message("assistant", fixed)]
        messages.append(Message("user", text))
        budget = 2 * len(text) // 3 + 24  # tokens: the correction is about as long as the text
        reply = "".join(self.llm.stream(messages, max_tokens=budget, temperature=0.0))
        return _first_sentences(reply.strip().split("\n", 1)[0].strip(), text)

    def correct(self, text: str) -> Correction:
        started = time.perf_counter()
        tokens, edits = self._diff(tokenize(text), self.rewrite(text))
        corrected = detokenize(tokens) if edits else text
        return Correction(text, corrected, tuple(edits), time.perf_counter() - started)

    def correct_tokens(self, tokens: list[str]) -> tuple[list[str], list[Edit]]:
        """For pre-tokenized text (JFLEG: "do n't"): the reply is split the same way."""
        out, edits = self._diff(tokens, self.rewrite(plain_text(tokens)), ptb=True)
        return out, edits

    def _diff(self, source: list[str], reply: str, ptb: bool = False):
        target = ptb_split(tokenize(reply)) if ptb else tokenize(reply)
        matcher = difflib.SequenceMatcher(None, [t.lower() for t in source],
                                          [t.lower() for t in target], autojunk=False)  # fmt: skip
        if not target or matcher.ratio() < MIN_SIMILARITY:
            return list(source), []
        edits = []
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal" and source[i1:i2] == target[j1:j2]:
                continue
            original, correction = " ".join(source[i1:i2]), " ".join(target[j1:j2])
            if original == correction:
                continue
            kind = classify(original, correction)
            edits.append(
                Edit(i1, i2, original, correction, kind, EXPLAIN.get(kind, EXPLAIN_REWRITE))
            )
        return target, edits


def _first_sentences(reply: str, text: str) -> str:
    """The reply up to its last full stop when the learner's text ended with one: small models
    run on past the correction ("... a book. membeli")."""
    end = max(reply.rfind(mark) for mark in ".!?")
    if text.rstrip()[-1:] in (".", "!", "?") and 0 < end < len(reply) - 1:
        return reply[: end + 1]
    return reply


def ptb_split(tokens: list[str]) -> list[str]:
    """Penn Treebank contractions, as in JFLEG's files: "don't" -> "do", "n't"; "it's" -> "it", "'s"."""
    out = []
    for token in tokens:
        match = re.fullmatch(r"(?i)(.+?)(n't|'s|'re|'ve|'ll|'d|'m)", token)
        out += [match.group(1), match.group(2)] if match else [token]
    return out


def classify(original: str, correction: str) -> str:
    """The embedded corrector's edit kind that best describes a rewrite, or "rewrite"."""
    a, b = original.lower(), correction.lower()
    if a == b:
        return "capitalization"
    if {a, b} <= set(ARTICLES) | {""}:
        return "missing article" if not a else "article"
    if {a, b} <= set(PREPOSITIONS) | {""}:
        return "preposition"
    if " " in a or " " in b or not a or not b:
        return "rewrite"
    if all(not ch.isalnum() for ch in a + b):
        return "punctuation"
    if a[:3] == b[:3] and (a.rstrip("s") == b.rstrip("s")):
        return "noun number"
    if a[:2] == b[:2] and difflib.SequenceMatcher(None, a, b).ratio() >= 0.6:
        return "spelling" if a not in _known() else "verb form"
    return "rewrite"


def _known():
    from duetto.apps.tutor.grammar import language_model

    return language_model().unigrams
