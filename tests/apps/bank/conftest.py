"""Bank fixtures: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ``DUETTO_TEST_PG_DSN`` (``scripts/start-postgres.sh`` starts a throwaway
server and prints it). Without it the PostgreSQL variants skip locally and FAIL under CI=true.
Each test gets its own PostgreSQL schema, dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from urllib.parse import quote

import pytest

PG_ENV = "DUETTO_TEST_PG_DSN"
# A fixed "today" so seeded history and date questions are reproducible.
TODAY = dt.date(2026, 11, 20)


def _pg_dsn() -> str:
    dsn = os.environ.get(PG_ENV)
    if not dsn:
        message = (
            f'{PG_ENV} is not set (start a server with: eval "$(bash scripts/start-postgres.sh)")'
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def bank_url(request, tmp_path):
    """A database URL for a fresh, empty bank: a SQLite file or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "bank.sqlite3")
        return
    dsn = _pg_dsn()
    import psycopg

    schema = "bank_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    yield f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def bank(bank_url):
    from duetto.apps.bank.db import open_bank

    db = open_bank(bank_url, today=TODAY)
    yield db
    db.close()
