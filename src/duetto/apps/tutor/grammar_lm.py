"""Re-ranking grammar edits with the bundled Gemma 3 270M (llama.cpp): likelihood, not rewriting.

The n-gram corrector (:mod:`duetto.apps.tutor.grammar`) proposes a shortlist of edits with a
looser margin than it applies on its own; this module scores the sentence and each edited
sentence with the neural language model and keeps the edits that raise the sentence's
log-likelihood by more than a margin, best first, over a few passes.

Cost is what limits it: on one core of this machine llama.cpp needs ~9 ms a token when every
position's full 262k-word distribution is wanted (half of it the output layer). So each edit is
scored only on the tokens it changes plus a few after them (``window``), branching from the
key/value cache of the sentence, all the shortlist's edits side by side in one batch, and the
sentence itself once per pass. Even so a sentence can cost a second, so by default only the
sentences where the n-gram model is unsure (``GATE``) are put to Gemma.
"""

from __future__ import annotations

import logging
import math
import re
from functools import cache

import numpy as np

from duetto.apps.tutor.grammar import INSERTIONS, MARGIN, GrammarCorrector, _match_case, corrector
from duetto.errors import MissingExtraError, ModelNotFoundError
from duetto.llm.scoring import GemmaScorer, common_prefix

log = logging.getLogger(__name__)

# Natural-log likelihood gain an edit must bring under Gemma (chosen on the even lines of
# JFLEG dev, bench/grammar.py --half even; word choice by bench/grammar_rerank_tune.py, 2 -> 1:
# 51.57 -> 51.63); real-word edits need more evidence than spelling.
LM_MARGIN = {"spelling": 0.0, "a/an": -2.0, "repeated word": 0.5, "word choice": 1.0}
DEFAULT_MARGIN = 2.0
# n-gram gain a proposal needs to reach the shortlist: the n-gram corrector's margins minus 3,
# so that insertions and real-word edits it would not dare alone get a hearing (re-measured on
# the even lines of JFLEG dev for the trigram model: 50.65 -> 50.83 against the first floors).
SHORTLIST_FLOOR = 3.0
SHORTLIST_MARGIN = {kind: m - SHORTLIST_FLOOR for kind, m in MARGIN.items()
                    if kind != "compound" and math.isfinite(m)}  # fmt: skip
SHORTLIST_MARGIN["missing word"] = 1.0  # its n-gram margin is infinite: never applied alone
SHORTLIST = 8  # candidate edits per pass
PASSES = 2
WINDOW = 4  # tokens after an edit whose likelihood it also changes
# Gemma is asked only when some edit's n-gram gain lies within this many nats below the margin
# it needs to be applied alone (the n-gram model is unsure); other sentences keep the n-gram
# choice. Chosen on the even lines of JFLEG dev from 1.25, 1.5, 1.75, 2.0 (51.75, 51.86, 51.95,
# 51.85) once the shortlist was scored in one batch on all cores: 1.75 sends 61% of all lines to
# Gemma and the median sentence still takes ~150 ms on this 2-core machine (docs/tutor.md,
# "Fifth round").
GATE = 1.75
# With one llama.cpp thread a sentence put to Gemma takes about twice as long, and the median
# sentence would wait over 200 ms at GATE; this gate sends under half the lines to Gemma (46.8%
# of JFLEG dev; GLEU 50.05 against 50.27, median 6.9 ms), so the median sentence keeps the
# n-gram's milliseconds.
ONE_THREAD_GATE = 1.25
# Weight of the spelling edit distance cost (n-gram units) in the Gemma score.
COST_WEIGHT = 0.5
# Edits of the n-gram model's own choice that Gemma does not judge: joined words (which Gemma's
# bookkeeping here does not follow) and edits whose n-gram gain beats their kind's margin by at
# least this many nats (None: Gemma judges every edit). Picked on the even lines of JFLEG dev
# from 0, 1, 2, 4 (51.37, 51.36, 51.45, 51.35 against 50.83 with none).
CONFIDENT = 2.0


def plain_text(tokens: list[str]) -> str:
    """Tokens as ordinary text ("do n't" -> "don't", "word ," -> "word,") for the neural LM."""
    text = " ".join(tokens)
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
    return re.sub(r" ([.,!?;:%)\]}])", r"\1", text)


