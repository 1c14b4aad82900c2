"""Grammar and spelling feedback: candidate edits ranked by a word n-gram language model.

For every word the corrector proposes edits of the kinds learners need most (spelling,
articles, prepositions, verb forms, agreement with a determiner or a pronoun subject, noun
number, doubled words, a few confused word pairs, missing articles), scores each by how much it raises the sentence's likelihood under
PocketSphinx's US-English trigram model (trigram.py; or a bigram model with stupid backoff on
the counts symspellpy ships, MIT), and applies the best edits greedily while they gain more than
a margin. It runs in milliseconds, so it fits
the latency budget of a spoken exchange; it cannot rewrite a sentence the way a person would.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from duetto.apps.tutor.trigram import NO_WORD, SENTENCE_START, trigram_model
from duetto.errors import MissingExtraError

# Share of the trigram model's gain (PocketSphinx's en-us model, trigram.py) in an edit's score,
# the rest the bigram model's: 1 beat 0.5 on the even lines of JFLEG dev (docs/tutor.md).
TRIGRAM_WEIGHT = 1.0
# Stupid backoff weight (Brants et al. 2007 use 0.4).
BACKOFF = 0.4
# Log-probability of a word neither dictionary knows (about one in 10^10 words).
UNKNOWN_LOGP = math.log(1e-10)
# Natural-log gain an edit must bring before it is applied; real-word edits (the word exists,
# the context prefers another) must clear a higher bar than fixing an unknown word. Chosen by
# coordinate search on the even lines of JFLEG dev under the trigram model
# (bench/grammar_tune.py, docs/tutor.md). The trigram model can tell a missing article ("I have
# car") where the bigram one could not; a missing "to" still costs GLEU, so it stays off.
# Agreement with a determiner or a pronoun subject is nearly always right, so those edits apply
# even when the trigram model mildly prefers the original (negative margins); a change of tense
# or of an -ing form is often wrong, so it needs more than other verb forms. "more" or "most"
# before a word already compared ("more easier") is dropped unless the LM is very sure it fits.
MARGIN = {"spelling": 2.0, "article": 6.0, "preposition": 5.0, "verb form": 3.0,
          "noun number": 5.0, "word choice": 3.5, "repeated word": 1.0, "a/an": -1.0,
          "missing article": 2.0, "missing word": math.inf, "compound": 0.0,
          "extra preposition": 2.0, "number agreement": -4.0,
          "subject agreement": -4.0, "tense": 5.0,
          "participle": 6.0, "rare word": 3.0, "double comparative": -6.0}  # fmt: skip
# Words the corrector may insert before a word, and the kind of edit each makes.
INSERTIONS = {"the": "missing article", "a": "missing article", "an": "missing article",
              "to": "missing word"}  # fmt: skip
# Introductory phrases that take a comma after them at the start of a sentence.
INTRODUCTORY = ("however", "therefore", "moreover", "furthermore", "thus", "nowadays",
                "for example", "for instance", "in addition", "in my opinion", "in conclusion",
                "on the other hand", "in this case", "in fact", "of course", "in general",
                "first of all", "first", "firstly", "second", "secondly", "finally", "besides",
                "consequently", "as a result", "in other words", "in the end", "in summary",
                "to sum up", "personally", "additionally", "on the contrary", "in contrast",
                "also")  # fmt: skip
# Words that open a clause and take a comma before them inside a sentence ("..., but",
# "..., which"); measured one by one on the even lines of JFLEG dev (docs/tutor.md): "and",
# "so" and "because" lost GLEU there and are left out.
CLAUSE_OPENERS = ("but", "which", "especially")
# Words after which a clause opener is not one ("nothing but", "in which", "not only ... but").
NO_CLAUSE_COMMA_AFTER = frozenset({"nothing", "anything", "everything", "all", "and", "or", "but",
                                   "that", "only", "not"})  # fmt: skip
# Texting spellings a spelling dictionary does not know or gets wrong ("u" -> "i").
ABBREVIATIONS = {"u": "you", "ur": "your", "r": "are", "pls": "please", "plz": "please",
                 "thx": "thanks", "coz": "because", "cuz": "because", "bcoz": "because",
                 "dont": "don't", "doesnt": "doesn't", "didnt": "didn't", "isnt": "isn't",
                 "wasnt": "wasn't", "arent": "aren't", "werent": "weren't", "cant": "can't",
                 "couldnt": "couldn't", "shouldnt": "shouldn't", "wouldnt": "wouldn't",
                 "havent": "haven't", "hasnt": "hasn't", "im": "I'm", "ive": "I've",
                 "thats": "that's", "whats": "what's", "theres": "there's",
                 "shud": "should", "wud": "would", "ppl": "people", "gud": "good",
                 "becoz": "because", "bcz": "because", "bcos": "because", "abt": "about",
                 "frnd": "friend", "frnds": "friends", "msg": "message",
                 "dosent": "doesn't", "dosnt": "doesn't", "doesent": "doesn't",
                 "wasent": "wasn't", "cannt": "can't", "didnot": "did not",
                 "doesnot": "does not", "donot": "do not"}  # fmt: skip
# Cost per character edit of a spelling correction (log-likelihood units): the LM alone would
# turn "tecnologies" into the more frequent "technology"; the closest spelling should win.
SPELLING_EDIT_COST = 2.0
# A misspelled word's ending shows the inflection the learner meant ("probles" a plural,
# "reserched" a past tense, "choosed" too): a correction without one of these tags pays extra.
ENDING_TAGS = (("ing", frozenset({"VBG"})), ("ed", frozenset({"VBD", "VBN"})),
               ("s", frozenset({"NNS", "VBZ"})))  # fmt: skip
ENDING_COST = 4.0
# Words of at least this many letters also get the known words with the same consonant
# skeleton as candidates (the few most frequent, seen at least SKELETON_MIN_COUNT times).
MIN_SKELETON_LENGTH = 5
SKELETON_CANDIDATES = 3
SKELETON_MIN_COUNT = 100_000
# A known word this many times rarer than a word one edit away may be a misspelling of it.
RARE_RATIO = 100
# Shortest part of a split run-together word: the dictionary knows many two-letter oddities.
MIN_SPLIT = 2
MAX_EDITS = 6  # per sentence: learners' sentences rarely need more from a local corrector
ARTICLES = ("a", "an", "the")
NOUN_PHRASE_OPENERS = frozenset({*ARTICLES, "my", "your", "his", "her", "its", "our", "their",
                                 "this", "these", "those"})  # fmt: skip
PREPOSITIONS = ("in", "on", "at", "for", "to", "of", "with", "from", "by", "about", "into")
CONFUSED = (("its", "it's"), ("their", "there"), ("then", "than"), ("to", "too"), ("lose", "loose"),
            ("affect", "effect"), ("your", "you're"), ("who", "whom"), ("much", "many"),
            ("less", "fewer"), ("see", "watch"), ("say", "tell"), ("make", "do"))  # fmt: skip
EXPLAIN = {
    "spelling": "spelling",
    "article": "article: this noun phrase takes a different article (or none)",
    "missing article": "article: a singular countable noun usually needs 'a' or 'the'",
    "preposition": "preposition: this verb or noun goes with a different preposition",
    "extra preposition": "preposition: this verb or noun takes none here",
    "verb form": "verb form or agreement: tense, participle or subject-verb agreement",
    "noun number": "noun number: singular or plural",
    "number agreement": "noun number: the determiner before it asks for singular or plural",
    "subject agreement": "subject-verb agreement: the verb follows the number of its subject",
    "tense": "verb tense: past or present",
    "participle": "verb form: an -ing form that should be another form",
    "word choice": "commonly confused words",
    "repeated word": "the word is repeated",
    "capitalization": (
        "capital letter: 'I', a sentence's first word, languages, days and months; "
        "not a function word inside a sentence"
    ),
    "a/an": "'an' goes before a vowel sound, 'a' before a consonant sound",
    "missing word": "a word is missing here",
    "punctuation": "a comma after an introductory phrase",
    "clause": "a comma before a clause that starts with 'but' or 'which'",
    "full stop": "a sentence ends with a full stop",
    "subordinate": "a comma after an opening clause ('If it rains, we stay')",
    "compound": "written as one word",
    "rare word": "spelling: a rare word that looks like a misspelling of a common one",
    "double comparative": "'easier' and 'best' already compare: no 'more' or 'most' before them",
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


@lru_cache(maxsize=100_000)  # bounded: a long-running server sees ever new words
def _more_frequent_neighbours(word: str, count: int) -> tuple[str, ...]:
    from symspellpy import Verbosity

    return tuple(
        s.term
        for s in _speller().lookup(word, Verbosity.ALL, max_edit_distance=1)
        if s.term != word and s.count >= RARE_RATIO * count
    )


def _skeleton(word: str) -> str:
    """First letter, then the consonants with doubled letters written once: "bisnes" and
    "business" both give "bsns"."""
    rest = re.sub(r"[aeiouy]", "", word[1:])
    return word[:1] + re.sub(r"(.)\1+", r"\1", rest)


@cache
def _skeleton_index(lm: LanguageModel) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for word, count in sorted(lm.unigrams.items(), key=lambda item: -item[1]):
        if count >= SKELETON_MIN_COUNT and len(word) >= MIN_SKELETON_LENGTH:
            index.setdefault(_skeleton(word), []).append(word)
    return index


@cache
def _tags(word: str) -> frozenset[str]:
    """The Penn tags ``word`` can carry as an inflection of any of its lemmas (lemminflect)."""
    from lemminflect import getAllInflections, getAllLemmas

    tags = set()
    for lemmas in getAllLemmas(word).values():
        for lemma in lemmas:
            tags.update(t for t, forms in getAllInflections(lemma).items() if word in forms)
    return frozenset(tags)


def tokenize(text: str) -> list[str]:
    """Words, numbers and punctuation marks as separate tokens ("don't", "well-known" stay whole)."""
    return re.findall(r"[A-Za-z]+(?:['-][A-Za-z]+)*|\d+(?:[.,]\d+)*|[^\sA-Za-z\d]", text)


def detokenize(tokens: list[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([.,!?;:%)\]}])", r"\1", text)
    return re.sub(r"([(\[{$]) ", r"\1", text)


@dataclass(frozen=True)
class Proposal:
    """One candidate edit at token ``index`` with its n-gram gain (cost already taken off)."""

    gain: float
    index: int
    replacement: str  # "" deletes the token; "w token" inserts w before it
    kind: str
    cost: float = 0.0  # spelling: the edit distance's share, already taken off ``gain``


class GrammarCorrector:
    """Proposes, scores and applies edits; one instance serves many sentences.

    ``reranker`` (an object with ``choose(corrector, tokens)`` returning token index ->
    (replacement, kind), e.g. :class:`duetto.apps.tutor.grammar_lm.GemmaReranker`) re-scores the
    n-gram model's shortlist with a neural language model; without it the n-gram gains decide
    alone.
    """

    def __init__(self, margin: dict[str, float] | None = None, *, insertions: bool | None = None,
                 commas: bool = True, sentence_capitals: bool = True, full_stop: bool = True,
                 reranker=None, trigram_weight: float = TRIGRAM_WEIGHT):  # fmt: skip
        self.lm = language_model()
        self.trigram_weight = trigram_weight
        self.trigram = trigram_model() if trigram_weight > 0 else None
        self.margin = {**MARGIN, **(margin or {})}
        # Missing words are proposed unless asked not to; MARGIN decides which kinds are applied.
        self.insertions = True if insertions is None else insertions
        self.commas = commas
        self.full_stop = full_stop
        self.sentence_capitals = sentence_capitals
        self.reranker = reranker

    def candidates(self, tokens: list[str], i: int) -> list[tuple[str, str, float]]:
        """(replacement, kind, cost) for token ``i``; "" deletes it, "w token" inserts w."""
        word = tokens[i].lower()
        if not word.isalpha() and "'" not in word:
            return []
        out: list[tuple[str, str, float]] = []
        if word not in self.lm.unigrams and "'" not in word:
            if word in ABBREVIATIONS:
                return [(ABBREVIATIONS[word], "spelling", 0.0)]
            from symspellpy import Verbosity
            from symspellpy.editdistance import DistanceAlgorithm, EditDistance

            distance = EditDistance(DistanceAlgorithm.DAMERAU_OSA)
            seen = set()
            wanted = next((tags for end, tags in ENDING_TAGS if word.endswith(end)), None)
            suggestions = [
                s.term for s in _speller().lookup(word, Verbosity.CLOSEST, max_edit_distance=2)[:5]
            ]
            # Over-regularised forms ("buyed", "childs"): the stem's own inflections.
            stems = [
                word[:-k]
                for k in (2, 1)
                if word.endswith(("ed", "s")[2 - k]) and word[:-k] in self.lm.unigrams
            ]
            out += [(pair, "spelling", SPELLING_EDIT_COST) for pair in self._splits(word)]
            # Misspellings beyond two edits that keep the consonants ("bisnes", "cigarrets").
            far = [t for t in self._same_consonants(word) if t not in suggestions]
            for term in suggestions + stems + far:
                for form in (term, *sorted(_inflections(term))):
                    if form not in seen:
                        seen.add(form)
                        cost = SPELLING_EDIT_COST * (
                            1 if term in stems else max(distance.compare(word, form, 10), 0)
                        )
                        if wanted and not wanted & _tags(form):
                            cost += ENDING_COST
                        out.append((form, "spelling", cost))
            return out
        out += [(w, "rare word", SPELLING_EDIT_COST) for w in self._common_neighbours(word)]
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
            out += [(p, "preposition", 0.0) for p in PREPOSITIONS if p != word]
            out.append(("", "extra preposition", 0.0))
        for a, b in CONFUSED:
            if word in (a, b):
                out.append((b if word == a else a, "word choice", 0.0))
        if i > 0 and tokens[i - 1].lower() == word:
            out.append(("", "repeated word", 0.0))
        if i + 1 < len(tokens) and _double_comparative(word, tokens[i + 1].lower()):
            out.append(("", "double comparative", 0.0))
        if word not in ARTICLES and word not in PREPOSITIONS:
            for form in _inflections(word):
                kind = (
                    "noun number"
                    if form.rstrip("s") == word.rstrip("s")
                    and len(form) != len(word)
                    and form.endswith("s") != word.endswith("s")
                    else "verb form"
                )
                if kind == "noun number" and _number_agreement(tokens, i, form):
                    kind = "number agreement"
                elif _subject_agreement(tokens, i, form):  # "enjoys" looks like a plural
                    kind = "subject agreement"
                elif kind == "verb form" and _is_tense_change(word, form):
                    kind = "tense"
                elif kind == "verb form" and "VBG" in _tags(word):
                    kind = "participle"
                out.append((form, kind, 0.0))
        if self.insertions and self._may_insert_before(tokens, i):
            for inserted, kind in INSERTIONS.items():
                if inserted == "an" or inserted == "a":
                    if inserted != ("an" if _starts_with_vowel_sound(word) else "a"):
                        continue
                out.append((f"{inserted} {word}", kind, 0.0))
        return out

    def _common_neighbours(self, word: str) -> tuple[str, ...]:
        """Words one edit from a rare known word and far more frequent ("yong" -> "young")."""
        count = self.lm.unigrams.get(word, 0)
        if len(word) < 3 or not word.isalpha() or not count:
            return ()
        return _more_frequent_neighbours(word, count)

    def _same_consonants(self, word: str) -> list[str]:
        """Known words with ``word``'s consonant skeleton, most frequent first."""
        if len(word) < MIN_SKELETON_LENGTH:
            return []
        return _skeleton_index(self.lm).get(_skeleton(word), [])[:SKELETON_CANDIDATES]

    def _splits(self, word: str) -> list[str]:
        """Two known words run together ("alot", "allday"), as "a lot", "all day"."""
        out = []
        for k in range(1, len(word)):
            left, right = word[:k], word[k:]
            if (
                (len(left) >= MIN_SPLIT or left in ("a", "i"))
                and len(right) >= MIN_SPLIT
                and left in self.lm.unigrams
                and right in self.lm.unigrams
            ):
                out.append(f"{left} {right}")
        return out

    @staticmethod
    def _may_insert_before(tokens: list[str], i: int) -> bool:
        word = tokens[i].lower()
        prev = tokens[i - 1].lower() if i > 0 else ""
        before = tokens[i - 2].lower() if i > 1 else ""
        return (
            before not in NOUN_PHRASE_OPENERS  # inside a noun phrase: "the reading passage"
            and word.isalpha()
            and word not in ARTICLES
            and word not in INSERTIONS
            and prev not in ARTICLES
            and prev not in INSERTIONS
        )

    def proposals(self, tokens: list[str], words: list[str], skip=(), margin=None):
        """Every candidate edit whose n-gram gain beats its kind's margin (or ``margin``'s)."""
        margin = margin or self.margin
        out = []
        for i in range(len(tokens)):
            if i in skip:
                continue
            for replacement, kind, cost in self.candidates(tokens, i):
                gain = self._gain(words, i, replacement) - cost
                if gain > margin.get(kind, math.inf):
                    out.append(Proposal(gain, i, replacement, kind, cost))
            joined = self._joined(tokens, i, skip)
            if joined:
                gain = self._join_gain(words, i, joined)
                if gain > margin.get("compound", math.inf):
                    out.append(Proposal(gain, i, joined, "compound"))
        out.sort(key=lambda p: -p.gain)
        return out

    def _joined(self, tokens: list[str], i: int, skip=()) -> str | None:
        """The one word for words ``i`` and ``i + 1`` ("my self" -> "myself"), if it is known."""
        if i + 1 >= len(tokens) or i + 1 in skip:
            return None
        left, right = tokens[i].lower(), tokens[i + 1].lower()
        joined = left + right
        if (
            left.isalpha()
            and right.isalpha()
            and min(len(left), len(right)) >= MIN_SPLIT
            and joined in self.lm.unigrams
        ):
            return joined
        return None

    def _join_gain(self, words: list[str], i: int, joined: str) -> float:
        """:meth:`_gain` of writing words ``i`` and ``i + 1`` as ``joined``."""
        pair = [*words[:i], f"{words[i]} {words[i + 1]}", *words[i + 2 :]]
        return self._gain(pair, i, joined)

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
        if self.reranker is not None:
            applied = self.reranker.choose(self, tokens)
        else:
            applied = self._choose_greedy(tokens)
        return self._apply(tokens, applied)

    def _choose_greedy(self, tokens: list[str]) -> dict[int, tuple[str, str]]:
        words = [t.lower() for t in tokens]
        applied: dict[int, tuple[str, str]] = {}
        for _ in range(MAX_EDITS):
            found = self.proposals(tokens, words, skip=applied)
            if not found:
                break
            best = found[0]
            applied[best.index] = (best.replacement, best.kind)
            words[best.index] = best.replacement
            if best.kind == "compound":  # the second word is absorbed by the first
                applied[best.index + 1] = ("", "compound")
                words[best.index + 1] = ""
        return applied

    def _apply(self, tokens: list[str], applied: dict[int, tuple[str, str]]):
        edits: list[Edit] = []
        out_tokens: list[str] = []
        for i, token in enumerate(tokens):
            starts = i == 0 or (self.sentence_capitals and tokens[i - 1] in (".", "!", "?"))
            if i in applied:
                replacement, kind = applied[i]
                if kind in INSERTIONS.values():
                    inserted = replacement.split()[0]
                    if starts and token[:1].isupper():
                        inserted = inserted.capitalize()
                        if token != "I" and token[1:].islower():
                            token = token.lower()
                    edits.append(Edit(i, i, "", inserted, kind, EXPLAIN[kind]))
                    out_tokens += [inserted, token]
                    continue
                if kind == "compound":
                    if replacement:  # one edit for both words; the second adds nothing
                        fixed = _match_case(token, replacement)
                        original = f"{token} {tokens[i + 1]}"
                        edits.append(Edit(i, i + 2, original, fixed, kind, EXPLAIN[kind]))
                        out_tokens.append(fixed)
                    continue
                fixed = _match_case(token, replacement)
                if starts and fixed[:1].islower():
                    fixed = fixed[:1].upper() + fixed[1:]
                edits.append(Edit(i, i + 1, token, fixed, kind, EXPLAIN[kind]))
                if fixed:
                    out_tokens.append(fixed)
                continue
            fixed = self._capitalised(tokens, i, starts)
            if fixed != token:
                edits.append(
                    Edit(i, i + 1, token, fixed, "capitalization", EXPLAIN["capitalization"])
                )
                token = fixed
            out_tokens.append(token)
        if self.commas:
            out_tokens = self._introductory_commas(out_tokens, edits)
            out_tokens = self._clause_commas(out_tokens, edits)
            out_tokens = self._subordinate_clause_commas(out_tokens, edits)
        if self.full_stop and out_tokens and out_tokens[-1][-1:].isalnum():
            end = len(out_tokens)  # a position in the corrected text, like the commas'
            edits.append(Edit(end, end, "", ".", "punctuation", EXPLAIN["full stop"]))
            out_tokens.append(".")
        return out_tokens, edits

    @staticmethod
    def _clause_commas(tokens: list[str], edits: list[Edit]) -> list[str]:
        """A comma before "but", "which" ... that open a clause inside a sentence."""
        out = []
        for i, token in enumerate(tokens):
            prev = tokens[i - 1].lower() if i else ""
            if (
                token.lower() in CLAUSE_OPENERS
                and i > 1
                and prev.isalpha()
                and prev not in NO_CLAUSE_COMMA_AFTER
                and prev not in PREPOSITIONS
                and tokens[i - 2] not in (".", "!", "?")
            ):
                edits.append(Edit(len(out), len(out), "", ",", "punctuation", EXPLAIN["clause"]))
                out.append(",")
            out.append(token)
        return out

    def _capitalised(self, tokens: list[str], i: int, starts: bool) -> str:
        """``tokens[i]`` with the capital it needs: "I", a sentence's first word, languages and
        days; a function word inside a sentence lowered ("For example, When I")."""
        token = tokens[i]
        if self.sentence_capitals and _needs_lower_case(tokens, i):
            return token.lower()
        if token in PROPER_WORDS:
            return token.capitalize()
        if token == "i":
            return "I"
        if starts and token[:1].islower() and token.isalpha():
            return token[:1].upper() + token[1:]
        return token

    @staticmethod
    def _subordinate_clause_commas(tokens: list[str], edits: list[Edit]) -> list[str]:
        """A comma between an opening subordinate clause and the main clause: "If it rains, we
        stay". The main clause is taken to start at the first subject pronoun followed by an
        auxiliary or modal verb ("we will", "he is"), after at least three words of the sentence."""
        out = list(tokens)
        start = 0
        while start < len(out):
            end = next((k for k in range(start, len(out)) if out[k] in SENTENCE_END), len(out))
            if out[start].lower() in SUBORDINATORS:
                for k in range(start + 3, end - 1):
                    if out[k - 1] in (",", ";", ":") or not out[k - 1].isalpha():
                        break
                    nxt = out[k + 1].lower()
                    if k + 2 < end and _tags(nxt) == {"RB"}:  # "he probably would"
                        nxt = out[k + 2].lower()
                    if out[k].lower() in MAIN_CLAUSE_SUBJECTS and nxt in AUXILIARIES:
                        out.insert(k, ",")
                        edits.append(Edit(k, k, "", ",", "punctuation", EXPLAIN["subordinate"]))
                        end += 1
                        break
            start = end + 1
        return out

    @staticmethod
    def _introductory_commas(tokens: list[str], edits: list[Edit]) -> list[str]:
        """A comma after "However", "For example", "In my opinion"... that open a sentence."""
        out = list(tokens)
        i = 0
        while i < len(out):
            if i == 0 or out[i - 1] in (".", "!", "?"):
                for phrase in INTRODUCTORY:
                    words = phrase.split()
                    end = i + len(words)
                    if [w.lower() for w in out[i:end]] != words:
                        continue
                    # The longest phrase that matches decides ("First of all ," is not "First").
                    if end < len(out) and out[end] not in (",", ".", "!", "?", ";", ":"):
                        out.insert(end, ",")
                        # Positions here are in the corrected text, not the original.
                        edits.append(Edit(end, end, "", ",", "punctuation", EXPLAIN["punctuation"]))
                    break
            i += 1
        return out

    def _gain(self, words: list[str], i: int, replacement: str) -> float:
        """The n-gram gain of ``replacement`` at ``i``: bigram and trigram gains mixed."""
        gain = self._bigram_gain(words, i, replacement) if self.trigram_weight < 1 else 0.0
        if self.trigram is None:
            return gain
        tri = self._trigram_gain(words, i, replacement)
        return (1 - self.trigram_weight) * gain + self.trigram_weight * tri

    def _bigram_gain(self, words: list[str], i: int, replacement: str) -> float:
        """Change in log-likelihood of the transitions around ``i`` if it became ``replacement``.

        A deletion leaves fewer transitions; it is judged by their mean, so dropping a word is
        not rewarded merely for shortening the sentence. An insertion adds one; it pays for it.
        """
        prev = next((w.split()[-1] for w in reversed(words[:i]) if w), None)
        nxt = next((w.split()[0] for w in words[i + 1 :] if w), None)
        before = self._chain(prev, words[i].split(), nxt)
        after = self._chain(prev, replacement.split(), nxt)
        if not after:
            return 0.0
        if len(after) < len(before):
            return sum(after) / len(after) * len(before) - sum(before)
        return sum(after) - sum(before)

    def _trigram_gain(self, words: list[str], i: int, replacement: str) -> float:
        """:meth:`_bigram_gain` under the trigram model: the edited words and the two after them."""
        history = self._left_ids(words, i)
        right = self._right_words(words, i)
        before = self._trigram_chain(history, [*words[i].split(), *right])
        after = self._trigram_chain(history, [*replacement.split(), *right])
        n_before, n_after = len(before), len(after)
        if n_after < n_before:
            return sum(after) / n_after * n_before - sum(before)
        return sum(after) - sum(before)

    def _left_ids(self, words: list[str], i: int) -> tuple[int, ...]:
        """Trigram ids of the (at most two) words before ``i``, nearest first; commas and other
        marks inside a sentence are skipped (the model was trained without them), an unknown word
        cuts the history and the sentence start is ``<s>``."""
        tri = self.trigram
        ids: list[int] = []
        for entry in reversed(words[:i]):
            for word in reversed(entry.split()):
                if word in SENTENCE_END:
                    return (*ids, tri.word_id(SENTENCE_START))
                if not _is_word(word):
                    continue
                wid = tri.word_id(word)
                if wid == NO_WORD:
                    return tuple(ids)
                ids.append(wid)
                if len(ids) == 2:
                    return tuple(ids)
        return (*ids, tri.word_id(SENTENCE_START))

    @staticmethod
    def _right_words(words: list[str], i: int) -> list[str]:
        """The (at most two) words after ``i`` whose trigrams the edit changes; ``</s>`` ends."""
        out: list[str] = []
        for entry in words[i + 1 :]:
            for word in entry.split():
                if word in SENTENCE_END:
                    return [*out, "</s>"]
                if _is_word(word):
                    out.append(word)
                    if len(out) == 2:
                        return out
        return [*out, "</s>"]

    def _trigram_chain(self, history: tuple[int, ...], tokens: list[str]) -> list[float]:
        tri = self.trigram
        terms = []
        for word in tokens:
            wid = tri.word_id(word)
            if wid == NO_WORD:  # the symspell counts know more words than the trigram model
                terms.append(self.lm.unigram(word))
                history = ()
            else:
                terms.append(tri.logp(wid, history))
                history = (wid, *history)[:2]
        return terms

    def _chain(self, prev: str | None, middle: list[str], nxt: str | None) -> list[float]:
        terms = []
        for word in [*middle, nxt] if nxt else middle:
            terms.append(self.lm.bigram(prev, word) if prev else self.lm.unigram(word))
            prev = word
        return terms


