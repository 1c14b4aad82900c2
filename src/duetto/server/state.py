"""What one server process holds: settings, limits, the loaded engine, metrics and agents."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from duetto.config import ServerSettings, Settings
from duetto.dialogue import Responder
from duetto.safety.hardening import check_api_key
from duetto.server.limits import RateLimiter
from duetto.server.metrics import Metrics

_DEFAULTS = ServerSettings()
DEFAULT_MAX_UPLOAD_BYTES = int(_DEFAULTS.max_upload_mb * 1024 * 1024)
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
    """Limits and access control of one server (defaults: :class:`duetto.config.ServerSettings`)."""

    api_key: str | None = None
    api_keys: tuple[str, ...] = ()  # more keys, each with its own rate limit
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES
    max_audio_s: float = _DEFAULTS.max_audio_s
    rate_limit_per_min: int = _DEFAULTS.rate_limit_per_min
    asr_timeout_s: float = _DEFAULTS.asr_timeout_s
    llm_timeout_s: float = _DEFAULTS.llm_timeout_s
    tts_timeout_s: float = _DEFAULTS.tts_timeout_s
    cors_origins: tuple[str, ...] = ()
    default_agent: str = "assistant"

    @classmethod
    def from_settings(cls, server: ServerSettings, api_keys=(), **extra) -> ServerConfig:
        """The limits of ``[server]`` settings, with the given keys."""
        origins = tuple(o.strip() for o in server.cors_origins.split(",") if o.strip())
        return cls(
            api_keys=tuple(k for k in api_keys if k),
            max_upload_bytes=int(server.max_upload_mb * 1024 * 1024),
            max_audio_s=server.max_audio_s,
            rate_limit_per_min=server.rate_limit_per_min,
            asr_timeout_s=server.asr_timeout_s,
            llm_timeout_s=server.llm_timeout_s,
            tts_timeout_s=server.tts_timeout_s,
            cors_origins=origins,
            **extra,
        )

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.api_key, *self.api_keys) if k)

    def key_ok(self, given: str | None) -> bool:
        """True when no key is required, or ``given`` is one of the keys (in constant time)."""
        keys = self.keys
        return not keys or check_api_key(given, keys)


@dataclass
class ServerState:
    settings: Settings
    config: ServerConfig
    agents: Mapping[str, AgentFactory]
    metrics: Metrics = field(default_factory=Metrics)
    engine: object | None = None  # duetto.talk.Engine once loaded
    load_seconds: dict = field(default_factory=dict)
    open_sessions: int = 0  # realtime sessions connected now
    limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = RateLimiter(self.config.rate_limit_per_min)


def get_state(conn: HTTPConnection) -> ServerState:
    return conn.app.state.duetto
