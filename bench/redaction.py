"""Precision and recall of PII redaction (duetto.safety.redact) on the labelled test sentences.

The test set is tests/safety/data/pii_handwritten.txt (written by hand) plus
tests/safety/data/pii_generated.txt (made by ``--write-generated`` from templates and random,
checksum-valid values), and, reported apart, tests/safety/data/pii_holdout.txt (never used to tune). Markup: ``{KIND:text}`` is personal data that must come out as ``[KIND]``.

    .venv/bin/python bench/redaction.py            # the table
    .venv/bin/python bench/redaction.py --errors   # also every miss and false alarm
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from pathlib import Path

from duetto.safety.redact import KINDS, find_pii, iban_valid, luhn_valid

DATA = Path(__file__).resolve().parents[1] / "tests" / "safety" / "data"
FILES = ("pii_handwritten.txt", "pii_generated.txt")
# Written after the rules were tuned and never used to tune them.
HOLDOUT = ("pii_holdout.txt",)
_MARK = re.compile(r"\{([A-Z_]+):([^}]*)\}")


def parse_line(line: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Plain text and gold spans (start, end, kind) from one marked-up line."""
    text, spans, pos = [], [], 0
    length = 0
    for m in _MARK.finditer(line):
        before = line[pos : m.start()]
        text.append(before)
        length += len(before)
        spans.append((length, length + len(m.group(2)), m.group(1)))
        text.append(m.group(2))
        length += len(m.group(2))
        pos = m.end()
    text.append(line[pos:])
    return "".join(text), spans


def load_cases(files=FILES) -> list[tuple[str, list[tuple[int, int, str]]]]:
    cases = []
    for name in files:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                cases.append(parse_line(line))
    return cases


def score(cases) -> dict:
    """Span-level counts: a prediction is right when it overlaps a gold span of the same kind."""
    tp, fp, fn = Counter(), Counter(), Counter()
    typed_miss = 0
    errors = []
    clean_total = clean_kept = 0
    for text, gold in cases:
        pred = [(s.start, s.end, s.kind) for s in find_pii(text)]
        for g in gold:
            hit = [p for p in pred if p[0] < g[1] and g[0] < p[1]]
            if any(p[2] == g[2] for p in hit):
                tp[g[2]] += 1
            else:
                fn[g[2]] += 1
                typed_miss += bool(hit)
                errors.append(("miss" if not hit else f"as {hit[0][2]}", g[2], text))
        for p in pred:
            if not any(p[0] < g[1] and g[0] < p[1] for g in gold):
                fp[p[2]] += 1
                errors.append(("false alarm", p[2], text))
        if not gold:
            clean_total += 1
            clean_kept += not pred
    return {"tp": tp, "fp": fp, "fn": fn, "typed_miss": typed_miss, "errors": errors,
            "clean_total": clean_total, "clean_kept": clean_kept}  # fmt: skip


def print_table(result: dict, n_sentences: int) -> None:
    tp, fp, fn = result["tp"], result["fp"], result["fn"]
    print(f"{n_sentences} sentences, {sum(tp.values()) + sum(fn.values())} PII spans, "
          f"{result['clean_total']} sentences with no PII (look-alikes)")  # fmt: skip
    print(f"{'kind':<10} {'gold':>5} {'tp':>5} {'fp':>5} {'fn':>5} {'precision':>10} {'recall':>8}")
    for kind in (*KINDS, "ALL"):
        t = sum(tp.values()) if kind == "ALL" else tp[kind]
        f = sum(fp.values()) if kind == "ALL" else fp[kind]
        n = sum(fn.values()) if kind == "ALL" else fn[kind]
        prec = t / (t + f) if t + f else float("nan")
        rec = t / (t + n) if t + n else float("nan")
        print(f"{kind:<10} {t + n:>5} {t:>5} {f:>5} {n:>5} {prec:>10.3f} {rec:>8.3f}")
    print(f"look-alike sentences left untouched: {result['clean_kept']}/{result['clean_total']}")
    print(f"misses that were redacted under another tag: {result['typed_miss']}")


# --- generated sentences ---------------------------------------------------------------------------