SENTENCE_END = (".", "!", "?")
# Words that open a subordinate clause at the start of a sentence ("If ..., we will ...").
SUBORDINATORS = frozenset({"if", "when", "although", "though", "while", "after", "before",
                           "since", "once", "whenever", "unless", "even", "because", "as"})  # fmt: skip
MAIN_CLAUSE_SUBJECTS = frozenset({"i", "you", "he", "she", "it", "we", "they", "there"})
AUXILIARIES = frozenset({"will", "would", "can", "could", "should", "must", "may", "might",
                         "shall", "is", "are", "was", "were", "am", "have", "has", "had", "do",
                         "does", "did", "need", "needs"})  # fmt: skip
# Determiners that fix the number of the noun they open ("these", "many" plural; "this",
# "each" singular): a noun-number edit that agrees with one is its own kind, with its own margin.
PLURAL_DETERMINERS = frozenset({"these", "those", "many", "several", "few", "both", "various",
                                "two", "three", "four", "five", "six", "seven", "eight", "nine",
                                "ten", "numerous", "multiple"})  # fmt: skip
SINGULAR_DETERMINERS = frozenset({"this", "a", "an", "one", "each", "every", "another"})
ADJECTIVE = frozenset({"JJ", "JJR", "JJS"})
# Subject pronouns whose verb is in the third person singular, and those whose verb is not
# ("I" takes "was" but not "is": only the was/were pair is decided for it).
SINGULAR_SUBJECTS = frozenset({"he", "she", "it", "everyone", "everybody", "someone",
                               "somebody", "nobody", "everything", "something", "nothing"})  # fmt: skip
