"""Who answers a realtime session: the default LLM assistant, or an application's agent.

An application offers an agent by defining ``server_agent(settings) -> Responder`` in the module
named in :data:`ENTRY_POINTS`; the server lists it only when that module imports. Clients pick
one with ``?agent=NAME`` on the WebSocket URL or ``"agent"`` in ``session.update``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from duetto.config import Settings
from duetto.dialogue import Responder
from duetto.server.state import AgentFactory

DEFAULT_AGENT = "assistant"

# name -> "module:function"; the applications sit on the engine, so they are looked up lazily.
ENTRY_POINTS = {
    "bank": "duetto.apps.bank.server:server_agent",
}


def assistant(settings: Settings) -> Responder:
    """The general voice assistant: the configured LLM with memory (``duetto chat``'s responder)."""
    from duetto.dialogue import Conversation

    return Conversation.from_settings(settings)


def available_agents(extra: Mapping[str, AgentFactory] | None = None) -> dict[str, AgentFactory]:
    agents: dict[str, AgentFactory] = {DEFAULT_AGENT: assistant}
    for name, target in ENTRY_POINTS.items():
        module_name, _, attr = target.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            continue  # that application is not installed or does not offer a server agent
        if factory is not None:
            agents[name] = factory
    agents.update(extra or {})
    return agents
