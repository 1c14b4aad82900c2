"""Keep account numbers, card numbers and PINs out of logs.

Everything the bank agent logs goes through :func:`redact`. It masks digit runs (written as
digits or as spoken number words, with spaces or dashes between them), so a PIN said aloud
("four eight two one") is masked as well as one typed ("4821").
"""

from __future__ import annotations

import re

# Three digits is the shortest secret we handle (card security codes); amounts the caller says
# ("60 pounds", "£12.50") stay readable because their digit runs are shorter or split by a point.
MIN_SECRET_DIGITS = 3
# Long runs (account and card numbers) keep their last digits so a log can still be matched to
# a complaint, as on a bank statement; short runs (PINs, codes) are masked completely.
LONG_RUN = 8
KEEP_LAST = 4

_DIGIT_WORDS = "zero|oh|one|two|three|four|five|six|seven|eight|nine"
_TOKEN = rf"(?:\d|\b(?:{_DIGIT_WORDS})\b)"
_RUN = re.compile(rf"{_TOKEN}(?:[\s\-]*{_TOKEN})+", re.IGNORECASE)
_WORD_VALUE = {
    w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())
}
_WORD_VALUE["oh"] = "0"


def _digits(run: str) -> str:
    out = []
    for token in re.findall(rf"\d|{_DIGIT_WORDS}", run, re.IGNORECASE):
        out.append(token if token.isdigit() else _WORD_VALUE[token.lower()])
    return "".join(out)


def redact(text: str) -> str:
    """``text`` with digit runs of :data:`MIN_SECRET_DIGITS` or more masked."""

    def mask(match: re.Match[str]) -> str:
        digits = _digits(match.group(0))
        if len(digits) < MIN_SECRET_DIGITS:
            return match.group(0)
        if len(digits) >= LONG_RUN:
            return "*" * (len(digits) - KEEP_LAST) + digits[-KEEP_LAST:]
        return "*" * len(digits)

    return _RUN.sub(mask, text)


def mask_number(number: str) -> str:
    """An account or card number shown as ``****1234``."""
    digits = re.sub(r"\D", "", number)
    return "****" + digits[-KEEP_LAST:]