PLURAL_SUBJECTS = frozenset({"we", "they", "you"})
# Words after which a pronoun is an object or the verb a bare infinitive.
NOT_A_SUBJECT_AFTER = frozenset({"will", "would", "can", "could", "shall", "should", "may",
                                 "might", "must", "do", "does", "did", "to", "let", "make",
                                 "makes", "made", "help", "helps", "helped", "see", "saw",
                                 "watch", "hear", "heard", "have", "has", "had"})  # fmt: skip
# Words English always capitalises: languages and nationalities, days and months.
PROPER_WORDS = frozenset({"english", "american", "chinese", "japanese", "korean", "french",
                          "spanish", "italian", "german", "indian", "african", "european",
                          "asian", "british", "canadian", "mexican", "brazilian", "russian",
                          "arabic", "thai", "vietnamese", "indonesian", "turkish", "greek",
                          "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                          "sunday", "january", "february", "april", "june", "july", "august",
                          "september", "october", "november", "december"})  # fmt: skip
# Function words that are never capitalised inside a sentence (not "I", names or titles).
LOWER_CASE_WORDS = frozenset({"the", "a", "an", "when", "if", "and", "but", "or", "because",
                              "so", "that", "this", "these", "those", "it", "he", "she", "we",
                              "they", "you", "my", "his", "her", "our", "their", "your", "is",
                              "are", "was", "were", "in", "on", "at", "for", "to", "of", "with",
                              "from", "by", "not", "as", "there", "what", "which", "who", "how",
                              "why", "then", "also", "although", "though", "while"})  # fmt: skip


