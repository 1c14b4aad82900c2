"""Demo customers, accounts, payees, cards and two months of transactions.

Seeded once, into an empty database. Transactions are dated relative to the day of seeding so
"what did I spend at Tesco last week?" has an answer whenever the demo is first run. The
customer numbers, passphrases and PINs below are public demo credentials (see docs/bank.md).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

# Days of history seeded before "today": enough for "last month" questions.
HISTORY_DAYS = 60
# Fixed seed: every fresh demo database holds the same transactions.
SEED = 77
SORT_CODE = "04-00-77"


@dataclass(frozen=True)
class DemoCustomer:
    number: str
    name: str
    passphrase: str
    pin: str
    # (kind, name, account number, balance pence, overdraft pence)
    accounts: tuple[tuple[str, str, str, int, int], ...]
    payees: tuple[tuple[str, str], ...]  # (name, account number)
    cards: tuple[tuple[str, str, int], ...]  # (kind, last 4 digits, index into accounts)


DEMO_CUSTOMERS = (
    DemoCustomer(
        "20481357", "Alice Morgan", "blue harbour", "4821",
        (("current", "current account", "31926048", 125_040, 50_000),
         ("savings", "savings account", "31926056", 500_000, 0)),
        (("Bob Smith", "55501234"), ("Sarah Morgan", "55507788"), ("British Gas", "70000123")),
        (("debit", "4417", 0), ("credit", "9032", 0)),
    ),
    DemoCustomer(
        "20486419", "Raj Patel", "green valley", "1357",
        (("current", "current account", "42117730", 8_520, 0),
         ("savings", "savings account", "42117749", 120_000, 0)),
        (("Priya Patel", "55509911"), ("Thames Water", "70000456")),
        (("debit", "2290", 0),),
    ),
    DemoCustomer(
        "20487735", "Chen Li", "silver moon", "2468",
        (("current", "current account", "58830012", 43_210, 20_000),),
        (("Wei Li", "55503344"),),
        (("debit", "7781", 0),),
    ),
)  # fmt: skip

# (merchant, category, typical spend in pence, visits per week)
MERCHANTS = (
    ("Tesco", "groceries", 3_400, 1.5),
    ("Sainsbury's", "groceries", 2_800, 0.7),
    ("Pret A Manger", "eating out", 650, 2.0),
    ("TfL", "transport", 280, 4.0),
    ("Amazon", "shopping", 2_300, 0.6),
    ("Shell", "fuel", 5_200, 0.4),
    ("Netflix", "entertainment", 1_099, 0.25),
    ("Boots", "health", 900, 0.4),
)


def seed_demo(bank, today: dt.date | None = None) -> bool:
    """Seed the demo data if the database has no customers; returns True when it seeded."""
    if bank.count("customers"):
        return False
    today = today or dt.date.today()
    rng = random.Random(SEED)
    with bank.transaction():
        bank.lock_schema()
        if bank.count("customers"):  # another process seeded while we waited for the lock
            return False
        for demo in DEMO_CUSTOMERS:
            customer = bank.add_customer(demo.number, demo.name, demo.passphrase, demo.pin)
            account_ids = []
            for kind, name, number, balance, overdraft in demo.accounts:
                row = bank.execute(
                    "INSERT INTO accounts (customer_id, kind, name, number, sort_code, balance, overdraft_limit) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (customer.id, kind, name, number, SORT_CODE, balance, overdraft),
                ).fetchone()
                account_ids.append(int(row[0]))
            for name, number in demo.payees:
                bank.execute(
                    "INSERT INTO payees (customer_id, name, account_number, sort_code) VALUES (?, ?, ?, ?)",
                    (customer.id, name, number, "20-00-00"),
                )
            for kind, last4, index in demo.cards:
                bank.execute(
                    "INSERT INTO cards (customer_id, account_id, kind, last4) VALUES (?, ?, ?, ?)",
                    (customer.id, account_ids[index], kind, last4),
                )
            _seed_history(bank, account_ids[0], today, rng)
    return True


def _seed_history(bank, account_id: int, today: dt.date, rng: random.Random) -> None:
    rows = []
    for back in range(HISTORY_DAYS, 0, -1):
        day = today - dt.timedelta(days=back)
        if day.day == 25:
            rows.append((day, 9, 240_000, "ACME Ltd salary", None, "income"))
        for merchant, category, typical, per_week in MERCHANTS:
            if rng.random() < per_week / 7:
                amount = max(100, int(rng.gauss(typical, typical * 0.3)))
                rows.append(
                    (
                        day,
                        rng.randint(8, 20),
                        -amount,
                        f"Card payment to {merchant}",
                        merchant,
                        category,
                    )
                )
    # Always one Tesco shop three days ago, so the demo question has an answer.
    rows.append(
        (today - dt.timedelta(days=3), 18, -4_215, "Card payment to Tesco", "Tesco", "groceries")
    )
    for day, hour, amount, description, merchant, category in rows:
        posted = dt.datetime.combine(day, dt.time(hour, rng.randint(0, 59))).isoformat(
            timespec="seconds"
        )
        bank.execute(
            "INSERT INTO transactions (account_id, posted_at, amount, description, merchant, category) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, posted, amount, description, merchant, category),
        )
