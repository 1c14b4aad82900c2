"""The bank database, run against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest

from duetto.apps.bank.db import BankError, InsufficientFundsError, NotFoundError, open_bank
from duetto.apps.bank.migrations import LATEST_VERSION
from duetto.errors import ConfigError

from .conftest import TODAY


def _alice(bank):
    customer = bank.customer_by_number("20481357")
    current, savings = bank.accounts(customer.id)
    return customer, current, savings


def _snapshot(bank):
    return {t: bank.count(t) for t in ("transfers", "transactions")} | {
        a.id: a.balance for a in bank.accounts(bank.customer_by_number("20481357").id)
    }


def test_first_open_creates_schema_and_seeds_once(bank_url):
    with open_bank(bank_url, today=TODAY) as bank:
        assert bank.schema_version() == LATEST_VERSION
        counts = {
            t: bank.count(t) for t in ("customers", "accounts", "payees", "cards", "transactions")
        }
        assert counts["customers"] == 3 and counts["accounts"] == 5 and counts["transactions"] > 50
    with open_bank(bank_url, today=TODAY) as again:
        assert {t: again.count(t) for t in counts} == counts
        assert again.migrate() == []


def test_migration_from_an_older_schema_applies_only_the_new_steps(bank_url):
    with open_bank(bank_url, seed=False) as old:
        pass
    # Re-create an old database: only migration 1, then let open_bank bring it up to date.
    with open_bank(bank_url, seed=False) as db:
        db.execute("DROP TABLE card_events")
        db.execute("DROP TABLE handoffs")
        db.execute("DELETE FROM schema_version WHERE version > 1")
        assert db.schema_version() == 1
    with open_bank(bank_url, today=TODAY) as db:
        assert db.schema_version() == LATEST_VERSION
        assert db.count("handoffs") == 0
    del old


def test_secrets_match_whatever_the_spacing_and_case(bank):
    alice = bank.customer_by_number("20481357")
    assert bank.check_secret(alice, passphrase="Blue  Harbour.")
    assert bank.check_secret(alice, pin="4821")
    assert not bank.check_secret(alice, passphrase="blue harbor")
    assert not bank.check_secret(alice, pin="4812")
    assert bank.customer_by_number("99999999") is None
    stored = bank.execute(
        "SELECT passphrase_hash, pin_hash FROM customers WHERE id = ?", (alice.id,)
    ).fetchone()
    assert "4821" not in "".join(stored) and "harbour" not in "".join(stored)


def test_transfer_between_own_accounts_moves_both_sides_atomically(bank):
    alice, current, savings = _alice(bank)
    receipt = bank.transfer(
        alice.id, current.id, 6_000, to_account_id=savings.id, request_id="r1", today=TODAY
    )
    assert receipt.status == "done" and not receipt.duplicate
    _, current2, savings2 = _alice(bank)
    assert current2.balance == current.balance - 6_000
    assert savings2.balance == savings.balance + 6_000
    assert receipt.balance_after == current2.balance
    rows = bank.execute(
        "SELECT account_id, amount FROM transactions WHERE transfer_id = ? ORDER BY amount",
        (receipt.transfer_id,),
    ).fetchall()
    assert [tuple(r) for r in rows] == [(current.id, -6_000), (savings.id, 6_000)]


def test_transfer_to_a_payee_debits_once(bank):
    alice, current, _ = _alice(bank)
    bob = next(p for p in bank.payees(alice.id) if p.name == "Bob Smith")
    receipt = bank.transfer(
        alice.id, current.id, 2_550, payee_id=bob.id, request_id="r-bob", today=TODAY
    )
    assert bank.account(alice.id, current.id).balance == current.balance - 2_550
    assert bank.count("transfers") == 1
    assert receipt.reference.startswith("TR")


def test_confirming_twice_moves_money_once(bank):
    alice, current, savings = _alice(bank)
    first = bank.transfer(
        alice.id, current.id, 1_000, to_account_id=savings.id, request_id="same", today=TODAY
    )
    second = bank.transfer(
        alice.id, current.id, 1_000, to_account_id=savings.id, request_id="same", today=TODAY
    )
    assert second.duplicate and second.transfer_id == first.transfer_id
    assert bank.account(alice.id, current.id).balance == current.balance - 1_000
    assert bank.count("transfers") == 1


def test_overdraft_limit_is_the_floor(bank):
    alice, current, savings = _alice(bank)
    before = _snapshot(bank)
    with pytest.raises(InsufficientFundsError, match="Nothing has been moved"):
        bank.transfer(
            alice.id,
            current.id,
            current.available + 1,
            to_account_id=savings.id,
            request_id="too-much",
            today=TODAY,
        )
    assert _snapshot(bank) == before
    # Exactly the available amount is allowed and leaves the balance at minus the limit.
    bank.transfer(
        alice.id,
        current.id,
        current.available,
        to_account_id=savings.id,
        request_id="all",
        today=TODAY,
    )
    assert bank.account(alice.id, current.id).balance == -current.overdraft_limit


def test_the_database_itself_rejects_a_balance_below_the_limit(bank):
    alice, current, _ = _alice(bank)
    with pytest.raises(Exception) as info:
        bank.execute(
            "UPDATE accounts SET balance = ? WHERE id = ?",
            (-current.overdraft_limit - 1, current.id),
        )
    assert "check" in str(info.value).lower() or "constraint" in str(info.value).lower()
    assert bank.account(alice.id, current.id).balance == current.balance


def test_a_failure_midway_leaves_no_rows(bank, monkeypatch):
    alice, current, savings = _alice(bank)
    before = _snapshot(bank)

    def broken_credit(*args, **kwargs):
        raise RuntimeError("power cut between debit and credit")

    monkeypatch.setattr(bank, "_credit", broken_credit)
    with pytest.raises(RuntimeError):
        bank.transfer(
            alice.id, current.id, 500, to_account_id=savings.id, request_id="cut", today=TODAY
        )
    assert _snapshot(bank) == before


def test_concurrent_sessions_cannot_overspend(bank_url):
    with open_bank(bank_url, today=TODAY) as bank:
        alice, current, savings = _alice(bank)
    amount = current.available // 2 + 100  # either fits alone, both together do not
    outcomes: list[str] = []

    def spend(tag: str) -> None:
        with open_bank(bank_url, today=TODAY) as db:
            try:
                db.transfer(
                    alice.id,
                    current.id,
                    amount,
                    to_account_id=savings.id,
                    request_id=tag,
                    today=TODAY,
                )
                outcomes.append("ok")
            except InsufficientFundsError:
                outcomes.append("refused")

    threads = [threading.Thread(target=spend, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    with open_bank(bank_url, today=TODAY) as bank:
        assert bank.account(alice.id, current.id).balance == current.balance - amount


def test_concurrent_double_confirmation_moves_money_once(bank_url):
    with open_bank(bank_url, today=TODAY) as bank:
        alice, current, savings = _alice(bank)
    receipts = []

    def confirm() -> None:
        with open_bank(bank_url, today=TODAY) as db:
            receipts.append(
                db.transfer(
                    alice.id,
                    current.id,
                    700,
                    to_account_id=savings.id,
                    request_id="dup",
                    today=TODAY,
                )
            )

    threads = [threading.Thread(target=confirm) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.transfer_id for r in receipts}) == 1
    assert sum(not r.duplicate for r in receipts) == 1
    with open_bank(bank_url, today=TODAY) as bank:
        assert bank.count("transfers") == 1
        assert bank.account(alice.id, current.id).balance == current.balance - 700


def test_future_transfers_are_scheduled_and_move_nothing_yet(bank):
    alice, current, savings = _alice(bank)
    receipt = bank.transfer(
        alice.id, current.id, 900, to_account_id=savings.id, request_id="later",
        on_date=TODAY + dt.timedelta(days=3), today=TODAY,
    )  # fmt: skip
    assert receipt.status == "scheduled"
    assert bank.account(alice.id, current.id).balance == current.balance


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"amount": 0}, BankError),
        ({"amount": -50}, BankError),
        ({"on_date": TODAY - dt.timedelta(days=1)}, BankError),
        ({"to_other_customer": True}, NotFoundError),
        ({"to_self": True}, BankError),
    ],
)
def test_bad_transfers_are_refused_and_change_nothing(bank, kwargs, error):
    kwargs = dict(kwargs)  # parametrize shares the dict between the two databases
    alice, current, savings = _alice(bank)
    raj = bank.customer_by_number("20486419")
    to = savings.id
    if kwargs.pop("to_other_customer", False):
        to = bank.accounts(raj.id)[0].id
    if kwargs.pop("to_self", False):
        to = current.id
    before = _snapshot(bank)
    args = {"amount": 100} | kwargs
    with pytest.raises(error):
        bank.transfer(alice.id, current.id, args["amount"], to_account_id=to, request_id="bad",
                      on_date=args.get("on_date"), today=TODAY)  # fmt: skip
    assert _snapshot(bank) == before


def test_history_filters_by_merchant_and_dates(bank):
    alice, current, _ = _alice(bank)
    week = bank.transactions(
        alice.id, merchant="tesco", since=TODAY - dt.timedelta(days=7), until=TODAY
    )
    assert week and all(t.merchant == "Tesco" and t.amount < 0 for t in week)
    assert all(t.posted_at[:10] >= (TODAY - dt.timedelta(days=7)).isoformat() for t in week)
    everything = bank.transactions(alice.id, merchant="tesco", limit=1000)
    assert len(everything) > len(week)
    assert bank.transactions(alice.id, merchant="'; DROP TABLE accounts; --") == []
    assert bank.count("accounts") == 5


def test_card_freeze_is_recorded_once(bank):
    alice = bank.customer_by_number("20481357")
    card = bank.cards(alice.id)[0]
    assert card.status == "active"
    assert bank.set_card_status(alice.id, card.id, "frozen", request_id="f1").status == "frozen"
    assert bank.set_card_status(alice.id, card.id, "frozen", request_id="f1").status == "frozen"
    assert bank.count("card_events") == 1
    raj = bank.customer_by_number("20486419")
    with pytest.raises(NotFoundError):
        bank.set_card_status(raj.id, card.id, "frozen", request_id="f2")


def test_logs_never_show_full_account_numbers(bank, caplog):
    alice, current, savings = _alice(bank)
    with caplog.at_level(logging.DEBUG, logger="duetto.bank"):
        bank.transfer(
            alice.id, current.id, 100, to_account_id=savings.id, request_id="log", today=TODAY
        )
    assert caplog.records, "the transfer should be logged"
    assert current.number not in caplog.text and current.number[-4:] in caplog.text


def test_unusable_database_paths_give_clear_errors(tmp_path):
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("this is not a database\n" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite database|file is not a database"):
        open_bank(not_a_db)
    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL"):
        open_bank("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
