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
# llama.cpp threads when none are asked for: the machine's cores, up to this many (a sentence's
# batches are small, so more threads gain little).
MAX_THREADS = 4
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


class GemmaScorer:
    """Token log-likelihoods from a GGUF language model, reusing the cached shared prefix."""

    def __init__(self, model: str = "bundled", threads: int = 0, context: int = 512,
                 sequences: int = 1):  # fmt: skip
        try:
            from llama_cpp import Llama
        except ImportError:
            raise MissingExtraError("grammar re-ranking (llama-cpp-python)", "llm") from None
        from duetto.config import auto_threads
        from duetto.llm.llama_cpp import close_at_exit
        from duetto.models import gguf_model

        self.threads = threads = threads or min(auto_threads(0), MAX_THREADS)
        self.llm = Llama(model_path=gguf_model(model), n_ctx=context, n_batch=context,
                         n_threads=threads, n_threads_batch=threads, verbose=False)  # fmt: skip
        close_at_exit(self.llm)
        if sequences > 1:  # branches of the sentence decoded side by side (logprobs_many)
            self._parallel_context(sequences)
        self.sequences = sequences
        self.n_vocab = self.llm.n_vocab()
        self.cached: list[int] = []  # token ids whose keys/values are in the cache
        self.tokens_evaluated = 0

    def _parallel_context(self, sequences: int) -> None:
        """Replace the context by one that holds ``sequences`` sequences in one key/value cache,
        so a sequence can share the sentence's cached prefix without copying it."""
        from llama_cpp import _internals

        params = self.llm.context_params
        params.n_seq_max = sequences
        params.kv_unified = True
        self.llm._ctx.close()
        self.llm._ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self.llm._batch = _internals.LlamaBatch(
            n_tokens=self.llm.n_batch, embd=0, n_seq_max=sequences, verbose=False
        )

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def logprobs(self, ids: list[int], start: int, stop: int | None = None) -> np.ndarray:
        """log p(ids[j] | ids[:j]) for j in [start, stop), evaluating only what is not cached."""
        stop = len(ids) if stop is None else stop
        start = max(start, 1)
        if stop <= start:
            return np.zeros(0)
        # Logits at position j - 1 give token j: decode from start - 1 (at most what is cached).
        first = self._cached_prefix(ids, start - 1)
        self._decode(ids[first : stop - 1], first)
        self.cached = ids[: stop - 1]
        logits = np.ctypeslib.as_array(
            self.llm._ctx.get_logits(), shape=(stop - 1 - first, self.n_vocab)
        )
        return _token_logprobs(logits[start - 1 - first :], ids[start:stop])

    def _cached_prefix(self, ids: list[int], limit: int) -> int:
        """How many of ``ids``' first tokens (at most ``limit``) the cache already holds."""
        common = 0
        for a, b in zip(self.cached, ids[:limit], strict=False):
            if a != b:
                break
            common += 1
        return common

    def logprobs_many(self, variants: list[tuple[list[int], int, int]]) -> list[np.ndarray]:
        """:meth:`logprobs` of several ``(ids, start, stop)`` at once, in one decode.

        Each variant shares the cached sequence up to ``start - 1`` (the sentence it edits, as
        left by the last :meth:`logprobs` call) and is decoded from there in a sequence of its
        own, side by side with the others; the cache keeps the shared sentence afterwards.
        """
        if self.sequences == 1:
            return [self.logprobs(ids, start, stop) for ids, start, stop in variants]
        out: list[np.ndarray | None] = [None] * len(variants)
        todo = []
        for k, (ids, start, stop) in enumerate(variants):
            start = max(start, 1)
            if stop <= start:
                out[k] = np.zeros(0)
                continue
            todo.append((k, ids, start, stop, self._cached_prefix(ids, start - 1)))
        for chunk_start in range(0, len(todo), self.sequences - 1):
            chunk = todo[chunk_start : chunk_start + self.sequences - 1]
            batch = self.llm._batch.batch
            n = 0
            spans = []
            for seq, (k, ids, start, stop, shared) in enumerate(chunk, 1):
                self.llm._ctx.kv_cache_seq_rm(seq, 0, -1)
                if shared:
                    self.llm._ctx.kv_cache_seq_cp(0, seq, 0, shared)
                spans.append((k, ids, start, stop, shared, n))
                for j in range(shared, stop - 1):
                    batch.token[n] = ids[j]
                    batch.pos[n] = j
                    batch.seq_id[n][0] = seq
                    batch.n_seq_id[n] = 1
                    batch.logits[n] = True
                    n += 1
            batch.n_tokens = n
            self.llm._ctx.decode(self.llm._batch)
            self.tokens_evaluated += n
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(n, self.n_vocab))
            for k, ids, start, stop, shared, row in spans:
                rows = logits[row + start - 1 - shared : row + stop - 1 - shared]
                out[k] = _token_logprobs(rows, ids[start:stop])
            for seq in range(1, len(chunk) + 1):
                self.llm._ctx.kv_cache_seq_rm(seq, 0, -1)
        return out  # type: ignore[return-value]

    def _decode(self, ids: list[int], first: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(0, first, -1)
        batch = self.llm._batch
        batch.set_batch(ids, n_past=first, logits_all=True)
        self.llm._ctx.decode(batch)
        self.tokens_evaluated += len(ids)


class GemmaReranker:
    """Chooses edits for :class:`~duetto.apps.tutor.grammar.GrammarCorrector` by Gemma's likelihood."""

    def __init__(self, model: str = "bundled", threads: int = 0, margin: float = DEFAULT_MARGIN,
                 shortlist: int = SHORTLIST, passes: int = PASSES, window: int = WINDOW,
                 shortlist_margin: dict[str, float] | None = None,
                 gate: float | None = GATE,
                 confident: float | None = CONFIDENT):  # fmt: skip
        self.scorer = GemmaScorer(model, threads, sequences=shortlist + 1)
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
        prefix = 0
        for a, b in zip(source, edited, strict=False):
            if a != b:
                break
            prefix += 1
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


def _token_logprobs(logits: np.ndarray, targets: list[int]) -> np.ndarray:
    """log-softmax of each row of ``logits`` at its target token."""
    top = logits.max(axis=1)
    norm = np.log(np.exp(logits - top[:, None]).sum(axis=1)) + top
    return logits[np.arange(len(logits)), targets] - norm


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
