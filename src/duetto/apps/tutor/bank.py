"""The graded sentence bank and the choice of the next practice sentence.

The next sentence depends on the learner's recent attempts: harder when accuracy, speech rate
and pauses are all good, easier when they struggle, and aimed at their weakest phones when
they make mistakes.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from duetto.apps.tutor import lexicon
from duetto.apps.tutor.progress import Attempt

BANK = Path(__file__).parent / "data" / "sentences.txt"
LEVELS = (1, 2, 3, 4, 5)
RECENT = 3  # attempts that decide the next level
# Thresholds on the recent attempts (0-10 scores; words per minute; pauses per attempt).
# 110 wpm is a relaxed but fluent reading pace for learners; one pause per sentence is normal.
LEVEL_UP = {"total": 8.0, "words_per_minute": 110.0, "pause_count": 1.0}
LEVEL_DOWN_TOTAL = 5.5
TARGET_WEAK_BELOW = 7.0  # below this total, the next sentence targets weak phones
WEAK_PHONE_BELOW = 1.5  # a phone scored under this (0-2) counts as an error
NO_REPEAT = 8  # sentences not repeated within this many attempts


@dataclass(frozen=True)
class Sentence:
    text: str
    level: int
    phones: frozenset[str]


@cache
def load_bank(path: str | None = None) -> tuple[Sentence, ...]:
    out = []
    for line in Path(path or BANK).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        level, _, text = line.partition("\t")
        prons = lexicon.pronounce(lexicon.words_of(text))
        out.append(
            Sentence(text.strip(), int(level), frozenset(p for w in prons for p in w.phones))
        )
    return tuple(out)


def weak_phones(attempts: list[Attempt], n: int = 3, window: int = 10) -> list[str]:
    """The phones with the highest error rate over the last ``window`` attempts (at least twice seen)."""
    seen: dict[str, list[float]] = defaultdict(list)
    for attempt in attempts[-window:]:
        for word in attempt.assessment.get("words", []):
            for phone in word.get("phones", []):
                seen[phone["expected"]].append(
                    float(phone.get("label", 2 if phone["score"] >= WEAK_PHONE_BELOW else 0) < 2)
                )
    rates = {p: sum(v) / len(v) for p, v in seen.items() if len(v) >= 2 and sum(v) > 0}
    return [p for p, _ in sorted(rates.items(), key=lambda kv: -kv[1])[:n]]


def next_level(attempts: list[Attempt], start: int = 1) -> int:
    """Level for the next sentence, from the last attempts at the current level."""
    if not attempts:
        return start
    level = attempts[-1].level
    recent = [a for a in attempts[-RECENT:] if a.level == level]
    if len(recent) < RECENT:
        recent_total = attempts[-1].total
        return max(level - 1, LEVELS[0]) if recent_total < LEVEL_DOWN_TOTAL else level
    mean = lambda key: sum(getattr(a, key) for a in recent) / len(recent)  # noqa: E731
    if (mean("total") >= LEVEL_UP["total"] and mean("words_per_minute") >= LEVEL_UP["words_per_minute"]
            and mean("pause_count") <= LEVEL_UP["pause_count"]):  # fmt: skip
        return min(level + 1, LEVELS[-1])
    if mean("total") < LEVEL_DOWN_TOTAL:
        return max(level - 1, LEVELS[0])
    return level


def choose(attempts: list[Attempt], rng: random.Random | None = None, start: int = 1) -> Sentence:
    """The next sentence for a learner with these ``attempts`` (oldest first)."""
    rng = rng or random.Random()
    bank = load_bank()
    level = next_level(attempts, start)
    recent = {a.sentence for a in attempts[-NO_REPEAT:]}
    pool = [s for s in bank if s.level == level and s.text not in recent] or [
        s for s in bank if s.level == level
    ]
    if attempts and attempts[-1].total < TARGET_WEAK_BELOW:
        weak = set(weak_phones(attempts))
        if weak:
            near = [s for s in bank if abs(s.level - level) <= 1 and s.text not in recent] or pool
            best = max(len(weak & s.phones) for s in near)
            if best:
                pool = [s for s in near if len(weak & s.phones) == best]
    return rng.choice(pool)
