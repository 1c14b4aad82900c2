"""Grammar and spelling feedback: candidate edits ranked by a word n-gram language model.

For every word the corrector proposes edits of the kinds learners need most (spelling,
articles, prepositions, verb forms and agreement, noun number, doubled words, a few confused
word pairs), scores each by how much it raises the sentence's likelihood under a bigram model
with stupid backoff (counts from the frequency dictionaries symspellpy ships, MIT), and applies
the best edits greedily while they gain more than a margin. It runs in milliseconds, so it fits
the latency budget of a spoken exchange; it cannot rewrite a sentence the way a person would.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from duetto.errors import MissingExtraError

# Stupid backoff weight (Brants et al. 2007 use 0.4).
BACKOFF = 0.4
# Log-probability of a word neither dictionary knows (about one in 10^10 words).
UNKNOWN_LOGP = math.log(1e-10)
# Natural-log gain an edit must bring before it is applied; real-word edits (the word exists,
# the context prefers another) must clear a higher bar than fixing an unknown word.
MARGIN = {"spelling": 2.0, "article": 3.0, "preposition": 3.5, "verb form": 3.0, "noun number": 3.5,
          "word choice": 3.5, "repeated word": 1.0, "missing article": 4.0, "a/an": -1.0}  # fmt: skip
# Cost per character edit of a spelling correction (log-likelihood units): the LM alone would
# turn "tecnologies" into the more frequent "technology"; the closest spelling should win.
SPELLING_EDIT_COST = 2.0
MAX_EDITS = 6  # per sentence: learners' sentences rarely need more from a local corrector
ARTICLES = ("a", "an", "the")
PREPOSITIONS = ("in", "on", "at", "for", "to", "of", "with", "from", "by", "about", "into")
CONFUSED = (("its", "it's"), ("their", "there"), ("then", "than"), ("to", "too"), ("lose", "loose"),
            ("affect", "effect"), ("your", "you're"), ("who", "whom"), ("much", "many"),
            ("less", "fewer"), ("see", "watch"), ("say", "tell"), ("make", "do"))  # fmt: skip
EXPLAIN = {
    "spelling": "spelling",
    "article": "article: this noun phrase takes a different article (or none)",
    "missing article": "article: a singular countable noun usually needs 'a' or 'the'",
    "preposition": "preposition: this verb or noun goes with a different preposition",
    "verb form": "verb form or agreement: tense, participle or subject-verb agreement",
    "noun number": "noun number: singular or plural",
    "word choice": "commonly confused words",
    "repeated word": "the word is repeated",
    "capitalization": "capital letter: 'I' and the first word of a sentence",
    "a/an": "'an' goes before a vowel sound, 'a' before a consonant sound",
}


@dataclass(frozen=True)
class Edit:
    start: int  # token index in the original sentence
    end: int  # exclusive; start == end for an insertion
    original: str
    correction: str  # "" for a deletion
    kind: str
    explanation: str


@dataclass(frozen=True)
class Correction:
    text: str
    corrected: str
    edits: tuple[Edit, ...]
    seconds: float


class LanguageModel:
    """Unigram + bigram counts with stupid backoff (lower-case words)."""

    def __init__(self, unigrams: dict[str, int], bigrams: dict[tuple[str, str], int]):
        self.unigrams = unigrams
        self.bigrams = bigrams
        self.total = float(sum(unigrams.values()))
        # The bigram list keeps only pairs seen at least this often: a pair missing after a
        # frequent word is rarer than that, which backoff alone would not say.
        self.min_pair = float(min(bigrams.values())) if bigrams else 1.0

    def unigram(self, word: str) -> float:
        count = self.unigrams.get(word)
        return math.log(count / self.total) if count else UNKNOWN_LOGP

    def bigram(self, prev: str, word: str) -> float:
        pair = self.bigrams.get((prev, word))
        prev_count = self.unigrams.get(prev)
        if pair and prev_count:
            return min(math.log(pair / prev_count), 0.0)
        backoff = math.log(BACKOFF) + self.unigram(word)
        if prev_count:
            return min(backoff, math.log(self.min_pair / prev_count))
        return backoff

    def score(self, words: list[str]) -> float:
        if not words:
            return 0.0
        total = self.unigram(words[0])
        for prev, word in zip(words, words[1:], strict=False):
            total += self.bigram(prev, word)
        return total


def _symspell_dir() -> Path:
    try:
        import symspellpy
    except ImportError:
        raise MissingExtraError("grammar feedback (symspellpy)", "tutor") from None
    return Path(symspellpy.__file__).parent


@cache
def language_model() -> LanguageModel:
    folder = _symspell_dir()
    unigrams = {}
    for line in (folder / "frequency_dictionary_en_82_765.txt").read_text().splitlines():
        word, _, count = line.partition(" ")
        unigrams[word] = int(count)
    bigrams = {}
    for line in (folder / "frequency_bigramdictionary_en_243_342.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            bigrams[(parts[0], parts[1])] = int(parts[2])
    return LanguageModel(unigrams, bigrams)


@cache
def _speller():
    from symspellpy import SymSpell

    from duetto.models import cache_dir

    sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    cached = cache_dir() / "tutor" / "symspell-en-82765.pickle"
    if cached.is_file():
        try:
            sym.load_pickle(cached)
            return sym
        except Exception:  # a stale or partial cache: rebuild it
            sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
    sym.load_dictionary(str(_symspell_dir() / "frequency_dictionary_en_82_765.txt"), 0, 1)
    cached.parent.mkdir(parents=True, exist_ok=True)
    sym.save_pickle(cached)
    return sym


def _inflections(word: str) -> set[str]:
    try:
        from lemminflect import getAllInflections, getAllLemmas
    except ImportError:
        raise MissingExtraError("grammar feedback (lemminflect)", "tutor") from None
    out: set[str] = set()
    for lemmas in getAllLemmas(word).values():
        for lemma in lemmas:
            out.add(lemma)
            for forms in getAllInflections(lemma).values():
                out.update(forms)
    out.discard(word)
    return out


def tokenize(text: str) -> list[str]:
    """Words, numbers and punctuation marks as separate tokens ("don't", "well-known" stay whole)."""
    return re.findall(r"[A-Za-z]+(?:['-][A-Za-z]+)*|\d+(?:[.,]\d+)*|[^\sA-Za-z\d]", text)


def detokenize(tokens: list[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([.,!?;:%)\]}])", r"\1", text)
    return re.sub(r"([(\[{$]) ", r"\1", text)


class GrammarCorrector:
    """Proposes, scores and applies edits; one instance serves many sentences."""

    def __init__(self, margin: dict[str, float] | None = None):
        self.lm = language_model()
        self.margin = {**MARGIN, **(margin or {})}

    def candidates(self, tokens: list[str], i: int) -> list[tuple[str, str, float]]:
        """(replacement, kind, cost) for token ``i``; "" deletes it."""
        word = tokens[i].lower()
        if not word.isalpha() and "'" not in word:
            return []
        out: list[tuple[str, str, float]] = []
        if word not in self.lm.unigrams and "'" not in word:
            from symspellpy import Verbosity
            from symspellpy.editdistance import DistanceAlgorithm, EditDistance

            distance = EditDistance(DistanceAlgorithm.DAMERAU_OSA)
            seen = set()
            suggestions = [
                s.term for s in _speller().lookup(word, Verbosity.CLOSEST, max_edit_distance=2)[:5]
            ]
            # Over-regularised forms ("buyed", "childs"): the stem's own inflections.
            stems = [
                word[:-k]
                for k in (2, 1)
                if word.endswith(("ed", "s")[2 - k]) and word[:-k] in self.lm.unigrams
            ]
            for term in suggestions + stems:
                for form in (term, *sorted(_inflections(term))):
                    if form not in seen:
                        seen.add(form)
                        cost = SPELLING_EDIT_COST * (
                            1 if term in stems else max(distance.compare(word, form, 10), 0)
                        )
                        out.append((form, "spelling", cost))
            return out
        if word in ("a", "an") and i + 1 < len(tokens) and tokens[i + 1].isalpha():
            wanted = "an" if _starts_with_vowel_sound(tokens[i + 1]) else "a"
            if wanted != word:
                return [(wanted, "a/an", 0.0)]
        if word in ARTICLES:
            out += [
                (a, "article", 0.0) for a in ARTICLES if a not in (word, "a", "an") or word == "the"
            ]
            out.append(("", "article", 0.0))
        if word in PREPOSITIONS:
            out += [(p, "preposition", 0.0) for p in PREPOSITIONS if p != word] + [
                ("", "preposition", 0.0)
            ]
        for a, b in CONFUSED:
            if word in (a, b):
                out.append((b if word == a else a, "word choice", 0.0))
        if i > 0 and tokens[i - 1].lower() == word:
            out.append(("", "repeated word", 0.0))
        if word not in ARTICLES and word not in PREPOSITIONS:
            for form in _inflections(word):
                kind = (
                    "noun number"
                    if form.rstrip("s") == word.rstrip("s")
                    and len(form) != len(word)
                    and form.endswith("s") != word.endswith("s")
                    else "verb form"
                )
                out.append((form, kind, 0.0))
        return out

    def correct(self, text: str) -> Correction:
        """The corrected text and the edits that led to it."""
        import time

        started = time.perf_counter()
        tokens = tokenize(text)
        out_tokens, edits = self.correct_tokens(tokens)
        if out_tokens and out_tokens[0][:1].islower() and text[:1].isupper():
            out_tokens[0] = out_tokens[0][:1].upper() + out_tokens[0][1:]
        corrected = detokenize(out_tokens) if edits else text
        return Correction(text, corrected, tuple(edits), time.perf_counter() - started)

    def correct_tokens(self, tokens: list[str]) -> tuple[list[str], list[Edit]]:
        """Corrected tokens and the edits, for text that is already tokenized."""
        words = [t.lower() for t in tokens]
        applied: dict[int, tuple[str, str]] = {}
        for _ in range(MAX_EDITS):
            best = None
            for i in range(len(tokens)):
                if i in applied:
                    continue
                for replacement, kind, cost in self.candidates(tokens, i):
                    gain = self._gain(words, i, replacement) - cost
                    if gain > self.margin[kind] and (best is None or gain > best[0]):
                        best = (gain, i, replacement, kind)
            if best is None:
                break
            _, i, replacement, kind = best
            applied[i] = (replacement, kind)
            words[i] = replacement
        edits = []
        out_tokens = []
        for i, token in enumerate(tokens):
            if i not in applied and (
                token == "i" or (i == 0 and token[:1].islower() and token.isalpha())
            ):
                fixed = token.upper() if token == "i" else token[:1].upper() + token[1:]
                edits.append(
                    Edit(i, i + 1, token, fixed, "capitalization", EXPLAIN["capitalization"])
                )
                out_tokens.append(fixed)
                continue
            if i in applied:
                replacement, kind = applied[i]
                fixed = _match_case(token, replacement)
                edits.append(Edit(i, i + 1, token, fixed, kind, EXPLAIN[kind]))
                if fixed:
                    out_tokens.append(fixed)
            else:
                out_tokens.append(token)
        return out_tokens, edits

    def _gain(self, words: list[str], i: int, replacement: str) -> float:
        """Change in log-likelihood of the transitions around ``i`` if it became ``replacement``.

        A deletion leaves fewer transitions; it is judged by their mean, so dropping a word is
        not rewarded merely for shortening the sentence.
        """
        prev = next((w for w in reversed(words[:i]) if w), None)
        nxt = next((w for w in words[i + 1 :] if w), None)
        before = self._terms(prev, words[i], nxt)
        after = self._terms(prev, replacement, nxt) if replacement else self._terms(prev, nxt, None)
        if not after:
            return 0.0
        return sum(after) / len(after) * len(before) - sum(before)

    def _terms(self, prev: str | None, word: str | None, nxt: str | None) -> list[float]:
        if word is None:
            return []
        terms = [self.lm.bigram(prev, word) if prev else self.lm.unigram(word)]
        if nxt:
            terms.append(self.lm.bigram(word, nxt))
        return terms


def _starts_with_vowel_sound(word: str) -> bool:
    """By the CMU dictionary's first phone ("hour" yes, "user" no); by the letter otherwise."""
    from duetto.apps.tutor.lexicon import VOWEL_PHONES, pronounce

    (pron,) = pronounce([word.upper()])
    if pron.source in ("lexicon", "cmudict") and pron.phones:
        return pron.phones[0] in VOWEL_PHONES
    return word[:1].lower() in "aeiou"


def _match_case(original: str, replacement: str) -> str:
    if original[:1].isupper() and replacement:
        return replacement[:1].upper() + replacement[1:]
    return replacement


@cache
def corrector() -> GrammarCorrector:
    return GrammarCorrector()


def correct(text: str) -> Correction:
    """Correct one sentence with the shared corrector."""
    return corrector().correct(text)