_WORDS = "zero one two three four five six seven eight nine".split()


def _spoken(digits: str, rng: random.Random) -> str:
    out, i = [], 0
    while i < len(digits):
        if i + 1 < len(digits) and digits[i] == digits[i + 1] and rng.random() < 0.7:
            out.append("double " + _WORDS[int(digits[i])])
            i += 2
            continue
        word = _WORDS[int(digits[i])]
        out.append("oh" if word == "zero" and rng.random() < 0.5 else word)
        i += 1
    return " ".join(out)


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16), ("4", 13)]
    )
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


def _group(digits: str, sizes, sep: str) -> str:
    parts, pos = [], 0
    for size in sizes:
        parts.append(digits[pos : pos + size])
        pos += size
    return sep.join(p for p in parts if p)


def _iban(rng: random.Random) -> str:
    country, bban = rng.choice([
        ("GB", "NWBK" + "".join(rng.choice("0123456789") for _ in range(14))),
        ("DE", "".join(rng.choice("0123456789") for _ in range(18))),
        ("FR", "".join(rng.choice("0123456789") for _ in range(23))),
        ("ES", "".join(rng.choice("0123456789") for _ in range(20))),
        ("NL", "RABO" + "".join(rng.choice("0123456789") for _ in range(10))),
    ])  # fmt: skip
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    assert iban_valid(iban)
    return _group(iban, [4] * 9, " ") if rng.random() < 0.5 else iban


def _digits(rng: random.Random, n: int, first: str = "0123456789") -> str:
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def _phone(rng: random.Random) -> str:
    style = rng.randrange(5)
    if style == 0:
        return f"07700 {_digits(rng, 6)}"
    if style == 1:
        return f"+44 7{_digits(rng, 3)} {_digits(rng, 6)}"
    if style == 2:
        return f"({_digits(rng, 3, '23456789')}) {_digits(rng, 3)}-{_digits(rng, 4)}"
    if style == 3:
        return f"{_digits(rng, 3, '23456789')}-{_digits(rng, 3)}-{_digits(rng, 4)}"
    return f"020 {_digits(rng, 4)} {_digits(rng, 4)}"


_NAMES = ["anna", "li.wei", "tom_b", "maria.garcia", "j.smith", "priya", "olu", "kenji.sato"]
_DOMAINS = ["example.com", "mail.org", "company.co.uk", "uni.edu", "post.net"]

_POSITIVE = [
    ("CARD", lambda r: _group(_card(r), [4, 4, 4, 4], r.choice([" ", "-", ""])),
     ["My card number is {}.", "Please use {} for this payment.", "the long number on the card is {}",
      "I typed {} but it failed.", "{} is the card I want to cancel."]),
    ("CARD", lambda r: _spoken(_card(r), r),
     ["my card number is {}", "it's {} on the front", "the number is {}"]),
    ("IBAN", _iban,
     ["Please pay into {}.", "My IBAN is {} at my home bank.", "Refund to {} please.", "IBAN: {}"]),
    ("SORT_CODE", lambda r: _group(_digits(r, 6), [2, 2, 2], "-"),
     ["Sort code {}.", "the sort code is {} I think", "Use sort code {} for that branch."]),
    ("SORT_CODE", lambda r: _spoken(_digits(r, 6), r), ["my sort code is {}", "sort code {} please"]),
    ("ACCOUNT", lambda r: _digits(r, 8),
     ["My account number is {}.", "Account {} is overdrawn.", "Move it from {} to savings.",
      "The account ending in nothing, it's {}."]),
    ("ACCOUNT", lambda r: _spoken(_digits(r, 8), r), ["account number {}", "my account is {} okay"]),
    ("PHONE", _phone,
     ["Call me on {}.", "My phone number is {}.", "You can text {} any time.", "{} is my work line."]),
    ("PHONE", lambda r: _spoken("07" + _digits(r, 9), r), ["my mobile is {}", "ring me on {} tonight"]),
    ("EMAIL", lambda r: f"{r.choice(_NAMES)}@{r.choice(_DOMAINS)}",
     ["Email me at {}.", "My address is {} if you need it.", "Send the form to {}", "{} is my login."]),
    ("EMAIL", lambda r: f"{r.choice(['anna', 'tom', 'priya', 'kenji'])} at {r.choice(['gmail', 'outlook', 'yahoo'])} dot com",
     ["my email is {}", "send it to {} please"]),
    ("DIGITS", lambda r: _spoken(_digits(r, r.choice([4, 5, 6])), r),
     ["the code is {}", "my PIN is {}", "the one time passcode was {}", "it said {} on the screen"]),
]  # fmt: skip

