"""Log-likelihoods of text under a GGUF language model (llama.cpp), for choosing among texts.

The grammar corrector's re-ranker (:mod:`duetto.apps.tutor.grammar_lm`) scores edited sentences
with it, and the ASR (:mod:`duetto.asr.whisper`, ``asr.noisy_lm``) weighs its decodings of noisy
audio by it. Only the tokens not already in the key/value cache are evaluated.
"""

from __future__ import annotations

import numpy as np

from duetto.errors import MissingExtraError

# llama.cpp threads when none are asked for: the machine's cores, up to this many (a sentence's
# batches are small, so more threads gain little).
MAX_THREADS = 4


class GemmaScorer:
    """Token log-likelihoods from a GGUF language model (the bundled Gemma 3 270M by default),
    reusing the cached shared prefix. ``purpose`` names the feature in the error raised when
    llama-cpp-python is missing."""

    def __init__(self, model: str = "bundled", threads: int = 0, context: int = 512,
                 sequences: int = 1, purpose: str = "language-model scoring"):  # fmt: skip
        try:
            from llama_cpp import Llama
        except ImportError:
            raise MissingExtraError(f"{purpose} (llama-cpp-python)", "llm") from None
        from duetto.config import auto_threads
        from duetto.llm.llama_cpp import close_at_exit, route_llama_logs
        from duetto.models import gguf_model

        route_llama_logs()

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
        return common_prefix(self.cached, ids[:limit])

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

    def sentence_logprobs(self, texts: list[str]) -> list[float]:
        """Each text's log-probability (nats) as a whole sentence: BOS, the text, a newline.
        Texts are scored in token order, so one that shares its first tokens with the text
        scored before it reuses their cache and their log-probabilities (beam alternatives
        differ in a word or two)."""
        encoded = [self.tokenize(t + "\n") for t in texts]
        out = [0.0] * len(texts)
        previous: list[int] = []
        running = np.zeros(1)  # running[j]: log p of previous[1:j + 1]
        for k in sorted(range(len(texts)), key=encoded.__getitem__):
            ids = encoded[k]
            # tokens before ``start`` score as they did in ``previous``
            start = max(common_prefix(previous, ids), 1)
            tail = self.logprobs(ids, start)
            running = np.concatenate([running[:start], running[start - 1] + np.cumsum(tail)])
            out[k] = float(running[-1])
            previous = ids
        return out

    def _decode(self, ids: list[int], first: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(0, first, -1)
        batch = self.llm._batch
        batch.set_batch(ids, n_past=first, logits_all=True)
        self.llm._ctx.decode(batch)
        self.tokens_evaluated += len(ids)


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many first tokens ``a`` and ``b`` share."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common


def _token_logprobs(logits: np.ndarray, targets: list[int]) -> np.ndarray:
    """log-softmax of each row of ``logits`` at its target token."""
    top = logits.max(axis=1)
    norm = np.log(np.exp(logits - top[:, None]).sum(axis=1)) + top
    return logits[np.arange(len(logits)), targets] - norm
