"""Plug the bank agent into the voice engine: :class:`duetto.dialogue.Responder` for one call."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

from duetto.apps.bank.agent import BankAgent

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


class BankResponder:
    """Streams the agent's reply sentence by sentence, so speech starts after the first one."""

    # The agent moves money on "yes": it must only ever hear confirmed turns, never a
    # speculative one the engine might drop (see duetto.dialogue.Responder).
    speculative = False
    # The ASR's n-best hypotheses of each turn (asr.nbest) reach respond(): the NLU reads the
    # intent from all of them.
    hears_alternatives = True

    def __init__(self, agent: BankAgent):
        self.agent = agent
        self.interrupted_replies = 0
        # The engine may call respond() from several threads when turns come quickly; the agent
        # is a state machine and must see one turn at a time.
        self._lock = threading.Lock()

    def respond(
        self, user_text: str, *, context: str | None = None, alternatives=()
    ) -> Iterator[str]:
        with self._lock:
            reply = self.agent.respond(user_text, alternatives)
        yield from (s for s in _SENTENCE_END.split(reply) if s.strip())

    def record(self, user_text: str, agent_text: str, *, interrupted: bool = False) -> None:
        # The agent's state already moved when it answered. A read-back cut short is simply
        # asked again: nothing moves until the caller says yes to a read-back.
        if interrupted:
            self.interrupted_replies += 1
