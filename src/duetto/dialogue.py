"""What the agent says: conversation memory plus a responder that streams the reply.

The voice pipeline and ``duetto chat`` share this, so text and voice get the same memory and
prompt. Applications (bank, tutor) supply their own :class:`Responder`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from duetto.config import LLMSettings, MemorySettings, Settings
from duetto.errors import LLMConnectionError
from duetto.llm import LLM, Message, load_llm
from duetto.llm.prompt import FALLBACK, ClauseSplitter

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't reach my language model right now. Please try again in a moment."
INTERRUPTED_MARK = " [interrupted]"


class Responder(Protocol):
    """Turns the user's words into the agent's reply, streamed as speakable clauses.

    The engine may call :meth:`respond` speculatively, at a pause, and drop the reply unheard if
    the user goes on. A responder whose ``respond`` has side effects (a bank that moves money on
    "yes") sets a class attribute ``speculative = False``: it then hears confirmed turns only
    (the ASR still runs early, so little latency is lost). A responder that sets
    ``cancellable = True`` takes a ``cancel`` event in :meth:`respond` and stops generating as
    soon as it is set, instead of at the next clause. A responder that sets
    ``hears_alternatives = True`` also takes ``alternatives``: the ASR's best hypotheses of the
    turn, best first, as ``(text, mean token log-probability)`` (the first is ``user_text``;
    empty unless ``asr.nbest`` > 1 gave some). A responder with an ``asr_options`` mapping
    (``prompt``, ``beam_size``, ``nbest``) has its own turns transcribed with them, per call on
    the engine's one ASR (partials take only the prompt), whatever the server's settings. A
    responder with an ``asr_model`` (a model name, as ``asr.model`` takes) has its turns in
    ``duetto serve`` transcribed by that model instead, loaded once per process beside the
    engine's (a CLI that runs one responder sets ``asr.model`` itself, as ``duetto bank`` does).
    """

    def respond(self, user_text: str, *, context: str | None = None) -> Iterator[str]: ...

    def record(self, user_text: str, agent_text: str, *, interrupted: bool = False) -> None: ...


@dataclass
class Turn:
    user: str
    agent: str
    interrupted: bool = False
    note: str | None = None  # how the user spoke (prosody context), kept so the prompt repeats


@dataclass
class Memory:
    """Multi-turn history within a token budget. The oldest turns go first; the system prompt stays."""

    system_prompt: str
    max_tokens: int = MemorySettings.max_tokens
    turns: list[Turn] = field(default_factory=list)
    dropped: int = 0

    def add(self, turn: Turn) -> None:
        self.turns.append(turn)

    def messages(
        self, count_tokens, user_text: str | None = None, context: str | None = None
    ) -> list[Message]:
        system = self.system_prompt
        budget = self.max_tokens - count_tokens(system)
        budget -= sum(count_tokens(text) for text in (user_text, context) if text)
        kept: list[Turn] = []
        for turn in reversed(self.turns):
            cost = count_tokens(turn.user) + count_tokens(turn.agent) + 8  # role tags and newlines
            cost += count_tokens(turn.note) if turn.note else 0
            if cost > budget:
                break
            budget -= cost
            kept.append(turn)
        self.dropped = len(self.turns) - len(kept)
        out = [Message("system", system)]
        for turn in reversed(kept):
            agent = turn.agent + (INTERRUPTED_MARK if turn.interrupted else "")
            if turn.note:
                out.append(Message("system", turn.note))
            out += [Message("user", turn.user), Message("assistant", agent)]
        if context:
            # Next to its turn, not in the first system line, and kept in the history: the
            # prompt then only grows at its end, and the LLM reuses its cache turn after turn.
            out.append(Message("system", context))
        if user_text is not None:
            out.append(Message("user", user_text))
        return out


class Conversation:
    """The default responder: the LLM with few-shot prompting, memory and clean clause cuts."""

    def __init__(self, llm: LLM, llm_settings: LLMSettings, memory: Memory):
        self.llm = llm
        self.settings = llm_settings
        self.memory = memory
        self.last_error: str | None = None
        self.first_token_at: float | None = None  # perf_counter() of the last reply's first token
        self._notes: dict[str, str | None] = {}  # user text -> the context its reply was given
        self.warming: threading.Thread | None = None  # the last warm-up after a turn

    @classmethod
    def from_settings(cls, settings: Settings) -> Conversation:
        llm = load_llm(settings.llm)
        check = getattr(llm, "check", None)
        if check is not None:
            check()
        memory = Memory(settings.llm.system_prompt, settings.memory.max_tokens)
        conversation = cls(llm, settings.llm, memory)
        if conversation.keeps_warm:
            # The system line and examples evaluated now: the first turn only pays for its own words.
            _warm(llm, memory.messages(llm.count_tokens))
        return conversation

    @property
    def keeps_warm(self) -> bool:
        if getattr(self.llm, "warm", None) is None or self.settings.keep_warm == "off":
            return False
        return self.settings.keep_warm == "on" or _on_this_machine(self.settings.url)

    cancellable = True  # respond() takes a cancel event, checked at every token

    def respond(
        self,
        user_text: str,
        *,
        context: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        self._notes[user_text] = context
        messages = self.memory.messages(self.llm.count_tokens, user_text, context)
        splitter = ClauseSplitter()
        spoke = False
        self.first_token_at = None
        try:
            for piece in self.llm.stream(
                messages, max_tokens=self.settings.max_tokens, temperature=self.settings.temperature
            ):
                self.first_token_at = self.first_token_at or time.perf_counter()
                if cancel is not None and cancel.is_set():
                    return  # a dropped speculative reply: stop the LLM now, not a clause later
                for clause in splitter.feed(piece):
                    spoke = True
                    yield clause
                if splitter.done:
                    break
        except LLMConnectionError as exc:
            self.last_error = str(exc)
            log.warning("LLM failed mid-turn: %s", exc)
            yield APOLOGY
            return
        rest = splitter.flush()
        if rest:
            spoke = True
            yield rest
        if not spoke:
            yield FALLBACK

    def record(self, user_text: str, agent_text: str, *, interrupted: bool = False) -> None:
        note = self._notes.pop(user_text, None)
        self._notes.clear()
        self.memory.add(Turn(user_text, agent_text, interrupted, note))
        if self.keeps_warm:
            # While the user reads or speaks, the LLM takes in the conversation so far.
            messages = self.memory.messages(self.llm.count_tokens)
            self.warming = threading.Thread(target=_warm, args=(self.llm, messages), daemon=True)
            self.warming.start()

    def reply_text(self, user_text: str) -> str:
        """The whole reply as text, recorded in memory (for ``duetto chat``)."""
        reply = " ".join(self.respond(user_text))
        self.record(user_text, reply)
        return reply


def _warm(llm: LLM, messages: list) -> None:
    try:
        llm.warm(messages)
    except Exception as exc:  # noqa: BLE001 - warming is an optimisation; the reply will say why
        log.debug("LLM warm-up failed: %s", exc)


def _on_this_machine(url: str | None) -> bool:
    if not url:
        return True
    host = (urlsplit(url).hostname or "").lower()
    return host in {"localhost", "127.0.0.1", "::1"} or host.endswith(".localhost")
