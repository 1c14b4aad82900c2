"""PocketSphinx's general US-English trigram model (en-us.lm.bin, BSD-2 like the package) as
natural-log word probabilities for the grammar corrector.

The model (72k lower-case words, 2.1M bigrams, 1.7M trigrams with Katz backoff) ships inside
the ``pocketsphinx`` wheel the tutor already needs. The binding's own ``NGramModel.prob`` builds
its word array in too few bytes (``malloc(len(words))``) and ``NGramModel.write`` crashes on the
trigrams, so the model is read and queried through the C functions the extension exports
(``ngram_model_read``, ``ngram_wid``, ``ngram_ng_prob``), loaded with ctypes: the file is
memory-mapped (tens of milliseconds) and a lookup costs a few microseconds.
"""

from __future__ import annotations

import ctypes
import math
from functools import cache
from pathlib import Path

from duetto.errors import MissingExtraError

# PocketSphinx's log base: a score s means a probability of 1.0001 ** s.
LOG_BASE = 1.0001
NGRAM_AUTO = 0  # ngram_file_type_t: guess the format from the file
NO_WORD = -1  # ngram_wid's answer for a word the model does not know
ORDER = 3
SENTENCE_START, SENTENCE_END = "<s>", "</s>"
# Lookups remembered before the memo is emptied: a long-running server sees ever new n-grams.
MAX_CACHED = 1_000_000


class TrigramModel:
    """Backed-off log-probabilities (natural log) of a word given up to two previous words."""

    def __init__(self, path: Path):
        self._lib = _library()
        self._lmath = self._lib.logmath_init(LOG_BASE, 0, 0)
        self._model = self._lib.ngram_model_read(None, str(path).encode(), NGRAM_AUTO, self._lmath)
        if not self._model:
            raise FileNotFoundError(f"could not read the language model {path}")
        self._ids: dict[str, int] = {}
        self._probs: dict[tuple[int, ...], float] = {}
        self._to_ln = math.log(LOG_BASE)

    def word_id(self, word: str) -> int:
        """The model's id for ``word``, or ``NO_WORD``."""
        wid = self._ids.get(word)
        if wid is None:
            wid = self._ids[word] = self._lib.ngram_wid(self._model, word.encode())
        return wid

    def knows(self, word: str) -> bool:
        return self.word_id(word) != NO_WORD

    def logp(self, word_id: int, history: tuple[int, ...]) -> float:
        """ln P(word | history), ``history`` the previous ids nearest first (at most two)."""
        key = (word_id, *history)
        prob = self._probs.get(key)
        if prob is None:
            hist = (ctypes.c_int32 * max(len(history), 1))(*history)
            used = ctypes.c_int32()
            raw = self._lib.ngram_ng_prob(self._model, word_id, hist, len(history), used)
            if len(self._probs) >= MAX_CACHED:
                self._probs.clear()
            prob = self._probs[key] = raw * self._to_ln
        return prob


def _library() -> ctypes.CDLL:
    try:
        import pocketsphinx
    except ImportError:
        raise MissingExtraError("grammar feedback (pocketsphinx)", "tutor") from None
    folder = Path(pocketsphinx.__file__).parent
    found = [p for p in folder.glob("_pocketsphinx*") if p.suffix in (".so", ".pyd")]
    if not found:
        raise MissingExtraError("grammar feedback (pocketsphinx's compiled module)", "tutor")
    lib = ctypes.CDLL(str(found[0]))
    lib.logmath_init.restype = ctypes.c_void_p
    lib.logmath_init.argtypes = [ctypes.c_double, ctypes.c_int, ctypes.c_int]
    lib.ngram_model_read.restype = ctypes.c_void_p
    lib.ngram_model_read.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_void_p]  # fmt: skip
    lib.ngram_wid.restype = ctypes.c_int32
    lib.ngram_wid.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ngram_ng_prob.restype = ctypes.c_int32
    lib.ngram_ng_prob.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                                  ctypes.c_int32, ctypes.POINTER(ctypes.c_int32)]  # fmt: skip
    return lib


def model_path() -> Path:
    import pocketsphinx

    return Path(pocketsphinx.__file__).parent / "model" / "en-us" / "en-us.lm.bin"


@cache
def trigram_model() -> TrigramModel:
    """The shared model (memory-mapped once per process)."""
    _library()  # raises MissingExtraError without pocketsphinx
    return TrigramModel(model_path())
