"""The bank agent as a choice of ``duetto serve`` (``?agent=bank``): one call per session.

The database is the one ``duetto bank`` uses (``$DUETTO_BANK_DB``, else the user's data folder),
created and seeded on first use.
"""

from __future__ import annotations

from duetto.config import Settings
from duetto.dialogue import Responder


def server_agent(settings: Settings) -> Responder:
    """A fresh call: its own identification, pending transfer and memory. Its turns are
    transcribed with the bank's ASR choices over the session's settings: its model
    (``BankResponder.asr_model``, loaded once beside the server's) and prompt, beam and n-best
    (``BankResponder.asr_options``)."""
    from duetto.apps.bank.cli import build_agent
    from duetto.apps.bank.responder import BankResponder

    return BankResponder(build_agent(db=None), settings.asr)
