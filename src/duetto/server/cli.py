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
        default=os.environ.get("DUETTO_API_KEY"),
        help="require this key as 'Authorization: Bearer KEY' on /v1/ (default $DUETTO_API_KEY)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default 25)"
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
    if args.max_upload_mb <= 0:
        raise DuettoError("--max-upload-mb must be positive")
    _check_port_free(args.host, args.port)
    started = time.perf_counter()
    settings = settings_from_args(args)
    engine, seconds = load_engine(settings)
    config = ServerConfig(
        api_key=args.api_key or None,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        default_agent=args.agent,
    )
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
        "auth_required": bool(config.api_key),
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