class GemmaReranker:
    """Chooses edits for :class:`~duetto.apps.tutor.grammar.GrammarCorrector` by Gemma's likelihood."""

    def __init__(self, model: str = "bundled", threads: int = 0, margin: float = DEFAULT_MARGIN,
                 shortlist: int = SHORTLIST, passes: int = PASSES, window: int = WINDOW,
                 shortlist_margin: dict[str, float] | None = None,
                 gate: float | None = GATE,
                 confident: float | None = CONFIDENT):  # fmt: skip
        self.scorer = GemmaScorer(
            model, threads, sequences=shortlist + 1, purpose="grammar re-ranking"
        )
        if gate == GATE and self.scorer.threads == 1:
            gate = ONE_THREAD_GATE  # the median sentence must not wait for Gemma
        self.gate = gate  # None: every sentence is put to Gemma
        self.confident = confident
        self.cost_weight = COST_WEIGHT
        self.sentences = 0  # how many sentences were put to Gemma
        self.margin = dict(LM_MARGIN)  # per kind; other kinds need default_margin
        self.default_margin = margin
        self.shortlist = shortlist
        self.passes = passes
        self.window = window
        self.shortlist_margin = {**SHORTLIST_MARGIN, **(shortlist_margin or {})}

    def choose(self, corrector, tokens: list[str]) -> dict[int, tuple[str, str]]:
        """Token index -> (replacement, kind), like the n-gram corrector's greedy choice."""
        if self.gate is not None and not self.unsure(corrector, tokens):
            return corrector._choose_greedy(tokens)
        self.sentences += 1
        words = [t.lower() for t in tokens]
        applied = self.confident_edits(corrector, tokens)
        for i, (replacement, _) in applied.items():
            words[i] = replacement
        for _ in range(self.passes):
            proposals = corrector.proposals(
                tokens, words, skip=applied, margin=self.shortlist_margin
            )
            # Joined words change two tokens, which this re-ranker's bookkeeping does not follow.
            proposals = [p for p in proposals if p.kind != "compound"][: self.shortlist]
            if not proposals:
                break
            source = self.scorer.tokenize(plain_text(_render(tokens, applied)))
            source_lp = self.scorer.logprobs(source, 1)
            edited = [
                self.scorer.tokenize(
                    plain_text(_render(tokens, {**applied, p.index: (p.replacement, p.kind)}))
                )
                for p in proposals
            ]
            gains = self.gains(source, source_lp, edited)
            scored = []
            for p, gain in zip(proposals, gains, strict=True):
                gain -= self.cost_weight * p.cost
                if gain > self.margin.get(p.kind, self.default_margin):
                    scored.append((gain, p))
            scored.sort(key=lambda x: -x[0])
            taken: list[int] = []
            for _, p in scored:
                if all(abs(p.index - j) > 1 for j in taken):
                    taken.append(p.index)
                    applied[p.index] = (p.replacement, p.kind)
                    words[p.index] = p.replacement
            if not taken:
                break
        return applied

    def confident_edits(self, corrector, tokens: list[str]) -> dict[int, tuple[str, str]]:
        """The n-gram choice's edits kept without asking Gemma (``confident``), if any."""
        if self.confident is None:
            return {}
        words = [t.lower() for t in tokens]
        sure = {
            (p.index, p.replacement, p.kind)
            for p in corrector.proposals(tokens, words)
            if p.gain >= corrector.margin[p.kind] + self.confident
        }
        greedy = corrector._choose_greedy(tokens)
        return {
            i: (replacement, kind)
            for i, (replacement, kind) in greedy.items()
            if kind == "compound" or (i, replacement, kind) in sure
        }

    def unsure(self, corrector, tokens: list[str]) -> bool:
        """Whether some edit's n-gram gain falls in the gate band below its kind's margin."""
        words = [t.lower() for t in tokens]
        floors = {kind: m - self.gate for kind, m in corrector.margin.items()}
        floors["missing word"] = self.shortlist_margin["missing word"]  # its margin is infinite
        return any(
            p.kind != "compound" and p.gain <= corrector.margin[p.kind]
            for p in corrector.proposals(tokens, words, margin=floors)
        )

    def gains(self, source: list[int], source_lp: np.ndarray, edited: list[list[int]]):
        """Log-likelihood of each of ``edited`` minus ``source``, over the tokens it changes and
        a window after them, all edits decoded side by side."""
        spans = [self._span(source, e) for e in edited]
        after = self.scorer.logprobs_many(
            [(e, prefix, stop_e) for e, (prefix, _, stop_e) in zip(edited, spans, strict=True)]
        )
        return [
            float(a.sum() - source_lp[max(prefix, 1) - 1 : stop_s - 1].sum())
            for a, (prefix, stop_s, _) in zip(after, spans, strict=True)
        ]

    def _span(self, source: list[int], edited: list[int]) -> tuple[int, int, int]:
        """Shared prefix length, and where the window ends in ``source`` and in ``edited``."""
        prefix = common_prefix(source, edited)
        suffix = 0
        while (
            suffix < min(len(source), len(edited)) - prefix
            and source[-1 - suffix] == edited[-1 - suffix]
        ):
            suffix += 1
        stop_s = min(len(source), len(source) - suffix + self.window)
        stop_e = min(len(edited), len(edited) - suffix + self.window)
        return prefix, stop_s, stop_e


@cache
def default_corrector() -> GrammarCorrector:
    """The corrector ``duetto tutor grammar`` and free-speech scoring use: the n-gram edits with
    gated Gemma re-ranking (JFLEG dev GLEU 50.27 against 48.83), or the n-gram corrector alone,
    with a warning, where llama-cpp-python (extra ``llm``) or the bundled Gemma is missing."""
    try:
        return GrammarCorrector(reranker=GemmaReranker())
    except (MissingExtraError, ModelNotFoundError) as exc:
        log.warning("grammar without Gemma re-ranking (n-gram edits alone): %s", exc)
        return corrector()


def _render(tokens: list[str], applied: dict[int, tuple[str, str]]) -> list[str]:
    out = []
    for i, token in enumerate(tokens):
        if i in applied:
            replacement, kind = applied[i]
            if kind in INSERTIONS.values():  # an insertion keeps the original token
                out += [*replacement.split()[:-1], token]
            elif replacement:
                out.append(_match_case(token, replacement))
        else:
            out.append(token)
    return out