def _number_agreement(tokens: list[str], i: int, form: str) -> bool:
    """Whether a determiner just before word ``i`` (or before it and one adjective) asks for the
    number ``form`` has: "many subject" -> "subjects", "this animals" -> "animal"."""
    plural = form.endswith("s")
    # Both must be nouns; "This casts doubt", "one decides" are verbs after a pronoun.
    if not (_tags(form) & ({"NNS"} if plural else {"NN"})) or (
        not plural and "VBZ" in _tags(tokens[i].lower())
    ):
        return False
    # An adjective before a noun ("several human processes") is not the noun.
    following = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
    if _tags(tokens[i].lower()) & ADJECTIVE and _tags(following) & {"NN", "NNS"}:
        return False
    for back in (1, 2):
        if i - back < 0:
            return False
        det = tokens[i - back].lower()
        if det in (PLURAL_DETERMINERS if plural else SINGULAR_DETERMINERS) or (
            plural and det.isdigit() and det != "1"
        ):
            return True
        # Only an adjective may stand between ("many old house"; not "a few", "a guide").
        if det in PLURAL_DETERMINERS or det in SINGULAR_DETERMINERS or not _tags(det) & ADJECTIVE:
            return False
    return False


def _double_comparative(word: str, following: str) -> bool:
    """Whether ``word`` is "more" before a comparative or "most" before a superlative ("more
    easier", "most worst"); not before a word that is also a noun or a verb ("more number")."""
    if word not in ("more", "most"):
        return False
    irregular, ending, tags = (
        (("better", "worse"), "er", {"JJR", "RBR"})
        if word == "more"
        else (("best", "worst"), "est", {"JJS", "RBS"})
    )
    found = _tags(following)
    return following in irregular or (
        following.endswith(ending) and bool(found & tags) and not found & {"NN", "NNS", "VB"}
    )