_MONTHS = (
    "January February March April May June July August September October November December".split()
)
_LOOKALIKES = [
    lambda r: f"I was born on {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(1950, 2010)}.",
    lambda r: f"The payment left on {r.randint(2015, 2025)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}.",
    lambda r: f"It was on {r.randint(1, 28)} {r.choice(_MONTHS)} {r.randint(1990, 2025)}.",
    lambda r: f"The appointment is at {r.randint(1, 12)}:{r.choice(['00', '15', '30', '45'])}.",
    lambda r: f"I paid £{r.randint(1, 9)},{r.randint(100, 999)}.{r.randint(10, 99)} for the car.",
    lambda r: f"Can I borrow ${r.randint(1000, 90000):,}?",
    lambda r: f"The rate is {r.randint(1, 9)}.{r.randint(1, 99)}% a year.",
    lambda r: f"We spent {r.randint(20, 900)} pounds on food.",
    lambda r: f"I have had this account since {r.randint(1990, 2024)}.",
    lambda r: f"My son is {r.choice(_WORDS[1:])} and my daughter is {r.choice(_WORDS[1:])}.",
    lambda r: f"Statement for {r.choice(_MONTHS)} {r.randint(2018, 2025)}, page {r.randint(1, 12)}.",
    lambda r: f"The transfer of €{r.randint(10, 999)}.{r.randint(10, 99)} took {r.randint(2, 5)} days.",
    lambda r: f"Train at {r.randint(6, 23)}:{r.randint(0, 59):02d} from platform {r.randint(1, 14)}.",
    lambda r: f"The balance on {r.randint(1, 28)}.{r.randint(1, 12)}.{r.randint(2019, 2025)} was {r.randint(100, 9999):,} euros.",
    lambda r: f"I need {r.choice(['one', 'two', 'three'])} or {r.choice(['four', 'five', 'six'])} new cards.",
    lambda r: f"There were {r.randint(10, 99)},{r.randint(100, 999)} people at the match.",
    lambda r: f"I called at {r.randint(1, 12)} {r.choice(['am', 'pm'])} and waited {r.randint(5, 50)} minutes.",
    lambda r: f"The house cost {r.randint(150, 900)}k in {r.randint(2000, 2024)}.",
]  # fmt: skip


def write_generated(
    path: Path, n_positive: int = 120, n_lookalike: int = 100, seed: int = 7
) -> None:
    """Write the generated half of the test set (deterministic for a seed)."""
    rng = random.Random(seed)
    lines = ["# Generated by bench/redaction.py --write-generated; do not edit by hand."]
    for i in range(n_positive):
        kind, make, templates = _POSITIVE[i % len(_POSITIVE)]
        lines.append(rng.choice(templates).format("{" + kind + ":" + make(rng) + "}"))
        lines[-1] = lines[-1][0].upper() + lines[-1][1:] if rng.random() < 0.5 else lines[-1]
    for i in range(n_lookalike):
        lines.append(_LOOKALIKES[i % len(_LOOKALIKES)](rng))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="print every miss and false alarm")
    parser.add_argument("--write-generated", action="store_true", help="rewrite pii_generated.txt")
    args = parser.parse_args()
    if args.write_generated:
        write_generated(DATA / "pii_generated.txt")
    for title, files in (
        ("tuning set (hand-written + generated)", FILES),
        ("held-out set", HOLDOUT),
    ):
        cases = load_cases(files)
        result = score(cases)
        print(f"== {title}")
        print_table(result, len(cases))
        if args.errors:
            for what, kind, text in result["errors"]:
                print(f"  {what:<12} {kind:<10} {text}")
        print()


if __name__ == "__main__":
    main()
