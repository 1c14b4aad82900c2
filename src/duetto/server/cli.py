"""``duetto serve``: the HTTP + WebSocket server on the embedded models."""

from __future__ import annotations

import json
import os
import sys
import time

from duetto.errors import DuettoError, MissingExtraError

# Local by default: the server has no TLS, and an open port should be a choice.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(sub) -> None:
    from duetto.cli import add_settings_flags

    p = sub.add_parser(
        "serve",
        help="serve OpenAI-compatible speech endpoints, realtime voice sessions and a web page",
        description=(
            "Serve /v1/audio/transcriptions, /v1/audio/speech, /v1/chat/completions, /v1/models, "
            "the realtime WebSocket /v1/realtime, a web page to talk from the microphone at /, "
            "OpenAPI docs at /docs, /healthz and Prometheus /metrics."
        ),
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--api-key",
        action="append",
        help="require this key as 'Authorization: Bearer KEY' on /v1/; repeat for several keys, "
        "each with its own rate limit (default: $DUETTO_API_KEY, comma-separated)",
    )
    limits = p.add_argument_group("limits (also [server] in the config file, $DUETTO_SERVER_*)")
    limits.add_argument("--max-upload-mb", type=float, help="largest request body (default 25)")
    limits.add_argument(
        "--max-audio-s", type=float, help="longest audio a transcription accepts (default 600)"
    )
    limits.add_argument(
        "--rate-limit",
        type=int,
        help="requests per minute per API key, or per address without keys; 0 = off (default 120)",
    )
    limits.add_argument("--asr-timeout", type=float, help="seconds ASR may take (default 120)")
    limits.add_argument("--llm-timeout", type=float, help="seconds the LLM may be silent (60)")
    limits.add_argument("--tts-timeout", type=float, help="seconds TTS may be silent (60)")
    limits.add_argument(
        "--cors-origins",
        help="browser origins allowed to call the API, comma-separated or '*' (default: none, "
        "no CORS headers)",
    )
    p.add_argument(
        "--agent", default="assistant", help="agent for realtime sessions that name none"
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument("--json", action="store_true", help="print the startup facts as JSON")
    add_settings_flags(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from duetto.server.app import create_app, load_engine
        from duetto.server.state import WS_MAX_FRAME_BYTES, ServerConfig
    except ImportError:
        raise MissingExtraError("duetto serve", "server") from None
    from duetto.cli import settings_from_args

    if not 0 < args.port < 65536:
        raise DuettoError(f"port {args.port} is out of range", "use 1 to 65535")
    settings = settings_from_args(args)
    _apply_limit_flags(settings, args)
    config = ServerConfig.from_settings(
        settings.server, _api_keys(args.api_key), default_agent=args.agent
    )
    _check_port_free(args.host, args.port)
    started = time.perf_counter()
    engine, seconds = load_engine(settings)
    app = create_app(settings, config, engine=engine)
    state = app.state.duetto
    state.load_seconds = seconds
    if args.agent not in state.agents:
        raise DuettoError(
            f"unknown agent '{args.agent}'", f"valid agents: {', '.join(sorted(state.agents))}"
        )
    facts = {
        "url": f"http://{args.host}:{args.port}",
        "load_seconds": seconds,
        "ready_after_s": round(time.perf_counter() - started, 2),
        "auth_required": bool(config.keys),
        "agents": sorted(state.agents),
    }
    if args.json:
        print(json.dumps(facts), flush=True)
    else:
        print(
            f"duetto: models loaded in {facts['ready_after_s']:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in seconds.items())}); "
            f"open {facts['url']}/ to talk, {facts['url']}/docs for the API",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_max_size=WS_MAX_FRAME_BYTES,
    )
    return 0


# flag -> [server] setting
LIMIT_FLAGS = {
    "max_upload_mb": "max_upload_mb",
    "max_audio_s": "max_audio_s",
    "rate_limit": "rate_limit_per_min",
    "asr_timeout": "asr_timeout_s",
    "llm_timeout": "llm_timeout_s",
    "tts_timeout": "tts_timeout_s",
    "cors_origins": "cors_origins",
}


def _apply_limit_flags(settings, args) -> None:
    for flag, key in LIMIT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            settings.override("server", key, value)
    server = settings.server
    for key in ("max_upload_mb", "max_audio_s", "asr_timeout_s", "llm_timeout_s", "tts_timeout_s"):
        if getattr(server, key) <= 0:
            flag = next(f for f, k in LIMIT_FLAGS.items() if k == key).replace("_", "-")
            raise DuettoError(f"--{flag} must be positive, got {getattr(server, key)}")
    if server.rate_limit_per_min < 0:
        raise DuettoError("--rate-limit must be 0 (off) or more")


def _api_keys(flags: list[str] | None) -> tuple[str, ...]:
    given = flags if flags else os.environ.get("DUETTO_API_KEY", "").split(",")
    return tuple(k.strip() for k in given if k.strip())


def _check_port_free(host: str, port: int) -> None:
    """Fail in a second, before the models load, when the address cannot be used."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise DuettoError(
            f"unknown host '{host}'", "use an address such as 127.0.0.1 or 0.0.0.0"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise DuettoError(
                f"cannot listen on {host}:{port}: {exc.strerror}", "pick another --port"
            ) from None
