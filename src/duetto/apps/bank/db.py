"""The demo bank's database: SQLite by default, PostgreSQL through a DSN.

:func:`open_bank` creates the schema (running any pending :mod:`migrations`) and seeds demo
customers on first use. Money moves only through :meth:`BankDB.transfer`, which is atomic (every
row or none), refuses to take an account below its overdraft limit (checked by the UPDATE itself
and again by a CHECK constraint) and is idempotent on ``request_id``: the same confirmation
applied twice moves money once and returns the first receipt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duetto.apps.bank.migrations import LATEST_VERSION, MIGRATIONS, render
from duetto.apps.bank.privacy import mask_number
from duetto.errors import ConfigError, DuettoError, MissingExtraError

log = logging.getLogger("duetto.bank")

DEFAULT_DB_ENV = "DUETTO_BANK_DB"
# PBKDF2 rounds for passphrases and PINs: slow enough to hinder offline guessing of a stolen
# file, fast enough that seeding a test database stays well under a second.
HASH_ROUNDS = 60_000
# SQLite waits this long for another writer before giving up (concurrent sessions on one file).
SQLITE_BUSY_TIMEOUT_S = 10.0


class BankError(DuettoError):
    """A banking operation was refused; the message is fit to say to the caller."""

    code = "bank_refused"


class InsufficientFundsError(BankError):
    code = "insufficient_funds"


class NotFoundError(BankError):
    code = "not_found"
    http_status = 404


@dataclass(frozen=True)
class Customer:
    id: int
    number: str
    name: str


@dataclass(frozen=True)
class Account:
    id: int
    customer_id: int
    kind: str
    name: str
    number: str
    sort_code: str
    currency: str
    balance: int  # pence
    overdraft_limit: int  # pence

    @property
    def available(self) -> int:
        """What can be spent now, in pence: balance plus the unused overdraft."""
        return self.balance + self.overdraft_limit

    @property
    def masked(self) -> str:
        return mask_number(self.number)


@dataclass(frozen=True)
class Payee:
    id: int
    customer_id: int
    name: str
    account_number: str
    sort_code: str


@dataclass(frozen=True)
class Card:
    id: int
    customer_id: int
    account_id: int
    kind: str
    last4: str
    status: str


@dataclass(frozen=True)
class Transaction:
    id: int
    account_id: int
    posted_at: str
    amount: int  # pence; negative = money out
    description: str
    merchant: str | None
    category: str | None


@dataclass(frozen=True)
class TransferReceipt:
    transfer_id: int
    request_id: str
    amount: int
    from_account_id: int
    to_account_id: int | None
    payee_id: int | None
    on_date: str
    status: str  # done | scheduled
    balance_after: int
    duplicate: bool  # True when this request_id had already been applied

    @property
    def reference(self) -> str:
        return f"TR{self.transfer_id:06d}"


def hash_secret(secret: str, salt: str) -> str:
    """PBKDF2-SHA256 of a normalised passphrase or PIN (case, spacing and punctuation ignored)."""
    normal = " ".join(re.sub(r"[^a-z0-9 ]", " ", secret.lower()).split())
    return hashlib.pbkdf2_hmac("sha256", normal.encode(), bytes.fromhex(salt), HASH_ROUNDS).hex()


def default_path() -> Path:
    """Where the SQLite file lives unless told otherwise: $DUETTO_BANK_DB or the user data dir."""
    env = os.environ.get(DEFAULT_DB_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "duetto" / "bank.sqlite3"


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class _SQLite:
    dialect = "sqlite"
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, path: str):
        if path != ":memory:":
            folder = Path(path).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the bank database folder {folder}: {exc}"
                ) from exc
        try:
            self.conn = sqlite3.connect(
                path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
            )
            self.conn.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                self.conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"{path} is not a usable SQLite database: {exc}", "give another --db path"
            ) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, tuple(params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two sessions never both read a balance
        # and then both spend it.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def lock_for_migration(self) -> None:
        pass  # BEGIN IMMEDIATE already serialises writers

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    dialect = "postgresql"

    def __init__(self, dsn: str):
        try:
            import psycopg
        except ImportError as exc:
            raise MissingExtraError("a PostgreSQL bank database", "bank") from exc
        self._psycopg = psycopg
        self.integrity_errors = (psycopg.errors.IntegrityError,)
        try:
            self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot connect to PostgreSQL: {first}", "check the DSN and that the server runs"
            ) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def lock_for_migration(self) -> None:
        # Two processes opening a fresh database at once must not both create the tables.
        self.conn.execute("SELECT pg_advisory_xact_lock(771177)")

    def close(self) -> None:
        self.conn.close()


def open_bank(
    url: str | Path | None = None, *, seed: bool = True, today: dt.date | None = None
) -> BankDB:
    """Open (creating, migrating and seeding if needed) the bank database.

    ``url``: ``postgresql://...`` for PostgreSQL, otherwise a SQLite file path (``:memory:``
    works); ``None`` uses :func:`default_path`.
    """
    target = str(url) if url is not None else str(default_path())
    backend = _Postgres(target) if is_postgres_url(target) else _SQLite(target)
    bank = BankDB(backend)
    try:
        bank.migrate()
        if seed:
            from duetto.apps.bank.seed import seed_demo

            seed_demo(bank, today=today)
    except BaseException:
        bank.close()
        raise
    return bank


class BankDB:
    """All reads and writes of the bank. One connection; use one instance per session/thread."""

    def __init__(self, backend: _SQLite | _Postgres):
        self._db = backend
        self.dialect = backend.dialect

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BankDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    def lock_schema(self) -> None:
        """Inside a transaction: keep other processes out of migrations and seeding."""
        self._db.lock_for_migration()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` placeholders on both databases)."""
        return self._db.execute(sql, params)

    def schema_version(self) -> int:
        row = self.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = 'schema_version'"
            if self.dialect == "postgresql"
            else "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not row[0]:
            return 0
        row = self.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self, target: int = LATEST_VERSION) -> list[int]:
        """Apply pending migrations up to ``target``; returns the versions applied."""
        applied = []
        with self.transaction():
            self.lock_schema()
            self.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = self.schema_version()
            if current > LATEST_VERSION:
                raise ConfigError(
                    f"the bank database is at schema version {current}, newer than this duetto ({LATEST_VERSION})",
                    "upgrade duetto or use another database",
                )
            for migration in MIGRATIONS:
                if current < migration.version <= target:
                    for statement in migration.statements:
                        self.execute(render(statement, self.dialect))
                    self.execute(
                        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                        (migration.version, migration.name, _now()),
                    )
                    applied.append(migration.version)
        if applied:
            log.info("bank database migrated to version %d", applied[-1])
        return applied

    # -- customers ---------------------------------------------------------------------------

    def add_customer(self, number: str, name: str, passphrase: str, pin: str) -> Customer:
        salt = secrets.token_hex(16)
        row = self.execute(
            "INSERT INTO customers (number, name, secret_salt, passphrase_hash, pin_hash) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (number, name, salt, hash_secret(passphrase, salt), hash_secret(pin, salt)),
        ).fetchone()
        return Customer(int(row[0]), number, name)

    def customer_by_number(self, number: str) -> Customer | None:
        row = self.execute(
            "SELECT id, number, name FROM customers WHERE number = ?", (number,)
        ).fetchone()
        return Customer(int(row[0]), row[1], row[2]) if row else None

    def check_secret(
        self, customer: Customer, *, passphrase: str | None = None, pin: str | None = None
    ) -> bool:
        """True when the passphrase or PIN matches (constant-time compare)."""
        row = self.execute(
            "SELECT secret_salt, passphrase_hash, pin_hash FROM customers WHERE id = ?",
            (customer.id,),
        ).fetchone()
        if row is None:
            return False
        salt, pass_hash, pin_hash = row
        ok = False
        if passphrase:
            ok |= secrets.compare_digest(hash_secret(passphrase, salt), pass_hash)
        if pin:
            ok |= secrets.compare_digest(hash_secret(pin, salt), pin_hash)
        return ok

    # -- reads -------------------------------------------------------------------------------

    _ACCOUNT_COLS = (
        "id, customer_id, kind, name, number, sort_code, currency, balance, overdraft_limit"
    )

    def accounts(self, customer_id: int) -> list[Account]:
        rows = self.execute(
            f"SELECT {self._ACCOUNT_COLS} FROM accounts WHERE customer_id = ? ORDER BY id",
            (customer_id,),
        ).fetchall()
        return [Account(*r) for r in rows]

    def account(self, customer_id: int, account_id: int) -> Account:
        row = self.execute(
            f"SELECT {self._ACCOUNT_COLS} FROM accounts WHERE id = ? AND customer_id = ?",
            (account_id, customer_id),
        ).fetchone()
        if row is None:
            raise NotFoundError("I can't find that account on your profile.")
        return Account(*row)

    def payees(self, customer_id: int) -> list[Payee]:
        rows = self.execute(
            "SELECT id, customer_id, name, account_number, sort_code FROM payees WHERE customer_id = ? ORDER BY name",
            (customer_id,),
        ).fetchall()
        return [Payee(*r) for r in rows]

    def cards(self, customer_id: int) -> list[Card]:
        rows = self.execute(
            "SELECT id, customer_id, account_id, kind, last4, status FROM cards WHERE customer_id = ? ORDER BY id",
            (customer_id,),
        ).fetchall()
        return [Card(*r) for r in rows]

    def transactions(
        self,
        customer_id: int,
        *,
        account_id: int | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        merchant: str | None = None,
        limit: int = 50,
    ) -> list[Transaction]:
        """Newest first. ``since``/``until`` are inclusive dates; ``merchant`` matches a substring."""
        where = ["a.customer_id = ?"]
        params: list[Any] = [customer_id]
        if account_id is not None:
            where.append("t.account_id = ?")
            params.append(account_id)
        if since is not None:
            where.append("t.posted_at >= ?")
            params.append(since.isoformat())
        if until is not None:
            where.append("t.posted_at < ?")
            params.append((until + dt.timedelta(days=1)).isoformat())
        if merchant:
            where.append("(LOWER(t.merchant) LIKE ? OR LOWER(t.description) LIKE ?)")
            pattern = "%" + merchant.lower().replace("%", "").replace("_", "") + "%"
            params += [pattern, pattern]
        params.append(int(limit))
        rows = self.execute(
            "SELECT t.id, t.account_id, t.posted_at, t.amount, t.description, t.merchant, t.category "
            "FROM transactions t JOIN accounts a ON a.id = t.account_id "
            f"WHERE {' AND '.join(where)} ORDER BY t.posted_at DESC, t.id DESC LIMIT ?",
            params,
        ).fetchall()
        return [Transaction(*r) for r in rows]

    def merchants(self, customer_id: int) -> list[str]:
        rows = self.execute(
            "SELECT DISTINCT t.merchant FROM transactions t JOIN accounts a ON a.id = t.account_id "
            "WHERE a.customer_id = ? AND t.merchant IS NOT NULL ORDER BY t.merchant",
            (customer_id,),
        ).fetchall()
        return [r[0] for r in rows]

    # -- writes ------------------------------------------------------------------------------

    def transfer(
        self,
        customer_id: int,
        from_account_id: int,
        amount: int,
        *,
        request_id: str,
        to_account_id: int | None = None,
        payee_id: int | None = None,
        on_date: dt.date | None = None,
        today: dt.date | None = None,
    ) -> TransferReceipt:
        """Move ``amount`` pence, once per ``request_id``.

        Today's transfers are applied at once (debit, credit for own accounts, and their
        transaction rows, in one database transaction). Future-dated ones are recorded as
        ``scheduled`` and move nothing yet. A repeated ``request_id`` returns the first receipt
        with ``duplicate=True`` and moves nothing.
        """
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise BankError("The amount must be more than zero.")
        if (to_account_id is None) == (payee_id is None):
            raise BankError(
                "A transfer needs exactly one destination: one of your accounts or a saved payee."
            )
        today = today or dt.date.today()
        on_date = on_date or today
        if on_date < today:
            raise BankError("I can't make a transfer in the past. Which date would you like?")

        with self.transaction():
            existing = self._receipt_for(request_id)
            if existing is not None:
                return existing
            source = self.account(customer_id, from_account_id)
            if to_account_id is not None:
                if to_account_id == from_account_id:
                    raise BankError("The money can't go to the account it comes from.")
                target = self.account(customer_id, to_account_id)
                label = f"Transfer to {target.name}"
            else:
                payee = self._payee(customer_id, payee_id)
                label = f"Transfer to {payee.name}"
            if amount > source.available:
                raise InsufficientFundsError(
                    f"Your {source.name} has {format_money(source.available)} available, "
                    f"not enough for {format_money(amount)}. Nothing has been moved."
                )
            status = "done" if on_date == today else "scheduled"
            row = self.execute(
                "INSERT INTO transfers (request_id, customer_id, from_account_id, to_account_id, payee_id, amount, on_date, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING RETURNING id",
                (
                    request_id,
                    customer_id,
                    from_account_id,
                    to_account_id,
                    payee_id,
                    amount,
                    on_date.isoformat(),
                    status,
                    _now(),
                ),
            ).fetchone()
            if row is None:  # a concurrent session applied the same request first
                existing = self._receipt_for(request_id)
                assert existing is not None
                return existing
            transfer_id = int(row[0])
            if status == "done":
                self._debit(source, amount, transfer_id, label)
                if to_account_id is not None:
                    self._credit(to_account_id, amount, transfer_id, f"Transfer from {source.name}")
            balance_after = self.account(customer_id, from_account_id).balance
        log.info(
            "transfer %s: %d pence from %s (%s)",
            f"TR{transfer_id:06d}",
            amount,
            source.masked,
            status,
        )
        return TransferReceipt(
            transfer_id, request_id, amount, from_account_id, to_account_id, payee_id,
            on_date.isoformat(), status, balance_after, duplicate=False,
        )  # fmt: skip

    def _payee(self, customer_id: int, payee_id: int | None) -> Payee:
        row = self.execute(
            "SELECT id, customer_id, name, account_number, sort_code FROM payees WHERE id = ? AND customer_id = ?",
            (payee_id, customer_id),
        ).fetchone()
        if row is None:
            raise NotFoundError("That payee isn't saved on your profile.")
        return Payee(*row)

    def _debit(self, source: Account, amount: int, transfer_id: int, label: str) -> None:
        # The WHERE clause is the overdraft rule: the row changes only if it stays within limit,
        # whatever another session did since we read the balance.
        cur = self.execute(
            "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance - ? >= -overdraft_limit",
            (amount, source.id, amount),
        )
        if cur.rowcount != 1:
            raise InsufficientFundsError(
                f"Your {source.name} doesn't have enough available for {format_money(amount)}. Nothing has been moved."
            )
        self._post(source.id, -amount, label, transfer_id)

    def _credit(self, account_id: int, amount: int, transfer_id: int, label: str) -> None:
        self.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, account_id))
        self._post(account_id, amount, label, transfer_id)

    def _post(self, account_id: int, amount: int, label: str, transfer_id: int | None) -> None:
        self.execute(
            "INSERT INTO transactions (account_id, posted_at, amount, description, merchant, category, transfer_id) "
            "VALUES (?, ?, ?, ?, NULL, 'transfer', ?)",
            (account_id, _now(), amount, label, transfer_id),
        )

    def _receipt_for(self, request_id: str) -> TransferReceipt | None:
        row = self.execute(
            "SELECT t.id, t.request_id, t.amount, t.from_account_id, t.to_account_id, t.payee_id, t.on_date, t.status, a.balance "
            "FROM transfers t JOIN accounts a ON a.id = t.from_account_id WHERE t.request_id = ?",
            (request_id,),
        ).fetchone()
        if row is None:
            return None
        return TransferReceipt(*row, duplicate=True)

    def set_card_status(
        self, customer_id: int, card_id: int, status: str, *, request_id: str
    ) -> Card:
        """Freeze, unfreeze ('active') or cancel a card; once per ``request_id``."""
        if status not in ("active", "frozen", "cancelled"):
            raise BankError(f"unknown card status {status!r}")
        with self.transaction():
            card = next((c for c in self.cards(customer_id) if c.id == card_id), None)
            if card is None:
                raise NotFoundError("I can't find that card on your profile.")
            if card.status == "cancelled" and status != "cancelled":
                raise BankError(
                    "That card has been cancelled and can't be reactivated. I can order a new one."
                )
            row = self.execute(
                "INSERT INTO card_events (request_id, card_id, event, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (request_id) DO NOTHING RETURNING id",
                (request_id, card_id, status, _now()),
            ).fetchone()
            if row is not None:
                self.execute("UPDATE cards SET status = ? WHERE id = ?", (status, card_id))
        log.info("card ending %s set to %s", card.last4, status)
        return next(c for c in self.cards(customer_id) if c.id == card_id)

    def record_handoff(self, customer_id: int | None, summary: str) -> int:
        row = self.execute(
            "INSERT INTO handoffs (customer_id, summary, created_at) VALUES (?, ?, ?) RETURNING id",
            (customer_id, summary, _now()),
        ).fetchone()
        return int(row[0])

    def count(self, table: str) -> int:
        """Rows in one of the bank's tables (for checks and tests)."""
        if table not in {
            "customers",
            "accounts",
            "payees",
            "cards",
            "transfers",
            "transactions",
            "card_events",
            "handoffs",
        }:
            raise BankError(f"unknown table {table!r}")
        return int(self.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def format_money(pence: int, currency: str = "GBP") -> str:
    """``-1234`` -> ``minus £12.34``; whole pounds drop the pence (``£60``)."""
    sign = "minus " if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    symbol = "£" if currency == "GBP" else currency + " "
    return f"{sign}{symbol}{pounds:,}" + (f".{rest:02d}" if rest else "")


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
