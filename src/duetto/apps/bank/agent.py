"""The bank agent's dialogue: a state machine that decides, in code, whether money moves.

identify (customer number, then passphrase or telephone PIN; three failures lock the call) ->
understand the request -> collect missing slots -> read back and wait for an explicit "yes" ->
execute once -> receipt. Edits ("make it 60 instead") and "cancel" work at the read-back.
Earlier turns resolve "the same amount", "him", "that card". Policy questions are answered
only from the FAQ knowledge base; anything else goes to a person, with a summary.

The language model never decides anything here; an optional ``small_talk`` callable may phrase
a one-sentence reply to off-topic chat, after which the agent steers back.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from duetto.apps.bank import faq
from duetto.apps.bank.db import (
    Account,
    BankDB,
    BankError,
    Card,
    Customer,
    InsufficientFundsError,
    Payee,
    format_money,
)
from duetto.apps.bank.privacy import redact
from duetto.apps.bank.values import (
    is_no,
    is_yes,
    parse_amount,
    parse_date,
    parse_digits,
    parse_period,
)

log = logging.getLogger("duetto.bank.agent")

CUSTOMER_NUMBER_DIGITS = 8
PIN_DIGITS = 4
# Wrong customer numbers and wrong secrets together; the third locks the call (common bank practice).
MAX_ID_FAILURES = 3
# Below this BANKING77 confidence the agent asks again rather than answer the wrong question.
FAQ_MIN_CONFIDENCE = 0.35
# Payee names heard by ASR are often misspelt ("Bob Smyth"); this similarity still matches.
NAME_MATCH = 0.8
# History answers read out at most this many payments (a voice reply must stay short).
MAX_READ_OUT = 3
DEFAULT_HISTORY_DAYS = 30

GREETING = (
    "Hello, you're through to Duetto Bank's automated assistant. "
    "To start, please tell me your 8-digit customer number."
)
CAPABILITIES = "I can check balances and payments, make transfers, freeze a card, or answer questions about our services."


class NLU(Protocol):
    """Reads a turn; ``alternatives`` (the ASR's n-best, the text first) are passed only when a
    voice call has them (``BankNLU`` reads its intent from them)."""

    def understand(self, text: str, alternatives=()): ...


class State(Enum):
    CUSTOMER_NUMBER = "customer_number"
    SECRET = "secret"
    READY = "ready"
    COLLECT = "collect"
    CONFIRM = "confirm"
    LOCKED = "locked"
    ENDED = "ended"


@dataclass(frozen=True)
class PendingTransfer:
    """A transfer being put together; nothing moves until it is confirmed."""

    amount: int | None = None
    payee: Payee | None = None
    to_account: Account | None = None
    from_account: Account | None = None
    on_date: dt.date | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def destination(self) -> str | None:
        if self.payee:
            return self.payee.name
        if self.to_account:
            return f"your {self.to_account.name}"
        return None


@dataclass(frozen=True)
class PendingCard:
    card: Card | None
    status: str  # frozen | active
    reason: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Memory:
    """What earlier turns mentioned, for "the same amount", "him", "that card"."""

    amount: int | None = None
    payee: Payee | None = None
    card: Card | None = None
    account: Account | None = None
    merchant: str | None = None
    events: list[str] = field(default_factory=list)


_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(rules?|instructions?|previous|prompt|guidelines|security|checks?)\b"
    r"|\bsystem prompt\b|\bdeveloper mode\b|\byou are now\b|\bact as\b|\bjailbreak\b|\bpretend (you|to)\b"
    r"|\b(admin|root|supervisor) (access|mode|override)\b",
    re.IGNORECASE,
)
_EVERYTHING = re.compile(
    r"\b(everything|all (of )?(my|the|it|their)( money| funds| savings)?|whole balance|empty)\b",
    re.IGNORECASE,
)
_HANDOFF = re.compile(
    r"\b(human|real person|a person|someone|somebody|agent|advisor|adviser|operator|representative|colleague|staff|manager)\b",
    re.IGNORECASE,
)
_GOODBYE = re.compile(
    r"\b(bye|goodbye|that'?s all|that is all|nothing else|no thanks|hang up|end (the )?call)\b",
    re.IGNORECASE,
)
_CANCEL = re.compile(
    r"\b(cancel|stop|forget it|never ?mind|abort|don'?t (send|do|bother))\b", re.IGNORECASE
)
_REPEAT = re.compile(
    r"\b(repeat|say (that|it) again|pardon|come again|didn'?t (hear|catch))\b", re.IGNORECASE
)
_BALANCE = re.compile(
    r"\bbalances?\b|\bhow much (money )?(do i have|have i got|is (there )?(in|on)|is left|can i spend)\b|\bwhat'?s in my\b|\bavailable\b",
    re.IGNORECASE,
)
_HISTORY = re.compile(
    r"\b(spend|spent|spending|transactions?|payments? (to|at|from)|statement|purchases?|bought|recent payments|last payments)\b",
    re.IGNORECASE,
)
_TRANSFER = re.compile(r"\b(send|transfer|pay|move|wire|put)\b", re.IGNORECASE)
_QUESTION = re.compile(
    r"^\s*(how|why|when|what|where|which|is|are|does|do you|will|has|have)\b", re.IGNORECASE
)
_FREEZE = re.compile(
    r"\b(freeze|block|lock|suspend|stop|disable|lost|stolen)\b.{0,30}\bcards?\b|\bcards?\b.{0,30}\b(lost|stolen|missing|freeze|frozen|block)\b",
    re.IGNORECASE,
)
_UNFREEZE = re.compile(r"\b(unfreeze|unblock|unlock|reactivate|re-activate)\b", re.IGNORECASE)
_NOT_ARRIVED = re.compile(
    r"\b(n'?t|not|never|still)\b.{0,25}\b(arrived|come|received|got|turned up|waiting)\b",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"\b(how are you|weather|joke|football|movie|film|music|your name|who are you|are you (a )?(robot|human|real)|hello|hi there|good (morning|afternoon|evening)|thanks?|thank you)\b",
    re.IGNORECASE,
)
_SAME_AMOUNT = re.compile(
    r"\b(same (amount|again|as (before|last time))|that amount)\b", re.IGNORECASE
)
_PRONOUN = re.compile(r"\b(him|her|them|that person|the same person)\b", re.IGNORECASE)
_THAT_CARD = re.compile(r"\b(that|this|the same|the) card\b|\bit\b", re.IGNORECASE)
_SOURCE = re.compile(r"\bfrom (my |the )?(savings|current)\b", re.IGNORECASE)
_TARGET_ACCOUNT = re.compile(r"\b(to|into|in) (my |the )?(savings|current)\b", re.IGNORECASE)
_DATE_WORDS = re.compile(
    r"\b(today|tomorrow|now|monday|tuesday|wednesday|thursday|friday|saturday|sunday|\d{1,2}(st|nd|rd|th)|the \w+(st|nd|rd|th)|january|february|march|april|may|june|july|august|september|october|november|december)\b",
    re.IGNORECASE,
)
_FILLER = re.compile(
    r"^\s*(my |the )?(pass ?phrase|password|secret|pin|telephone pin)( is|'s)?\s*[:,-]?\s*|^\s*(it'?s|it is)\s+",
    re.IGNORECASE,
)


class BankAgent:
    """One caller's session. :meth:`respond` takes what they said and returns the reply text."""

    def __init__(
        self,
        bank: BankDB,
        nlu: NLU,
        *,
        today: dt.date | None = None,
        small_talk: Callable[[str], str] | None = None,
    ):
        self.bank = bank
        self.nlu = nlu
        self.today = today or dt.date.today()
        self.small_talk = small_talk
        self.state = State.CUSTOMER_NUMBER
        self.customer: Customer | None = None
        self._candidate: Customer | None = None
        self.failures = 0
        self.memory = Memory()
        self.pending: PendingTransfer | PendingCard | None = None
        self._asking: str | None = None  # the slot the last question asked for
        self._goal: str | None = None  # what the caller asked for before identifying
        self._goal_text: str | None = None
        self.last_reply = GREETING
        self._alternatives: tuple[tuple[str, float], ...] = ()  # the turn's ASR n-best

    # -- entry point -------------------------------------------------------------------------

    def greeting(self) -> str:
        return GREETING

    def respond(self, user_text: str, alternatives=()) -> str:
        """The agent's reply to one caller turn (never raises for anything the caller says).
        ``alternatives``: the ASR's best hypotheses of it, ``(text, score)`` best first, which
        the NLU weighs for the intent (``Transcription.alternatives``)."""
        text = (user_text or "").strip()
        self._alternatives = tuple(alternatives)
        secret_turn = self.state in (State.CUSTOMER_NUMBER, State.SECRET)
        log.info(
            "caller (%s): %s",
            self.state.value,
            "[identification withheld]" if secret_turn else redact(text),
        )
        try:
            reply = self._respond(text)
        except BankError as exc:
            reply = str(exc)
        except Exception:  # a bug must not end the call or move money; tell the caller plainly
            log.exception("bank agent failed on a turn")
            self.pending = None
            self.state = State.READY if self.customer else self.state
            reply = "Sorry, something went wrong on my side. Nothing has been changed. Could you say that again?"
        self.last_reply = reply
        log.info("agent: %s", redact(reply))
        return reply

    def _respond(self, text: str) -> str:
        if self.state is State.LOCKED:
            return (
                "For your security this call is locked. Please call back later or visit a branch."
            )
        if self.state is State.ENDED:
            return "This call has ended. Goodbye."
        if not text:
            return "Sorry, I didn't hear anything. " + self._prompt()
        if _REPEAT.search(text) and len(text.split()) <= 6:
            return self.last_reply
        if _INJECTION.search(text):
            self.memory.events.append("refused an instruction to bypass the rules")
            return (
                "I can't do that. I only act on requests you make and confirm yourself, "
                "and I can't change my rules. " + self._prompt()
            )
        if self.state in (State.CUSTOMER_NUMBER, State.SECRET):
            return self._identify(text)
        if self.state is State.CONFIRM:
            return self._confirm(text)
        if self.state is State.COLLECT:
            return self._collect(text)
        return self._ready(text)

    def _understand(self, text: str):
        """The NLU's reading of ``text``, from the turn's ASR hypotheses when ``text`` is that
        turn's transcript (not a request remembered from an earlier turn)."""
        alts = self._alternatives
        if len(alts) > 1 and alts[0][0].strip() == text:
            return self.nlu.understand(text, alternatives=alts)
        return self.nlu.understand(text)

    def _prompt(self) -> str:
        if self.state is State.CUSTOMER_NUMBER:
            return "Please tell me your 8-digit customer number."
        if self.state is State.SECRET:
            return "Please tell me your passphrase or your 4-digit telephone PIN."
        if self.state is State.CONFIRM and self.pending:
            return self._read_back()
        if self.state is State.COLLECT:
            return self._ask_next()
        return "How can I help?"

    # -- identification ----------------------------------------------------------------------

    def _identify(self, text: str) -> str:
        if self.state is State.CUSTOMER_NUMBER:
            goal = self._early_goal(text)
            if goal:
                return goal
            digits = parse_digits(text)
            if not digits and _SMALL_TALK.search(text):
                return "Hello. " + self._prompt()
            if len(digits) != CUSTOMER_NUMBER_DIGITS:
                heard = f"I heard {len(digits)} digits. " if digits else ""
                return f"{heard}Customer numbers have 8 digits. Please say yours digit by digit."
            customer = self.bank.customer_by_number(digits)
            if customer is None:
                return self._failed("I couldn't find that customer number.")
            self._candidate = customer
            self.state = State.SECRET
            return "Thank you. Now please tell me your passphrase, or your 4-digit telephone PIN."
        assert self._candidate is not None
        digits = parse_digits(text)
        ok = False
        if len(digits) == PIN_DIGITS:
            ok = self.bank.check_secret(self._candidate, pin=digits)
        if not ok:
            ok = any(
                self.bank.check_secret(self._candidate, passphrase=p)
                for p in {text, _FILLER.sub("", text)}
            )
        if not ok:
            return self._failed("That doesn't match our records.")
        self.customer, self._candidate = self._candidate, None
        self.state = State.READY
        first = self.customer.name.split()[0]
        if self._goal_text:
            goal_text, self._goal_text = self._goal_text, None
            return f"Thank you, {first}, you're verified. " + self._ready(goal_text)
        return f"Thank you, {first}, you're verified. How can I help today?"

    def _early_goal(self, text: str) -> str | None:
        """A request before identification: answer policy questions, remember account ones."""
        if parse_digits(text) and len(parse_digits(text)) >= 4:
            return None
        if _wants_person(text):
            return self._handoff(text)
        if _GOODBYE.search(text):
            self.state = State.ENDED
            return "Goodbye."
        understanding = self._understand(text)
        if self._is_account_request(text, understanding):
            self._goal_text = text
            return "I can help with that. First I need to check who you are. Please tell me your 8-digit customer number."
        if understanding.confidence >= FAQ_MIN_CONFIDENCE and not _SMALL_TALK.search(text):
            return faq.answer(understanding.intent) + " " + self._prompt()
        return None

    def _failed(self, message: str) -> str:
        self.failures += 1
        self.memory.events.append("failed identification")
        log.warning("identification failure %d of %d", self.failures, MAX_ID_FAILURES)
        if self.failures >= MAX_ID_FAILURES:
            self.state = State.LOCKED
            return (
                f"{message} That's {MAX_ID_FAILURES} unsuccessful attempts, so for your security I've "
                "locked this call. Please call back later or visit a branch."
            )
        self.state = State.CUSTOMER_NUMBER
        self._candidate = None
        left = MAX_ID_FAILURES - self.failures
        return f"{message} Let's start again: please tell me your 8-digit customer number. ({left} attempt{'s' * (left > 1)} left.)"

    # -- routing once identified -------------------------------------------------------------

    def _is_account_request(self, text: str, u) -> bool:
        return bool(
            _BALANCE.search(text)
            or self._is_history(text)
            or self._is_transfer(text, u)
            or self._is_freeze(text, u)
        )

    def _is_history(self, text: str) -> bool:
        return bool(_HISTORY.search(text)) and not re.search(
            r"\b(not recogni[sz]ed?|don'?t recogni[sz]e|twice|refund)\b", text, re.I
        )

    def _is_transfer(self, text: str, u) -> bool:
        if not _TRANSFER.search(text):
            # ASR drops or garbles the verb ("Place in 50 pounds to Bob Smith"): an amount
            # going to a saved payee is still a transfer request, and it is read back anyway.
            return parse_amount(text) is not None and self._payee_in(text, u, False)[0] is not None
        if _QUESTION.match(text) and not re.match(r"^\s*(can|could|would|will) you\b", text, re.I):
            return False
        if re.search(
            r"\b(how long|why|fee|charge|arrived?|pending|declined|failed|received)\b", text, re.I
        ):
            return False
        # "pay" in "apple pay", "pay in" cash: not a transfer.
        if re.search(r"\b(apple|google) pay\b|\bpay (in|into) (cash|a cheque)\b", text, re.I):
            return False
        return True

    def _is_freeze(self, text: str, u) -> bool:
        if _UNFREEZE.search(text):
            return True
        if _FREEZE.search(text):
            return True
        return (
            u.intent in ("lost_or_stolen_card", "compromised_card", "card_swallowed")
            and u.confidence >= FAQ_MIN_CONFIDENCE
        )

    def _ready(self, text: str) -> str:
        if _wants_person(text):
            return self._handoff(text)
        if _GOODBYE.search(text) and len(text.split()) <= 8:
            self.state = State.ENDED
            self.memory.events.append("ended the call")
            return "Thank you for calling Duetto Bank. Goodbye."
        if (is_yes(text) or is_no(text)) and len(text.split()) <= 3:
            return "There's nothing waiting for your confirmation. " + "How can I help?"
        u = self._understand(text)
        if _BALANCE.search(text) and not re.search(
            r"\b(why|not updated|wrong|top.?up)\b", text, re.I
        ):
            return self._balance(text)
        if self._is_history(text):
            return self._history(text)
        if self._is_freeze(text, u):
            return self._start_card(text, u)
        if u.intent in ("card_arrival", "card_delivery_estimate") and _NOT_ARRIVED.search(text):
            return self._start_card(text, u, reason="card not arrived")
        if self._is_transfer(text, u):
            return self._start_transfer(text, u)
        if self._smalltalk_like(text, u):
            return self._chat(text)
        if u.confidence >= FAQ_MIN_CONFIDENCE:
            return self._faq(u) or self._not_understood()
        return self._not_understood()

    def _faq(self, u) -> str | None:
        """The knowledge base's answer for ``u``'s intent (None: it has none), remembered."""
        self.memory.events.append(f"asked about {u.intent.replace('_', ' ')}")
        return faq.answer(u.intent)

    def _smalltalk_like(self, text: str, u) -> bool:
        return (
            bool(_SMALL_TALK.search(text))
            or bool(u.acts & {"greet", "thank"})
            and u.confidence < 0.6
        )

    def _not_understood(self) -> str:
        return f"Sorry, I'm not sure I understood. {CAPABILITIES} Or I can put you through to a colleague."

    def _chat(self, text: str) -> str:
        reply = None
        if self.small_talk is not None:
            try:
                reply = self.small_talk(text)
            except Exception:  # the LLM is optional; a failure falls back to the fixed line
                log.warning("small talk failed", exc_info=True)
        if not reply:
            if re.search(r"\bthank", text, re.I):
                reply = "You're welcome."
            elif re.search(r"\b(hello|hi there|good (morning|afternoon|evening))\b", text, re.I):
                reply = "Hello again."
            elif re.search(r"\b(robot|human|real|who are you|your name)\b", text, re.I):
                reply = "I'm Duetto Bank's automated assistant."
            else:
                reply = "I'm afraid I can only really help with banking."
        return f"{reply.strip()} Is there anything I can help you with on your account?"

    # -- balances and history ----------------------------------------------------------------

    def _accounts(self) -> list[Account]:
        assert self.customer is not None
        return self.bank.accounts(self.customer.id)

    def _balance(self, text: str) -> str:
        accounts = self._accounts()
        wanted = [a for a in accounts if re.search(rf"\b{a.kind}\b", text, re.I)] or accounts
        parts = []
        for a in wanted:
            line = f"your {a.name} balance is {format_money(a.balance)}"
            if a.overdraft_limit:
                line += f", with {format_money(a.available)} available including your overdraft"
            parts.append(line)
        self.memory.account = wanted[0]
        self.memory.events.append("checked balance")
        return _sentence("; and ".join(parts)) + " Anything else?"

    def _history(self, text: str) -> str:
        assert self.customer is not None
        period = parse_period(text, self.today)
        since, until = period or (self.today - dt.timedelta(days=DEFAULT_HISTORY_DAYS), self.today)
        merchant = self._merchant_in(text)
        rows = self.bank.transactions(
            self.customer.id, since=since, until=until, merchant=merchant, limit=500
        )
        spent = [r for r in rows if r.amount < 0]
        when = _period_words(since, until, self.today, explicit=period is not None)
        self.memory.events.append(f"asked about payments{' at ' + merchant if merchant else ''}")
        if merchant:
            self.memory.merchant = merchant
            if not spent:
                return f"I can't see any payments to {merchant} {when}."
            total = -sum(r.amount for r in spent)
            items = ", ".join(
                f"{format_money(-r.amount)} on {_day(r.posted_at)}" for r in spent[:MAX_READ_OUT]
            )
            more = f", and {len(spent) - MAX_READ_OUT} more" if len(spent) > MAX_READ_OUT else ""
            count = f"{len(spent)} payment{'s' * (len(spent) > 1)}"
            return (
                f"You spent {format_money(total)} at {merchant} {when}, in {count}: {items}{more}."
            )
        if not rows:
            return f"I can't see any transactions {when}."
        total = -sum(r.amount for r in spent)
        latest = "; ".join(
            f"{format_money(abs(r.amount))} {'to' if r.amount < 0 else 'from'} {r.merchant or r.description} on {_day(r.posted_at)}"
            for r in rows[:MAX_READ_OUT]
        )
        return f"{when.capitalize()} you spent {format_money(total)} in {len(spent)} payments. The latest: {latest}."

    def _merchant_in(self, text: str) -> str | None:
        assert self.customer is not None
        lowered = text.lower()
        for merchant in self.bank.merchants(self.customer.id):
            name = merchant.lower().replace("'", "")
            if name in lowered.replace("'", "") or name.split()[0] in lowered.split():
                return merchant
        if re.search(r"\b(there|that shop|same place)\b", lowered) and self.memory.merchant:
            return self.memory.merchant
        return None

    # -- transfers ---------------------------------------------------------------------------

    def _start_transfer(self, text: str, u) -> str:
        if _EVERYTHING.search(text) and parse_amount(text) is None:
            return "I can only send a specific amount. How much would you like to send?"
        self.pending = self._fill(PendingTransfer(), text, u, expecting=None)
        if isinstance(self.pending, str):  # an error message about the request
            message, self.pending = self.pending, None
            return message
        return self._next_step()

    def _fill(
        self, p: PendingTransfer, text: str, u, expecting: str | None
    ) -> PendingTransfer | str:
        """``p`` updated with what ``text`` says; a string when the request can't be met."""
        accounts = self._accounts()
        by_kind = {a.kind: a for a in accounts}
        amount = None
        if _SAME_AMOUNT.search(text) and self.memory.amount:
            amount = self.memory.amount
        else:
            amount = parse_amount(
                text,
                bare=expecting in ("amount", "edit")
                or bool(re.search(r"\b(make it|instead|change it to|actually)\b", text, re.I)),
            )
        if amount is not None:
            if amount <= 0:
                return "The amount must be more than zero. How much would you like to send?"
            p = replace(p, amount=amount)
        if m := _SOURCE.search(text):
            p = replace(p, from_account=by_kind.get(m.group(2).lower()))
        if m := _TARGET_ACCOUNT.search(text):
            target = by_kind.get(m.group(3).lower())
            if target is None:
                return f"You don't have a {m.group(3).lower()} account with us."
            p = replace(p, to_account=target, payee=None)
        else:
            payee, unknown = self._payee_in(text, u, expecting == "payee")
            if payee:
                p = replace(p, payee=payee, to_account=None)
            elif unknown:
                names = _join([x.name for x in self.bank.payees(self.customer.id)])
                return (
                    f"{unknown} isn't one of your saved payees, so I can't send money there. "
                    f"Your saved payees are {names}. New payees can be added in the app."
                )
        if _DATE_WORDS.search(text):
            on = parse_date(text, self.today)
            if on is not None:
                if on < self.today:
                    return "I can't make a transfer in the past. Which date would you like?"
                p = replace(p, on_date=on)
        return p

    def _payee_in(self, text: str, u, expecting: bool) -> tuple[Payee | None, str | None]:
        assert self.customer is not None
        payees = self.bank.payees(self.customer.id)
        lowered = re.sub(r"[^\w\s]", " ", text.lower())
        words = lowered.split()
        for payee in payees:
            if payee.name.lower() in lowered:
                return payee, None
        for payee in payees:
            parts = payee.name.lower().split()
            if any(_similar(w, part) for w in words for part in parts if len(part) > 2):
                # A first name shared by two payees is ambiguous; take the full-name match only.
                same = [
                    x
                    for x in payees
                    if any(
                        _similar(w, part)
                        for w in words
                        for part in x.name.lower().split()
                        if len(part) > 2
                    )
                ]
                if len(same) == 1:
                    return payee, None
        if _PRONOUN.search(text) and self.memory.payee:
            return self.memory.payee, None
        names = [s.text for s in u.slots if s.name in ("person_name", "company_name")]
        if not names:
            m = re.search(r"\bto ([A-Z][a-z]+(?: [A-Z][a-z]+)?)\b", text)
            if m and m.group(1).lower() not in ("my", "the", "savings", "current"):
                names = [m.group(1)]
            elif expecting and text.strip() and len(words) <= 3 and not parse_amount(text):
                names = [text.strip().rstrip(".")]
        return None, (names[0] if names else None)

    def _next_step(self) -> str:
        p = self.pending
        assert isinstance(p, PendingTransfer)
        if p.from_account is None:
            current = next(
                (a for a in self._accounts() if a.kind == "current"), self._accounts()[0]
            )
            p = self.pending = replace(p, from_account=current)
        if p.to_account is not None and p.to_account.id == p.from_account.id:
            self.pending = replace(p, to_account=None)
            self.state = State.COLLECT
            self._asking = "payee"
            return "The money can't go to the account it comes from. Who should I send it to?"
        missing = self._missing()
        if missing:
            self.state = State.COLLECT
            self._asking = missing
            return self._ask_next()
        if (
            p.amount > self.bank.account(self.customer.id, p.from_account.id).available
            and (p.on_date or self.today) == self.today
        ):
            available = self.bank.account(self.customer.id, p.from_account.id).available
            self.pending = replace(p, amount=None)
            self.state = State.COLLECT
            self._asking = "amount"
            return (
                f"Your {p.from_account.name} has {format_money(available)} available, not enough for "
                f"{format_money(p.amount)}. Nothing has been moved. What amount would you like to send instead?"
            )
        self.state = State.CONFIRM
        self._asking = None
        return self._read_back()

    def _missing(self) -> str | None:
        p = self.pending
        assert isinstance(p, PendingTransfer)
        if p.destination is None:
            return "payee"
        if p.amount is None:
            return "amount"
        return None

    def _ask_next(self) -> str:
        p = self.pending
        if self._asking == "payee":
            names = _join([x.name for x in self.bank.payees(self.customer.id)])
            return f"Who would you like to send it to? Your saved payees are {names}, or I can move it to another of your accounts."
        if self._asking == "amount":
            to = f" to {p.destination}" if isinstance(p, PendingTransfer) and p.destination else ""
            return f"How much would you like to send{to}?"
        if self._asking == "card":
            return self._which_card()
        return "How can I help?"

    def _collect(self, text: str) -> str:
        if _CANCEL.search(text):
            return self._cancel()
        if self._asking == "card":
            return self._collect_card(text)
        u = self._understand(text)
        if _EVERYTHING.search(text) and parse_amount(text) is None:
            return "I can only send a specific amount. How much would you like to send?"
        updated = self._fill(self.pending, text, u, expecting=self._asking)
        if isinstance(updated, str):  # e.g. not a saved payee: unless it was another question
            return self._aside(text, u) or updated
        if updated == self.pending:
            aside = self._aside(text, u)
            if aside:
                return aside
            if self._asking == "amount":
                return "Sorry, I didn't catch an amount. How much would you like to send, for example 50 pounds?"
            return self._ask_next()
        self.pending = updated
        return self._next_step()

    def _read_back(self) -> str:
        p = self.pending
        if isinstance(p, PendingCard):
            verb = "freeze" if p.status == "frozen" else "unfreeze"
            return f"To confirm: {verb} your {_card_words(p.card)}. Shall I go ahead? Please say yes or no."
        assert isinstance(p, PendingTransfer)
        when = "today" if (p.on_date or self.today) == self.today else f"on {_long_date(p.on_date)}"
        return (
            f"To confirm: send {format_money(p.amount)} from your {p.from_account.name} to "
            f"{p.destination}, {when}. Shall I go ahead? Please say yes or no."
        )

    def _confirm(self, text: str) -> str:
        if _CANCEL.search(text):
            return self._cancel()
        if is_yes(text):
            return self._execute()
        if isinstance(self.pending, PendingTransfer):
            u = self._understand(text)
            updated = self._fill(self.pending, text, u, expecting="edit")
            if isinstance(updated, str):
                return updated
            if updated != self.pending:
                self.pending = replace(updated, request_id=uuid.uuid4().hex)  # a new request
                self.memory.events.append("changed the pending transfer")
                return "OK. " + self._next_step()
        if is_no(text):
            what = (
                "the amount, the payee or the date"
                if isinstance(self.pending, PendingTransfer)
                else "which card"
            )
            return f"OK, nothing has been done. Tell me what to change, {what}, or say cancel."
        return "Sorry, I need a clear yes or no. " + self._read_back()

    def _cancel(self) -> str:
        what = "transfer" if isinstance(self.pending, PendingTransfer) else "request"
        self.pending = None
        self.state = State.READY
        self._asking = None
        self.memory.events.append(f"cancelled a {what}")
        return f"I've cancelled that {what}. Nothing has been moved. Anything else?"

    def _execute(self) -> str:
        p = self.pending
        assert self.customer is not None
        if isinstance(p, PendingCard):
            card = self.bank.set_card_status(
                self.customer.id, p.card.id, p.status, request_id=p.request_id
            )
            self.pending, self.state = None, State.READY
            self.memory.card = card
            verb = "frozen" if card.status == "frozen" else "active again"
            self.memory.events.append(f"{_card_words(card)} {verb} ({p.reason})")
            extra = ""
            if card.status == "frozen" and p.reason in ("lost or stolen", "card not arrived"):
                extra = " A replacement will be posted to your address and should arrive within 3 to 5 working days."
            return f"Done. Your {_card_words(card)} is now {verb}.{extra} Anything else?"
        assert isinstance(p, PendingTransfer)
        try:
            receipt = self.bank.transfer(
                self.customer.id, p.from_account.id, p.amount,
                request_id=p.request_id,
                payee_id=p.payee.id if p.payee else None,
                to_account_id=p.to_account.id if p.to_account else None,
                on_date=p.on_date or self.today, today=self.today,
            )  # fmt: skip
        except InsufficientFundsError as exc:
            self.pending = replace(p, amount=None)
            self.state, self._asking = State.COLLECT, "amount"
            return f"{exc} What amount would you like to send instead?"
        self.pending, self.state = None, State.READY
        self.memory.amount = p.amount
        if p.payee:
            self.memory.payee = p.payee
        status = (
            "sent"
            if receipt.status == "done"
            else f"scheduled for {_long_date(dt.date.fromisoformat(receipt.on_date))}"
        )
        self.memory.events.append(
            f"transfer of {format_money(p.amount)} to {p.destination} {status} ({receipt.reference})"
        )
        balance = (
            f" Your {p.from_account.name} balance is now {format_money(receipt.balance_after)}."
            if receipt.status == "done"
            else ""
        )
        return (
            f"Done. {format_money(p.amount)} to {p.destination} is {status}. "
            f"Your reference is {' '.join(receipt.reference)}.{balance} Anything else?"
        )

    # -- cards -------------------------------------------------------------------------------

    def _start_card(self, text: str, u, reason: str | None = None) -> str:
        status = "active" if _UNFREEZE.search(text) else "frozen"
        if reason is None:
            reason = (
                "lost or stolen"
                if re.search(r"\b(lost|stolen|missing|swallowed)\b", text, re.I)
                else "caller's request"
            )
        card = self._card_in(text)
        self.pending = PendingCard(card, status, reason)
        if card is None:
            self.state, self._asking = State.COLLECT, "card"
            return self._which_card()
        self.state = State.CONFIRM
        return self._read_back()

    def _card_in(self, text: str) -> Card | None:
        assert self.customer is not None
        cards = [c for c in self.bank.cards(self.customer.id) if c.status != "cancelled"]
        digits = parse_digits(text)
        for card in cards:
            if digits.endswith(card.last4):
                return card
        kinds = [c for c in cards if re.search(rf"\b{c.kind}\b", text, re.I)]
        if len(kinds) == 1:
            return kinds[0]
        if _THAT_CARD.search(text) and self.memory.card is not None and not kinds:
            return self.memory.card
        return cards[0] if len(cards) == 1 else None

    def _which_card(self) -> str:
        cards = [c for c in self.bank.cards(self.customer.id) if c.status != "cancelled"]
        return "Which card: " + _join([f"the {_card_words(c)}" for c in cards], "or") + "?"

    def _aside(self, text: str, u=None) -> str | None:
        """Mid-request, an utterance that does not answer the question asked: a person wanted
        (handoff), or a policy question, answered from the FAQ before the question is asked
        again. None: neither, so the question is simply asked again."""
        if _wants_person(text):
            return self._handoff(text)
        u = u or self._understand(text)
        if u.confidence >= FAQ_MIN_CONFIDENCE and not self._is_account_request(text, u):
            answer = self._faq(u)
            if answer:
                return f"{answer} Now, back to your request. {self._ask_next()}"
        return None

    def _collect_card(self, text: str) -> str:
        card = self._card_in(text)
        if card is None:
            aside = self._aside(text)
            if aside:
                return aside
            return "Sorry, I didn't catch which card. " + self._which_card()
        self.pending = replace(self.pending, card=card)
        self.state, self._asking = State.CONFIRM, None
        return self._read_back()

    # -- handoff -----------------------------------------------------------------------------

    def handoff_summary(self) -> str:
        who = f"{self.customer.name}, identified" if self.customer else "caller not identified"
        done = "; ".join(self.memory.events) if self.memory.events else "no actions"
        pending = ""
        if isinstance(self.pending, PendingTransfer) and self.pending.amount:
            pending = (
                f" Unconfirmed: {format_money(self.pending.amount)} to {self.pending.destination}."
            )
        return f"{who}. {done}.{pending}"

    def _handoff(self, text: str) -> str:
        summary = self.handoff_summary()
        self.bank.record_handoff(self.customer.id if self.customer else None, redact(summary))
        self.pending = None
        self.state = State.ENDED
        return "I'm putting you through to a colleague now. I've passed on a summary, so you won't need to repeat yourself."


def _wants_person(text: str) -> bool:
    return bool(_HANDOFF.search(text)) and bool(
        re.search(
            r"\b(speak|talk|transfer me|put me|get me|want|need|can i|let me|connect me)\b",
            text,
            re.I,
        )
    )


def _similar(a: str, b: str) -> bool:
    return a == b or (len(a) > 3 and difflib.SequenceMatcher(None, a, b).ratio() >= NAME_MATCH)


def _join(items: list[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _card_words(card: Card | None) -> str:
    return f"{card.kind} card ending {' '.join(card.last4)}" if card else "card"


def _day(posted_at: str) -> str:
    d = dt.date.fromisoformat(posted_at[:10])
    return f"{d.day} {d.strftime('%B')}"


def _long_date(d: dt.date) -> str:
    return f"{d.strftime('%A')} {d.day} {d.strftime('%B')}"


def _period_words(since: dt.date, until: dt.date, today: dt.date, explicit: bool) -> str:
    if since == until:
        return "today" if since == today else f"on {_long_date(since)}"
    if not explicit:
        return f"in the last {(until - since).days} days"
    return f"between {since.day} {since.strftime('%B')} and {until.day} {until.strftime('%B')}"
