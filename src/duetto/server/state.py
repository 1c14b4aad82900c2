"""What one server process holds: settings, limits, the loaded engine, metrics and agents."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from duetto.config import Settings
from duetto.dialogue import Responder
from duetto.server.metrics import Metrics

# OpenAI's own upload limit for audio files.
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
# One realtime client event at most this big: 4 MiB of base64 is ~60 s of 24 kHz PCM16, far
# more than a client sends at once; larger frames get an error event and are dropped.
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024
# uvicorn closes the connection on frames above this (1009); keep it above the event limit so a
# merely oversize event gets a polite error instead.
WS_MAX_FRAME_BYTES = 16 * 1024 * 1024
# Events waiting for a realtime client that does not read, before the session is closed:
# ~60 s of reply audio at 24 kHz PCM16 in base64.
DEFAULT_MAX_OUTBOX_BYTES = 4 * 1024 * 1024

# name -> factory(settings) -> Responder (the agent that answers a realtime session)
AgentFactory = Callable[[Settings], Responder]


@dataclass
class ServerConfig:
    """Limits and access control of one server."""

    api_key: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES
    default_agent: str = "assistant"

    def key_ok(self, given: str | None) -> bool:
        """True when no key is required, or ``given`` matches it (in constant time)."""
        if not self.api_key:
            return True
        return given is not None and hmac.compare_digest(
            given.encode("utf-8"), self.api_key.encode("utf-8")
        )


@dataclass
class ServerState:
    settings: Settings
    config: ServerConfig
    agents: Mapping[str, AgentFactory]
    metrics: Metrics = field(default_factory=Metrics)
    engine: object | None = None  # duetto.talk.Engine once loaded
    load_seconds: dict = field(default_factory=dict)
    open_sessions: int = 0  # realtime sessions connected now


def get_state(conn: HTTPConnection) -> ServerState:
    return conn.app.state.duetto
