"""PII redaction: real PII forms are tagged, look-alikes (dates, amounts, times) are kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from duetto.safety.redact import find_pii, iban_valid, luhn_valid, redact

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_redaction", ROOT / "bench" / "redaction.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111 1111 1111 1111 thanks", "my card is [CARD] thanks"),
        ("Send it to GB29 NWBK 6016 1331 9268 19 today", "Send it to [IBAN] today"),
        ("sort code 20-00-00, account 55779911", "sort code [SORT_CODE], account [ACCOUNT]"),
        ("call (555) 123-4567 or +44 7700 900456", "call [PHONE] or [PHONE]"),
        ("mail jane.doe@example.com", "mail [EMAIL]"),
        ("it's john dot smith at gmail dot com", "it's [EMAIL]"),
        ("the code is four five six seven", "the code is [DIGITS]"),
        ("my sort code is double four oh one two three", "my sort code is [SORT_CODE]"),
    ],
)
def test_redacts_each_kind_with_its_tag(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I was born on 12/05/1987.",
        "The meeting is at 10:30 on 2024-03-14.",
        "I paid £1,250.00 and $4,500 last month.",
        "Interest went up to 5.25% in 2023.",
        "I have two or three accounts and four kids.",
        "It happened on 14-07-2022.",
    ],
)
def test_lookalikes_are_untouched(text):
    assert find_pii(text) == []
    assert redact(text) == text


def test_card_needs_luhn_without_context():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert redact("ref 4111 1111 1111 1112 is odd") == "ref [DIGITS] is odd"  # long id, not a card
    assert redact("ref 4111 1111 1111 1111 is odd") == "ref [CARD] is odd"


def test_iban_checksum():
    assert iban_valid("GB29 NWBK 6016 1331 9268 19")
    assert not iban_valid("GB28 NWBK 6016 1331 9268 19")
    assert "[IBAN]" not in redact("pay GB28 NWBK 6016 1331 9268 19 now")


def test_spans_point_into_the_text():
    text = "Card 5425233430109903, email a@b.org."
    spans = find_pii(text)
    assert [(s.kind, text[s.start : s.end]) for s in spans] == [
        ("CARD", "5425233430109903"),
        ("EMAIL", "a@b.org"),
    ]
    assert all(s.text == text[s.start : s.end] for s in spans)


def test_not_a_string_is_a_clear_error():
    with pytest.raises(TypeError, match="str"):
        find_pii(b"4111 1111 1111 1111")


@pytest.mark.parametrize("files", ["FILES", "HOLDOUT"])
def test_labelled_sets_precision_and_recall(files):
    bench = _bench()
    cases = bench.load_cases(getattr(bench, files))
    result = bench.score(cases)
    tp, fp, fn = (sum(result[k].values()) for k in ("tp", "fp", "fn"))
    assert tp / (tp + fp) >= 0.98
    assert tp / (tp + fn) >= 0.93
    assert result["clean_kept"] == result["clean_total"]  # no look-alike sentence touched


def test_test_set_is_large_enough():
    bench = _bench()
    assert len(bench.load_cases(bench.FILES + bench.HOLDOUT)) >= 200
