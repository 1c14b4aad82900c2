"""What did the caller ask? Intent (BANKING77), dialogue acts (NLU++) and slots, in one pass.

The trained heads live in ``data/nlu.npz`` next to this file; ``scripts/train_bank_nlu.py``
reproduces them from ``../shared/data/banking``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duetto.apps.bank.encoder import SentenceEncoder, shared_encoder
from duetto.apps.bank.heads import LinearHead
from duetto.apps.bank.training import predict_slots
from duetto.errors import ModelNotFoundError

WEIGHTS = Path(__file__).parent / "data" / "nlu.npz"
# A dialogue act counts when its sigmoid passes this (the threshold used in the CV report).
ACT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Slot:
    name: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Understanding:
    text: str
    intent: str  # one of the 77 BANKING77 intents
    confidence: float
    acts: frozenset[str]  # NLU++ intents above ACT_THRESHOLD
    slots: tuple[Slot, ...]
    ms: float  # time to understand, milliseconds

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)


class BankNLU:
    """Loads the encoder and the shipped heads; :meth:`understand` one utterance at a time."""

    def __init__(self, weights: Path = WEIGHTS, encoder: SentenceEncoder | None = None):
        if not weights.exists():
            raise ModelNotFoundError(
                f"bank NLU weights not found at {weights}",
                "run: python scripts/train_bank_nlu.py",
            )
        arrays = np.load(weights, allow_pickle=False)
        self.intents = LinearHead.from_arrays(arrays, "b77")
        self.acts = LinearHead.from_arrays(arrays, "acts")
        self.slots = LinearHead.from_arrays(arrays, "slots")
        self.encoder = encoder or shared_encoder()

    def understand(self, text: str) -> Understanding:
        start = time.perf_counter()
        enc = self.encoder.encode([text])[0]
        probs = self.intents.softmax(enc.sentence)
        best = int(probs.argmax())
        act_probs = self.acts.sigmoid(enc.sentence)
        acts = frozenset(self.acts.labels[i] for i in np.flatnonzero(act_probs >= ACT_THRESHOLD))
        slots = tuple(Slot(name, text[a:b], a, b) for name, a, b in predict_slots(self.slots, enc))
        ms = (time.perf_counter() - start) * 1000
        return Understanding(text, self.intents.labels[best], float(probs[best]), acts, slots, ms)
