"""Amounts, dates and digits as a speech recogniser writes them; log redaction."""

from __future__ import annotations

import datetime as dt

import pytest

from duetto.apps.bank.privacy import mask_number, redact
from duetto.apps.bank.values import (
    is_no,
    is_yes,
    parse_amount,
    parse_date,
    parse_digits,
    parse_period,
)

FRIDAY = dt.date(2026, 11, 20)


@pytest.mark.parametrize(
    ("text", "bare", "pence"),
    [
        ("send sixty pounds to Bob", False, 6_000),
        ("£1,250.50 please", False, 125_050),
        ("twelve pounds fifty", False, 1_250),
        ("one hundred and twenty quid", False, 12_000),
        ("50p", False, 50),
        ("make it 60 instead", True, 6_000),
        ("make it 60 instead", False, None),
        ("on the 25th", True, None),
        ("send it to Bob", True, None),
    ],
)
def test_amounts(text, bare, pence):
    assert parse_amount(text, bare=bare) == pence


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("today", FRIDAY),
        ("tomorrow", dt.date(2026, 11, 21)),
        ("next monday", dt.date(2026, 11, 23)),
        ("on friday", dt.date(2026, 11, 27)),
        ("on the 25th", dt.date(2026, 11, 25)),
        ("the third", dt.date(2026, 12, 3)),
        ("25th of December", dt.date(2026, 12, 25)),
        ("January the first", dt.date(2027, 1, 1)),
        ("2026-12-01", dt.date(2026, 12, 1)),
        ("the 31st of February", None),
        ("sixty pounds", None),
    ],
)
def test_dates(text, day):
    assert parse_date(text, FRIDAY) == day


def test_periods():
    assert parse_period("what did I spend at Tesco last week", FRIDAY) == (
        dt.date(2026, 11, 13),
        FRIDAY,
    )
    assert parse_period("last month", FRIDAY) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert parse_period("in the past three days", FRIDAY) == (dt.date(2026, 11, 17), FRIDAY)
    assert parse_period("at Tesco", FRIDAY) is None


def test_digits_spoken_or_written():
    assert parse_digits("one oh double seven 4") == "10774"
    assert parse_digits("it's 2048 1357") == "20481357"
    assert parse_digits("two zero four eight one three five seven") == "20481357"


def test_yes_must_be_explicit_and_unqualified():
    assert is_yes("Yes please") and is_yes("yeah go ahead")
    assert not is_yes("yes but make it 50") and not is_yes("no") and not is_yes("maybe")
    assert is_no("No, that's wrong") and not is_no("now please")


def test_redaction_masks_spoken_and_written_secrets_but_keeps_amounts():
    assert "4821" not in redact("my pin is 4821")
    assert "four eight two one" not in redact("my pin is four eight two one")
    assert redact("account 31926048") == "account ****6048"
    assert redact("send 60 pounds") == "send 60 pounds"
    assert mask_number("31926048") == "****6048"