def _is_tense_change(word: str, form: str) -> bool:
    """A finite verb moved between the past and the -s present ("ensures" <-> "ensured")."""
    past, present = {"VBD"}, {"VBZ"}
    a, b = _tags(word), _tags(form)
    return bool((a & past and b & present) or (a & present and b & past))


def _subject_agreement(tokens: list[str], i: int, form: str) -> bool:
    """Whether the pronoun just before verb ``i`` (or before it and an adverb) asks for
    ``form``: "he enjoy" -> "enjoys", "they has" -> "have", "we was" -> "were"."""
    word = tokens[i].lower()
    if _tags(word) & {"JJ", "RB"}:  # "He last chose"
        return False
    if (word, form) in (("was", "were"), ("were", "was")):
        singular = form == "was"
    elif _tags(word) & {"VB", "VBP"} and "VBZ" in _tags(form):
        singular = True
    elif "VBZ" in _tags(word) and _tags(form) & {"VBP"}:
        singular = False
    else:
        return False
    for back in (1, 2):
        if i - back < 0:
            return False
        subject = tokens[i - back].lower()
        wanted = SINGULAR_SUBJECTS if singular else PLURAL_SUBJECTS
        if subject in wanted and (form != "was" or subject != "you"):
            # Not an object or a question: "make it work", "will it take".
            return i - back == 0 or tokens[i - back - 1].lower() not in NOT_A_SUBJECT_AFTER
        if _tags(subject) != {"RB"}:  # only an adverb may stand between ("he usually bring")
            return False
    return False


def _needs_lower_case(tokens: list[str], i: int) -> bool:
    """A function word written with a capital inside a sentence ("For example, When I ...")."""
    token = tokens[i]
    return (
        i > 0
        and token[:1].isupper()
        and token[1:].islower()
        and token.lower() in LOWER_CASE_WORDS
        and tokens[i - 1] not in (*SENTENCE_END, ":", '"', "``", "''", "'", "(")
    )


def _is_word(token: str) -> bool:
    return any(c.isalnum() for c in token)


@cache
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
