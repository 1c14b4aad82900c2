"""Find and redact personal data in transcripts: cards, bank details, phones, e-mails, digits.

Rules, not a model: every detector is a pattern plus a check that rules out look-alikes.

- cards: 13-19 digits that pass the Luhn checksum (or that follow the word "card");
- IBANs: country code, check digits and BBAN whose ISO 7064 mod-97 remainder is 1;
- sort codes: ``NN-NN-NN`` (or six digits after "sort code");
- account numbers: eight digits (the UK form) or 6-12 digits after "account";
- phone numbers: ``+`` and 10-15 digits, a UK ``0`` number of 10-11 digits, the US 3-3-4 form;
- e-mail addresses, written (``a@b.com``) or spoken (``john dot smith at gmail dot com``);
- spoken digit sequences ("four five six seven ..."), classified like written ones.

Dates (``12/05/2024``, ``2024-05-12``), amounts (``£1,250.00``), times (``10:30``), decimals and
percentages are recognised first and never redacted.

Usage::

    >>> redact("my card is 4111 1111 1111 1111")
    'my card is [CARD]'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CARD = "CARD"
IBAN = "IBAN"
SORT_CODE = "SORT_CODE"
ACCOUNT = "ACCOUNT"
PHONE = "PHONE"
EMAIL = "EMAIL"
DIGITS = "DIGITS"
KINDS = (CARD, IBAN, SORT_CODE, ACCOUNT, PHONE, EMAIL, DIGITS)

# Spoken runs shorter than this are ordinary numbers ("two or three", "one one"); four digits
# is the shortest secret people read out (a PIN, the last four digits of a card).
MIN_SPOKEN_DIGITS = 4
# Written digit runs of this length or more are identifiers of some kind even without a keyword
# (order references, customer numbers); shorter ones are usually quantities or years.
MIN_UNLABELLED_DIGITS = 9
# How far back (characters) a keyword such as "account" or "sort code" still labels a number.
CONTEXT_CHARS = 40

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "nil": "0",
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_REPEAT_WORDS = {"double": 2, "triple": 3}

# ISO 13616 IBAN lengths per country (the registry's published values).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


@dataclass(frozen=True)
class Span:
    """One piece of personal data: ``text[start:end]`` is of type ``kind`` (e.g. ``CARD``)."""

    start: int
    end: int
    kind: str
    text: str


def redact(text: str) -> str:
    """``text`` with every piece of personal data replaced by its type tag, e.g. ``[CARD]``."""
    out, pos = [], 0
    for span in find_pii(text):
        out.append(text[pos : span.start])
        out.append(f"[{span.kind}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def find_pii(text: str) -> list[Span]:
    """Every piece of personal data in ``text``, in order, not overlapping."""
    if not isinstance(text, str):
        raise TypeError(f"find_pii() takes a str, not {type(text).__name__}")
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, kind: str) -> None:
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        spans.append(Span(start, end, kind, text[start:end]))

    for start, end in _emails(text):
        add(start, end, EMAIL)
    for start, end in _ibans(text):
        add(start, end, IBAN)
    protected = [(m.start(), m.end()) for m in _LOOKALIKE.finditer(text)]
    taken.extend(protected)
    for run in _number_runs(text):
        kind = _classify(text, run)
        if kind:
            add(run.start, run.end, kind)
    return sorted(spans, key=lambda s: s.start)


# --- e-mail -------------------------------------------------------------------------------------

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_SPOKEN_EMAIL = re.compile(
    r"\b[a-z0-9]+(?:\s+(?:dot|underscore|dash)\s+[a-z0-9]+)*\s+at\s+[a-z0-9]+"
    r"(?:\s+dot\s+[a-z0-9]+)*\s+dot\s+(?:com|org|net|edu|gov|io|co|uk|de|fr|info|biz)\b",
    re.IGNORECASE,
)


def _emails(text: str) -> list[tuple[int, int]]:
    found = [(m.start(), m.end()) for m in _EMAIL.finditer(text)]
    found += [(m.start(), m.end()) for m in _SPOKEN_EMAIL.finditer(text)]
    return found


# --- IBAN ---------------------------------------------------------------------------------------

_IBAN_CANDIDATE = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){10,32}")


def iban_valid(iban: str) -> bool:
    """True when ``iban`` (spaces allowed) has a known length and a mod-97 remainder of 1."""
    compact = iban.replace(" ", "").upper()
    if len(compact) != _IBAN_LENGTHS.get(compact[:2], -1) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ibans(text: str) -> list[tuple[int, int]]:
    found = []
    for m in _IBAN_CANDIDATE.finditer(text):
        length = _IBAN_LENGTHS.get(m.group()[:2].upper())
        if length is None:
            continue
        # Walk the candidate until it holds exactly `length` characters (it may run on).
        count, end = 0, m.start()
        while end < m.end() and count < length:
            count += text[end] != " "
            end += 1
        if (
            count == length
            and iban_valid(text[m.start() : end])
            and not text[end : end + 1].isalnum()
        ):
            found.append((m.start(), end))
    return found


# --- look-alikes that are never redacted ------------------------------------------------------------

_LOOKALIKE = re.compile(
    r"""
    [£$€¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:k|m|bn|million|billion))?   # amounts with a currency sign
  | \b\d[\d,]*(?:\.\d+)?\s?(?:pounds|dollars|euros|quid|pence|p|gbp|usd|eur|%|percent)\b
  | \b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b                       # 1,250,000 and 1,250.50
  | \b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b                      # ISO dates
  | \b\d{1,2}/\d{1,2}/\d{2,4}\b                            # 12/05/2024, 12/05/24
  | \b\d{1,2}\.\d{1,2}\.\d{2,4}\b                          # 12.05.2024
  | \b(?:0?[1-9]|[12]\d|3[01])-(?:0?[1-9]|1[0-2])-\d{4}\b  # 12-05-2024
  | \b\d{1,2}:\d{2}(?::\d{2})?\b                           # 10:30, 10:30:15
  | \b\d+\.\d+\b                                           # decimals, version numbers
    """,
    re.VERBOSE | re.IGNORECASE,
)


# --- digit runs, written and spoken ---------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    start: int
    end: int
    digits: str
    spoken: bool
    groups: tuple[int, ...]  # digit count of each written group, e.g. (2, 2, 2) for 12-34-56


_TOKEN = re.compile(r"\+?\(?\d+\)?|[A-Za-z]+")
# What may stand between two parts of one number: spaces or a hyphen; between spoken digits also
# a comma ("four, five, six", as ASR writes a read-out number). Commas between written numbers
# are lists ("2019, 2020"), not one number.
_JOINER = re.compile(r"^[ \t]*(?:[-–][ \t]*)?$")
_SPOKEN_JOINER = re.compile(r"^[ \t]*[-–,]?[ \t]*$")


def _number_runs(text: str) -> list[_Run]:
    tokens = []  # (start, end, digits, spoken)
    for m in _TOKEN.finditer(text):
        word = m.group()
        if word[0].isalpha():
            low = word.lower()
            if low in _DIGIT_WORDS:
                tokens.append((m.start(), m.end(), _DIGIT_WORDS[low], True))
            elif low in _REPEAT_WORDS:
                tokens.append((m.start(), m.end(), "*" + str(_REPEAT_WORDS[low]), True))
            else:
                tokens.append((m.start(), m.end(), None, False))
        else:
            tokens.append((m.start(), m.end(), re.sub(r"\D", "", word), False))
    runs, current = [], []
    for tok in tokens + [(len(text), len(text), None, False)]:
        gap = text[current[-1][1] : tok[0]] if current else ""
        joiner = _SPOKEN_JOINER if current and current[-1][3] and tok[3] else _JOINER
        joinable = bool(current) and joiner.match(gap) is not None
        if tok[2] is not None and (not current or joinable):
            current.append(tok)
            continue
        if current:
            runs.extend(_finish_run(text, current))
        current = [tok] if tok[2] is not None else []
    return runs


def _finish_run(text: str, tokens: list) -> list[_Run]:
    # Repeat words only count in front of a digit ("double five"); a trailing one is dropped.
    while tokens and tokens[-1][2].startswith("*"):
        tokens = tokens[:-1]
    while (
        tokens and tokens[0][2] == "0" and text[tokens[0][0] : tokens[0][1]].lower() in ("o", "oh")
    ):
        if len(tokens) > 1 and tokens[1][2].isdigit():
            break  # "oh seven seven ..." in a phone number is a zero
        tokens = tokens[1:]
    if not tokens:
        return []
    digits, groups, repeat, spoken = [], [], 1, False
    for _, _, value, is_word in tokens:
        spoken |= is_word
        if value.startswith("*"):
            repeat = int(value[1:])
            continue
        digits.append(value * repeat)
        groups.append(len(value) * repeat)
        repeat = 1
    start, end = tokens[0][0], tokens[-1][1]
    return [_Run(start, end, "".join(digits), spoken, tuple(groups))]


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum used by payment cards."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_KEYWORDS = (
    (re.compile(r"sort[\s-]*code", re.I), SORT_CODE),
    (re.compile(r"\b(?:account|acct|a/c)\b", re.I), ACCOUNT),
    (re.compile(r"\b(?:card|visa|mastercard|amex|debit|credit)\b", re.I), CARD),
    (
        re.compile(
            r"\b(?:phone|mobile|cell|call|ring|tel|telephone|landline|text|whatsapp)\b", re.I
        ),
        PHONE,
    ),
    (
        re.compile(
            r"\b(?:pin|passcode|password|cvv|cvc|security code|(?<!sort )(?<!sort-)code)\b", re.I
        ),
        DIGITS,
    ),
)


def _context_kind(text: str, start: int) -> str | None:
    """The type named by the keyword nearest before ``start`` (within :data:`CONTEXT_CHARS`)."""
    window_start = max(0, start - CONTEXT_CHARS)
    window = text[window_start:start]
    best, best_pos = None, -1
    for pattern, kind in _KEYWORDS:
        for m in pattern.finditer(window):
            if m.start() > best_pos:
                best, best_pos = kind, m.start()
    return best


def _classify(text: str, run: _Run) -> str | None:
    d, n = run.digits, len(run.digits)
    raw = text[run.start : run.end]
    context = _context_kind(text, run.start)
    if 13 <= n <= 19 and (luhn_valid(d) or context == CARD):
        return CARD
    if n == 6 and (context == SORT_CODE or (run.groups == (2, 2, 2) and "-" in raw)):
        return SORT_CODE
    if context == ACCOUNT and 6 <= n <= 12:
        return ACCOUNT
    if raw.startswith("+") and 10 <= n <= 15:
        return PHONE
    if d.startswith("0") and n in (10, 11) and (context in (PHONE, None) or run.spoken):
        return PHONE
    if n == 10 and (run.groups == (3, 3, 4) or raw.startswith("(")):
        return PHONE
    if context == PHONE and 7 <= n <= 15:
        return PHONE
    if n == 6 and run.groups == (2, 2, 2) and not run.spoken:
        return SORT_CODE
    if n == 8 and not run.spoken:
        return ACCOUNT
    if context == DIGITS and n >= 3:
        return DIGITS
    if run.spoken and n >= MIN_SPOKEN_DIGITS:
        return DIGITS
    if n >= MIN_UNLABELLED_DIGITS:
        return DIGITS
    return None
