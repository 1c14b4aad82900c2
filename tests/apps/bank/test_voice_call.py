"""A scripted voice call through the engine's talk loop leaves exactly the expected rows."""

from __future__ import annotations

import pytest

from .conftest import TODAY

CALLER = (
    "My customer number is two zero four eight, one three five seven.",
    "My PIN is four eight two one.",
    "What is my balance?",
    "Please send fifty pounds to Bob Smith.",
    "Actually, make it sixty pounds instead.",
    "Yes.",
    "I have lost my debit card.",
    "Yes.",
)


@pytest.mark.slow
def test_voice_call_identifies_transfers_with_a_correction_and_freezes_a_card(tmp_path, tts):
    pytest.importorskip("torch", reason="the bank NLU needs the 'ml' extra")
    from duetto.apps.bank.agent import BankAgent
    from duetto.apps.bank.db import open_bank
    from duetto.apps.bank.nlu import BankNLU
    from duetto.apps.bank.responder import BankResponder
    from duetto.audio import SAMPLE_RATE, write_wav
    from duetto.config import load_settings
    from duetto.talk import Engine, make_dialogue_audio, talk_file

    settings = load_settings(None, {"turn.barge_in": False})
    engine = Engine.load(settings)
    caller = make_dialogue_audio(tts, CALLER, gap_s=4.0)
    path = write_wav(tmp_path / "caller.wav", caller, SAMPLE_RATE)
    bank = open_bank(tmp_path / "bank.sqlite3", today=TODAY)
    alice = bank.customer_by_number("20481357")
    before = {a.kind: a.balance for a in bank.accounts(alice.id)}
    agent = BankAgent(bank, BankNLU(), today=TODAY)
    result = talk_file(
        path, settings, realtime=True, show=False, engine=engine, responder=BankResponder(agent)
    )

    assert len(result["turns"]) == len(CALLER), result
    transfers = bank.execute("SELECT amount, payee_id, status FROM transfers").fetchall()
    bob = next(p for p in bank.payees(alice.id) if p.name == "Bob Smith")
    assert [tuple(t) for t in transfers] == [(6_000, bob.id, "done")]
    after = {a.kind: a.balance for a in bank.accounts(alice.id)}
    assert after == {"current": before["current"] - 6_000, "savings": before["savings"]}
    assert {c.last4: c.status for c in bank.cards(alice.id)} == {"4417": "frozen", "9032": "active"}
    assert bank.count("card_events") == 1 and bank.count("handoffs") == 0
    bank.close()
