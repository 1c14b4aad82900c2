"""English text normalization for word error rate, and the WER itself.

ASR output and reference prompts differ in ways that are not recognition errors: case,
punctuation, curly apostrophes, hyphens, and above all numbers ("2, 6, 4, 8." against
"TWO SIX FOUR EIGHT", "25" against "twenty-five"). :func:`normalize_text` maps both sides to one
canonical form so that only real word errors remain:

- lower case; curly quotes to ``'``; ``&`` to "and", ``%`` to "percent";
- punctuation removed (apostrophes inside words kept: "it's", "o'clock"), hyphens split words;
- every number, written with digits or words, becomes its digits spoken one by one
  ("twenty five" -> "two five", "2648" -> "two six four eight"), so a digit string and its
  spoken form compare equal however the recognizer chose to write it (the price: "ten" and
  "one zero" also compare equal, a confusion no recognizer makes in practice);
- ordinals written with digits become words ("1st" -> "first").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_UNITS = {w: i for i, w in enumerate(_DIGIT_WORDS)} | {"oh": 0}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {
    1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh",
    8: "eighth", 9: "ninth", 10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth",
    14: "fourteenth", 15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth",
    19: "nineteenth", 20: "twentieth", 30: "thirtieth",
}  # fmt: skip
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at "}
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_ORDINAL_DIGITS = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")
_EDGE_APOSTROPHES = re.compile(r"(^|\s)'+|'+(?=\s|$)")


def normalize_text(text: str) -> str:
    """Canonical lower-case words of ``text`` for WER (see the module docstring)."""
    s = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    for symbol, word in _SYMBOLS.items():
        s = s.replace(symbol, word)
    s = _THOUSANDS_COMMA.sub("", s)
    s = _DECIMAL_POINT.sub(" point ", s)
    s = _ORDINAL_DIGITS.sub(_ordinal_word, s)
    s = s.replace("-", " ")
    s = _NOT_WORD.sub(" ", s)
    s = _EDGE_APOSTROPHES.sub(" ", s)
    return " ".join(_spell_numbers(s.split()))


def _ordinal_word(match: re.Match) -> str:
    n = int(match.group(1))
    if n in _ORDINALS:
        return f" {_ORDINALS[n]} "
    tens = n - n % 10
    if n % 10 and n < 100 and tens in _ORDINALS:
        # "21st" -> "two first" would be wrong; say the digits of the tens and the ordinal unit.
        return f" {tens} {_ORDINALS[n % 10]} "
    return f" {match.group(1)} "


def _spell_numbers(tokens: list[str]) -> list[str]:
    """Replace digit strings and spelled numbers by their digits, one word per digit."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.isdigit():
            out.extend(_DIGIT_WORDS[int(d)] for d in tok)
            i += 1
            continue
        value, used = _parse_number(tokens, i)
        if used:
            out.extend(_DIGIT_WORDS[int(d)] for d in str(value))
            i += used
        else:
            out.append(tok)
            i += 1
    return out


def _parse_number(tokens: list[str], start: int) -> tuple[int, int]:
    """The number spelled by the words at ``tokens[start:]``: (value, words used), used=0 if none.

    Single digits never combine ("two six" is two numbers); tens take one following unit
    ("twenty five"); "hundred"/"thousand"/... multiply what came before. "and" is absorbed only
    between a scale and a smaller number ("one hundred and five").
    """
    total, current, i = 0, 0, start
    last = None  # kind of the previous word: unit | teen | tens | scale
    while i < len(tokens):
        tok = tokens[i]
        if tok in _UNITS and last in (None, "tens", "scale"):
            if tok == "oh" and last is None:
                break  # "oh" alone is an interjection, not zero
            current += _UNITS[tok]
            last = "unit"
        elif tok in _TEENS and last in (None, "scale"):
            current += _TEENS[tok]
            last = "teen"
        elif tok in _TENS and last in (None, "scale"):
            current += _TENS[tok]
            last = "tens"
        elif (
            tok in _SCALES
            and last in ("unit", "teen", "tens")
            or (tok == "hundred" and last is None)
        ):
            scale = _SCALES[tok]
            if scale == 100:
                current = (current or 1) * 100
            else:
                total += (current or 1) * scale
                current = 0
            last = "scale"
        elif (
            tok == "and"
            and last == "scale"
            and i + 1 < len(tokens)
            and (tokens[i + 1] in _UNITS or tokens[i + 1] in _TEENS or tokens[i + 1] in _TENS)
        ):
            pass  # "one hundred and five"
        else:
            break
        i += 1
    used = i - start
    if used and tokens[i - 1] == "and":
        used -= 1
    return total + current, used


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference length) between two already normalized strings."""
    r, h = ref.split(), hyp.split()
    if not r:
        return len(h), 0
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1], len(r)


def wer(refs: Sequence[str], hyps: Sequence[str], normalize: bool = True) -> float:
    """Corpus word error rate: total word edits over total reference words.

    Both sides go through :func:`normalize_text` unless ``normalize`` is False. References with
    no words at all give 0.0 when the hypotheses are empty too; with words inserted the rate is
    undefined and :class:`ValueError` is raised.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors = words = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        if normalize:
            ref, hyp = normalize_text(ref), normalize_text(hyp)
        e, n = word_errors(ref, hyp)
        errors += e
        words += n
    if words == 0:
        if errors:
            raise ValueError("the references hold no words, so WER is undefined")
        return 0.0
    return errors / words
