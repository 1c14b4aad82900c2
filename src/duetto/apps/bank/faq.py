"""The demo bank's small knowledge base: one vetted answer per BANKING77 intent.

The agent answers policy questions only with these texts; it never composes a factual answer.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

FAQ_PATH = Path(__file__).parent / "data" / "faq.json"


@lru_cache(maxsize=1)
def load_faq(path: Path = FAQ_PATH) -> dict[str, str]:
    """``{intent: answer}`` for every BANKING77 intent."""
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def answer(intent: str) -> str | None:
    return load_faq().get(intent)
