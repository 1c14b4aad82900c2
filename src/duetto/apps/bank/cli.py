"""``duetto bank``: the demo bank's customer-service agent, by voice or text."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import inspect
import json
import sys

from duetto.errors import ConfigError


def register(sub) -> None:
    from duetto.cli import add_settings_flags

    p = sub.add_parser(
        "bank",
        help="customer-service agent for a demo bank (voice, or --text)",
        description=(
            "Customer-service agent for a demo bank: balances, payments, transfers with read-back "
            "and confirmation, card freezing, FAQ answers, handoff. Demo customers: see docs/bank.md "
            "(e.g. customer number 20481357, passphrase 'blue harbour', PIN 4821)."
        ),
    )
    p.add_argument("--text", action="store_true", help="type instead of speaking")
    p.add_argument(
        "--message", "-m", action="append", help="with --text: send these messages, then stop"
    )
    p.add_argument("--input", "-i", help="voice: caller audio file, fed as if from a microphone")
    p.add_argument("--output", "-o", help="voice: write the agent's audio (.wav)")
    p.add_argument("--fast", action="store_true", help="voice: feed --input as fast as possible")
    p.add_argument(
        "--db",
        help="database: a SQLite file (default $DUETTO_BANK_DB or ~/.local/share/duetto/bank.sqlite3) or postgresql://... DSN",
    )
    p.add_argument(
        "--today", help="pretend today is this date (YYYY-MM-DD), for reproducible demos"
    )
    p.add_argument(
        "--llm-small-talk", action="store_true", help="let the LLM phrase replies to off-topic chat"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_settings_flags(p)
    p.set_defaults(func=cmd_bank)


def _today(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--today {value!r} is not a date", "use YYYY-MM-DD, e.g. 2026-11-20"
        ) from None


def with_bank_asr(settings):
    """The caller's settings with the bank's ASR choices where they kept the engine's own:
    Whisper tiny.en adapted to bank calls unless they chose a model, primed on bank words
    (``ASR_PROMPT``) unless they chose a prompt, a beam of ``ASR_BEAM_SIZE`` and its
    ``ASR_NBEST`` best hypotheses unless they chose more.

    Measured on 770 spoken BANKING77 test queries (docs/bank.md): the prompt took intent
    accuracy from 83.4% to 86.4% clean and from 53.5% to 63.6% in babble at 5 dB; the beam, on
    the same audio as greedy decoding, from 86.5% to 87.1% and from 64.9% to 68.2%; the intent
    read from its 5 best hypotheses, to 88.8% and 72.0%, for no measurable CPU; and tiny.en
    adapted to bank calls (``bank_asr_model``), to 93.6% and 90.0%. The same
    choices as :class:`BankResponder`'s ``asr_options`` and ``asr_model``, which the
    server's sessions use."""
    from duetto.apps.bank.responder import bank_asr_model, bank_asr_options

    asr = settings.asr
    options = bank_asr_options(asr) | {"model": bank_asr_model(asr)}
    if all(getattr(asr, key) == value for key, value in options.items()):
        return settings
    return dataclasses.replace(settings, asr=dataclasses.replace(asr, **options))


def build_agent(db: str | None, today: dt.date | None = None, small_talk=None):
    """Open the database, load the NLU and return a fresh :class:`BankAgent` for one call."""
    from duetto.apps.bank.agent import BankAgent
    from duetto.apps.bank.db import open_bank
    from duetto.apps.bank.nlu import BankNLU

    bank = open_bank(db, today=today)
    return BankAgent(bank, BankNLU(), today=today, small_talk=small_talk)


def cmd_bank(args: argparse.Namespace) -> int:
    from duetto.cli import settings_from_args

    today = _today(args.today)
    settings = settings_from_args(args)
    small_talk = None
    if args.llm_small_talk:
        from duetto.dialogue import Conversation

        conversation = Conversation.from_settings(settings)
        small_talk = conversation.reply_text
    agent = build_agent(args.db, today, small_talk)
    try:
        if args.text or args.message:
            return _text(agent, args)
        return _voice(agent, settings, args)
    finally:
        agent.bank.close()


def _text(agent, args) -> int:
    from duetto.cli import stdin_lines

    interactive = args.message is None and sys.stdin.isatty()
    turns = [{"user": None, "agent": agent.greeting()}]
    if not args.json:
        print(f"bank: {agent.greeting()}" if interactive else agent.greeting(), flush=True)
    source = args.message if args.message is not None else stdin_lines(interactive)
    for line in source:
        if not line.strip():
            continue
        reply = agent.respond(line)
        turns.append({"user": line, "agent": reply, "state": agent.state.value})
        if not args.json:
            print(f"bank: {reply}" if interactive else reply, flush=True)
        if agent.state.value in ("ended", "locked") and interactive:
            break
    if args.json:
        print(json.dumps(turns, indent=2, ensure_ascii=False))
    return 0


def _voice(agent, settings, args) -> int:
    from duetto.apps.bank.responder import BankResponder

    try:
        from duetto.talk import talk_file, talk_live
    except ImportError as exc:
        raise ConfigError(
            "voice mode needs duetto's talk loop, which this build lacks", "use --text"
        ) from exc
    settings = with_bank_asr(settings)
    responder = BankResponder(agent, settings.asr)
    if args.input:
        result = talk_file(
            args.input,
            settings,
            output=args.output,
            realtime=not args.fast,
            show=not args.json,
            responder=responder,
        )
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    if "responder" not in inspect.signature(talk_live).parameters:
        raise ConfigError(
            "live voice for the bank needs duetto.talk.talk_live(..., responder=...)",
            "use --input FILE or --text for now",
        )
    return talk_live(settings, show=not args.json, responder=responder)
