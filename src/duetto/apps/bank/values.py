"""Turn what a caller says into values: amounts, dates, digit strings, yes/no.

Speech recognisers write numbers either way ("60", "sixty", "sixty pounds fifty"), so every
parser here accepts digits and number words. Parsers return ``None`` when nothing fits; they
never guess.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

_UNITS = {
    "zero": 0, "oh": 0, "a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1_000, "k": 1_000, "grand": 1_000, "million": 1_000_000}
_NUMBER_WORD = "|".join(
    sorted(set(_UNITS) | set(_SCALES) | {"and", "point"}, key=len, reverse=True)
)
_NUMBER_WORDS_RE = re.compile(
    rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*\b", re.IGNORECASE
)
_DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "to": "2", "too": "2",
                "for": "4", "won": "1", "ate": "8"}  # fmt: skip

CURRENCY_WORDS = r"(?:pounds?|quid|gbp|sterling|£)"
PENCE_WORDS = r"(?:pence|p|pee)"


def words_to_number(text: str) -> float | None:
    """``"one hundred and twenty five"`` -> 125; ``"twelve point five"`` -> 12.5; else None."""
    tokens = [t for t in re.split(r"[\s-]+", text.lower().strip()) if t and t != "and"]
    if not tokens or tokens == ["a"]:
        return None
    total, current, fraction, in_fraction = 0, 0, "", False
    for token in tokens:
        if token == "point":
            in_fraction = True
        elif in_fraction:
            if token not in _UNITS or _UNITS[token] > 9:
                return None
            fraction += str(_UNITS[token])
        elif token in _UNITS:
            current += _UNITS[token]
        elif token in _SCALES:
            scale = _SCALES[token]
            if scale == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * scale
                current = 0
        else:
            return None
    value = float(total + current)
    if fraction:
        value += float("0." + fraction)
    return value


def normalise_numbers(text: str) -> str:
    """Number words replaced by digits: ``"sixty five pounds"`` -> ``"65 pounds"``."""

    def repl(match: re.Match[str]) -> str:
        words = match.group(0)
        if words.lower() in ("a", "and", "point"):
            return words
        value = words_to_number(words)
        if value is None:
            return words
        return f"{value:g}" if value != int(value) else str(int(value))

    return _NUMBER_WORDS_RE.sub(repl, text)


_AMOUNT_PATTERNS = (
    # £60, £1,250.50, £ 60
    re.compile(r"£\s?(?P<pounds>\d[\d,]*)(?:\.(?P<pence>\d{1,2}))?"),
    # 60 pounds 50, 60 pounds and 50 pence, 60.50 pounds, 60 quid
    re.compile(
        rf"(?P<pounds>\d[\d,]*)(?:\.(?P<pence>\d{{1,2}}))?\s*{CURRENCY_WORDS}"
        rf"(?:\s*(?:and\s*)?(?P<pence2>\d{{1,2}})(?:\s*{PENCE_WORDS})?\b)?",
        re.IGNORECASE,
    ),
    # 50 pence / 50p
    re.compile(rf"(?P<only_pence>\d{{1,2}})\s*{PENCE_WORDS}\b", re.IGNORECASE),
)
_BARE_NUMBER = re.compile(r"(?<![\d.])(?P<pounds>\d[\d,]*)(?:\.(?P<pence>\d{1,2}))?(?![\d.])")


def parse_amount(text: str, *, bare: bool = False) -> int | None:
    """An amount of money in pence, or None.

    ``bare=True`` also accepts a number with no currency word ("make it 60"): use it only when
    the dialogue is asking for an amount.
    """
    normal = normalise_numbers(text)
    for pattern in _AMOUNT_PATTERNS:
        m = pattern.search(normal)
        if m:
            if m.groupdict().get("only_pence"):
                return int(m.group("only_pence"))
            pounds = int(m.group("pounds").replace(",", ""))
            pence = m.group("pence") or m.groupdict().get("pence2") or "0"
            return pounds * 100 + int(pence.ljust(2, "0"))
    if bare:
        candidates = [m for m in _BARE_NUMBER.finditer(normal) if not _looks_like_date(normal, m)]
        if len(candidates) == 1:
            m = candidates[0]
            return int(m.group("pounds").replace(",", "")) * 100 + int(
                (m.group("pence") or "0").ljust(2, "0")
            )
    return None


def _looks_like_date(text: str, m: re.Match[str]) -> bool:
    after = text[m.end() : m.end() + 12].lower()
    before = text[max(0, m.start() - 8) : m.start()].lower()
    return bool(
        re.match(r"\s*(st|nd|rd|th|of|days?|weeks?|months?|years?)\b", after)
        or re.search(r"the\s*$", before)
    )


_WEEKDAYS = [d.lower() for d in calendar.day_name]
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS |= {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "twenty first": 21, "twenty second": 22,
    "twenty third": 23, "twenty fourth": 24, "twenty fifth": 25, "twenty sixth": 26,
    "twenty seventh": 27, "twenty eighth": 28, "twenty ninth": 29, "thirtieth": 30,
    "thirty first": 31,
}  # fmt: skip
_ORDINAL_RE = "|".join(sorted(_ORDINALS, key=len, reverse=True))


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """A single day: today, tomorrow, (next) friday, the 25th, 25 December, 2026-12-01."""
    t = text.lower()
    if m := re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", t):
        return _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if re.search(r"\b(today|now|right away|immediately|straight away)\b", t):
        return today
    if "day after tomorrow" in t:
        return today + dt.timedelta(days=2)
    if "tomorrow" in t:
        return today + dt.timedelta(days=1)
    if "yesterday" in t:
        return today - dt.timedelta(days=1)
    if m := re.search(rf"\b(next\s+|this\s+|on\s+)?({'|'.join(_WEEKDAYS)})\b", t):
        ahead = (_WEEKDAYS.index(m.group(2)) - today.weekday()) % 7
        if ahead == 0:  # "on Friday" said on a Friday means next week's
            ahead = 7
        return today + dt.timedelta(days=ahead)
    day, month = _day_and_month(t)
    if day is None:
        return None
    if month is None:
        month = today.month if day >= today.day else today.month % 12 + 1
    year = today.year if (month, day) >= (today.month, today.day) else today.year + 1
    return _safe_date(year, month, day)


def _day_and_month(t: str) -> tuple[int | None, int | None]:
    months = "|".join(sorted(_MONTHS, key=len, reverse=True))
    day_re = rf"(\d{{1,2}})(?:st|nd|rd|th)?|{_ORDINAL_RE}"
    if m := re.search(rf"\b(?:the\s+)?({day_re})\s+(?:of\s+)?({months})\b", t):
        return _day_value(m.group(1)), _MONTHS[m.group(m.lastindex)]
    if m := re.search(rf"\b({months})\s+(?:the\s+)?({day_re})\b", t):
        return _day_value(m.group(2)), _MONTHS[m.group(1)]
    if m := re.search(rf"\bthe\s+({day_re})\b", t):
        return _day_value(m.group(1)), None
    return None, None


def _day_value(token: str) -> int | None:
    token = token.strip()
    if token in _ORDINALS:
        return _ORDINALS[token]
    m = re.match(r"\d{1,2}", token)
    return int(m.group(0)) if m else None


def _safe_date(year: int, month: int, day: int | None) -> dt.date | None:
    try:
        return dt.date(year, month, day or 0)
    except (TypeError, ValueError):
        return None


def parse_period(text: str, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """A span of days for history questions: last week, this month, last 30 days, yesterday."""
    t = normalise_numbers(text.lower())
    if "yesterday" in t:
        d = today - dt.timedelta(days=1)
        return d, d
    if re.search(r"\btoday\b", t):
        return today, today
    if m := re.search(r"\b(?:last|past|previous)\s+(\d+)\s+(day|week|month)s?\b", t):
        n, unit = int(m.group(1)), m.group(2)
        days = n * {"day": 1, "week": 7, "month": 30}[unit]
        return today - dt.timedelta(days=days), today
    if re.search(r"\blast week\b|\bpast week\b|\bprevious week\b", t):
        return today - dt.timedelta(days=7), today
    if re.search(r"\bthis week\b", t):
        return today - dt.timedelta(days=today.weekday()), today
    if re.search(r"\bthis month\b", t):
        return today.replace(day=1), today
    if re.search(r"\blast month\b|\bpast month\b|\bprevious month\b", t):
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    return None


def parse_digits(text: str) -> str:
    """The digits in ``text``, spoken or written: ``"one oh two 4"`` -> ``"1024"``."""
    out = []
    for token in re.findall(r"\d+|[a-z]+", text.lower()):
        if token.isdigit():
            out.append(token)
        elif token in _DIGIT_WORDS and token not in ("to", "too", "for", "won", "ate", "o"):
            out.append(_DIGIT_WORDS[token])
        elif token in ("double", "triple"):
            out.append(token)
    digits = []
    repeat = 1
    for token in out:
        if token == "double":
            repeat = 2
        elif token == "triple":
            repeat = 3
        else:
            digits.append(token[0] * repeat + token[1:])
            repeat = 1
    return "".join(digits)


_YES = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|correct|that'?s right|that is right|confirm(?:ed)?|go ahead|"
    r"do it|please do|affirmative|absolutely|definitely|proceed)\b",
    re.IGNORECASE,
)
_NO = re.compile(
    r"^\s*(?:no|nope|nah|not really|don'?t|do not|negative|wrong|that'?s wrong|incorrect)\b",
    re.IGNORECASE,
)


def is_yes(text: str) -> bool:
    """An explicit yes at the start of the answer, and no "no"/"cancel"/"but" after it."""
    t = text.strip().lower()
    return bool(_YES.match(t)) and not re.search(
        r"\b(no|not|don'?t|cancel|stop|wait|but|instead)\b", t
    )


def is_no(text: str) -> bool:
    return bool(_NO.match(text.strip()))
