"""Expected phones of a reference text: lexicon first, espeak-ng for unknown words, rules last.

Lookup order for each word: a user lexicon (e.g. speechocean762's ``lexicon.txt``), the CMU
dictionary that ships with PocketSphinx, espeak-ng's phonemizer (GPL, only with the ``piper``
extra; see :mod:`duetto.apps.tutor.espeak_phones`), and finally simple letter-to-sound rules,
so no word ever stops scoring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from duetto.apps.tutor.align import PHONES
from duetto.errors import MissingExtraError

VOWEL_PHONES = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
_ONES = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN".split()
_TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()
# Letter-to-sound fallback: longest spellings first. Crude, but only for words no lexicon and
# no phonemizer knows; their phones are then marked as guessed.
_RULES = (
    ("tch", "CH"), ("sch", "S K"), ("igh", "AY"), ("ough", "AO"), ("tion", "SH AH N"),
    ("ph", "F"), ("sh", "SH"), ("ch", "CH"), ("th", "TH"), ("ng", "NG"), ("ck", "K"), ("wh", "W"),
    ("qu", "K W"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"), ("ow", "OW"), ("ai", "EY"),
    ("ay", "EY"), ("oi", "OY"), ("oy", "OY"), ("au", "AO"), ("aw", "AO"), ("er", "ER"), ("ir", "ER"),
    ("ur", "ER"), ("ar", "AA R"), ("or", "AO R"),
    ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"), ("g", "G"), ("h", "HH"),
    ("i", "IH"), ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"), ("o", "AA"), ("p", "P"),
    ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"), ("u", "AH"), ("v", "V"), ("w", "W"), ("x", "K S"),
    ("y", "Y"), ("z", "Z"),
)  # fmt: skip


@dataclass(frozen=True)
class Pronunciation:
    word: str  # as written in the reference, normalised to upper case
    phones: tuple[str, ...]  # acoustic-model phones (ARPAbet, no stress)
    stressed: tuple[int, ...]  # indexes of phones carrying primary stress (may be empty)
    source: str  # "lexicon", "cmudict", "espeak" or "rules"


def words_of(text: str) -> list[str]:
    """Reference words: upper case, digits spelled out, punctuation dropped."""
    out = []
    for token in re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+", text):
        if token.isdigit():
            out.extend(
                number_words(int(token)) if len(token) <= 3 else [_ONES[int(d)] for d in token]
            )
        else:
            word = token.upper().strip("'")
            if word:
                out.append(word)
    return out


def number_words(n: int) -> list[str]:
    """0-999 in words ("TWENTY", "ONE")."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    rest = number_words(n % 100) if n % 100 else []
    return [_ONES[n // 100], "HUNDRED"] + rest


@cache
def _read(path: str) -> dict[str, tuple[str, ...]]:
    """A CMU-style lexicon file: ``WORD PH ON ES`` per line; first pronunciation wins."""
    out: dict[str, tuple[str, ...]] = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        word = re.sub(r"\(\d+\)$", "", parts[0]).upper()
        out.setdefault(word, tuple(parts[1:]))
    return out


@cache
def _cmudict_path() -> str:
    try:
        import pocketsphinx
    except ImportError:
        raise MissingExtraError("pronunciation scoring (PocketSphinx)", "tutor") from None
    return pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")


def pronounce(words: list[str], lexicon: str | Path | None = None) -> list[Pronunciation]:
    """The expected pronunciation of each word (never raises for an unknown word)."""
    user = _read(str(lexicon)) if lexicon else {}
    cmu = _read(_cmudict_path())
    out = []
    for word in words:
        if word in user:
            out.append(_from_arpabet(word, user[word], "lexicon"))
        elif word in cmu:
            out.append(_from_arpabet(word, cmu[word], "cmudict"))
        else:
            out.append(_guess(word))
    return out


def _from_arpabet(word: str, phones: tuple[str, ...], source: str) -> Pronunciation:
    # Corpus lexicons add phones of their own; keep those the acoustic model knows.
    plain = [re.sub(r"\d", "", p).upper() for p in phones]
    keep = [i for i, p in enumerate(plain) if p in PHONES]
    stressed = tuple(k for k, i in enumerate(keep) if phones[i].endswith("1"))
    return Pronunciation(word, tuple(plain[i] for i in keep), stressed, source)


def _guess(word: str) -> Pronunciation:
    try:
        from duetto.apps.tutor.espeak_phones import arpabet

        phones = arpabet(word)
        if phones:
            return Pronunciation(
                word, tuple(p.rstrip("1") for p in phones), _stress(phones), "espeak"
            )
    except MissingExtraError:
        pass
    return Pronunciation(word, tuple(letter_to_sound(word)), (), "rules")


def _stress(phones: list[str]) -> tuple[int, ...]:
    return tuple(i for i, p in enumerate(phones) if p.endswith("1"))


def letter_to_sound(word: str) -> list[str]:
    """Crude spelling-to-phones rules, the last resort for words nothing else knows."""
    text = re.sub(r"[^a-z]", "", word.lower())
    if len(text) > 2 and text.endswith("e") and text[-2] not in "aeiou":
        text = text[:-1]  # silent final e
    phones: list[str] = []
    i = 0
    while i < len(text):
        for spelling, sound in _RULES:
            if text.startswith(spelling, i):
                if not (phones and phones[-1] == sound.split()[0] and len(spelling) == 1):
                    phones.extend(sound.split())
                i += len(spelling)
                break
        else:
            i += 1
    return phones or ["AH"]
