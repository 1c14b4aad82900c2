"""The FastAPI app: OpenAI-compatible routes, the realtime WebSocket, the web page, health and
metrics, with access control, upload limits and OpenAI-shaped errors around them all."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from duetto import __version__
from duetto.config import Settings, load_settings
from duetto.errors import DuettoError
from duetto.server import openai_routes, realtime
from duetto.server.agents import available_agents
from duetto.server.errors import (
    AuthenticationError,
    UploadTooLargeError,
    error_body,
    error_headers,
    error_payload,
)
from duetto.server.limits import client_id
from duetto.server.state import AgentFactory, ServerConfig, ServerState, get_state

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"

DESCRIPTION = """
Streaming voice dialogue on a laptop CPU, with OpenAI-compatible endpoints.

* `POST /v1/audio/transcriptions`, `POST /v1/audio/speech`, `POST /v1/chat/completions`,
  `GET /v1/models`: point the official `openai` client's `base_url` here.
* `WS /v1/realtime`: realtime voice sessions in a subset of OpenAI's Realtime protocol
  (not listed below: OpenAPI has no WebSockets; see docs/realtime.md).
* `GET /`: a page to talk to the agent from the microphone. `GET /metrics`: Prometheus.
"""


def load_engine(settings: Settings):
    """Load ASR, TTS and LLM side by side (they mostly wait on disk), then build the Engine."""
    from duetto.asr import load_asr
    from duetto.llm import load_llm
    from duetto.talk import Engine, engine_tts_settings
    from duetto.tts import load_tts

    jobs = {
        "asr": lambda: load_asr(settings.asr),
        # The very instance Engine.load asks for next, so it is loaded once.
        "tts": lambda: load_tts(engine_tts_settings(settings), language=settings.asr.language),
        "llm": lambda: load_llm(settings.llm),
    }
    seconds: dict[str, float] = {}

    def timed(name: str) -> None:
        started = time.perf_counter()
        jobs[name]()
        seconds[name] = round(time.perf_counter() - started, 3)

    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(timed, jobs))
    engine = Engine.load(settings)  # reuses the models loaded above
    return engine, seconds


def create_app(
    settings: Settings | None = None,
    config: ServerConfig | None = None,
    *,
    engine=None,
    agents: Mapping[str, AgentFactory] | None = None,
) -> FastAPI:
    """The duetto server. Models load at startup unless a loaded ``engine`` is given."""
    settings = settings or load_settings()
    config = config or ServerConfig.from_settings(settings.server)
    state = ServerState(settings, config, available_agents(agents))
    state.engine = engine

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.engine is None:
            state.engine, state.load_seconds = await run_in_threadpool(load_engine, settings)
        yield

    app = FastAPI(title="duetto", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.duetto = state
    _install_error_handlers(app)
    app.add_middleware(GatewayMiddleware)
    if config.cors_origins:  # off unless configured: no CORS header at all by default
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(  # outermost, so preflights and errors get their headers too
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After", "X-Sample-Rate"],
        )
    app.include_router(openai_routes.router)
    app.include_router(realtime.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", tags=["operations"], summary="Liveness and what is loaded")
    async def healthz(request: Request):
        state = get_state(request)
        return {
            "status": "ok",
            "version": __version__,
            "models": {
                "asr": state.settings.asr.model,
                "tts": f"{state.settings.tts.backend}:{state.settings.tts.voice}",
                "llm": state.settings.llm.url or state.settings.llm.model,
            },
            "load_seconds": state.load_seconds,
            "active_sessions": state.open_sessions,
            "auth_required": bool(state.config.keys),
            "agents": sorted(state.agents),
        }

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def metrics(request: Request):
        body, media_type = get_state(request).metrics.render()
        return Response(body, media_type=media_type)

    return app


# ----------------------------------------------------------------------------- errors
def _install_error_handlers(app: FastAPI) -> None:
    def respond(request: Request, status: int, body: dict, headers=None) -> JSONResponse:
        _count_error(request.scope, status, body)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(DuettoError)
    async def duetto_error(request: Request, exc: DuettoError):
        return respond(request, *error_payload(exc), error_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        first = problems[0] if problems else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        if first.get("type") == "missing":
            message = f"missing required field '{field}'"
        else:
            message = f"invalid value for '{field}': {first.get('msg', 'invalid')}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem(s))"
        return respond(request, 422, error_body(message, 422, "invalid_request", field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = (
            f"no route {request.method} {request.url.path}"
            if exc.status_code in codes
            else str(exc.detail)
        )
        body = error_body(message, exc.status_code, codes.get(exc.status_code, "http_error"))
        return respond(request, exc.status_code, body)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(request, *error_payload(exc))


def _route(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _count_error(scope, status: int, body: dict) -> None:
    state: ServerState = scope["app"].state.duetto
    state.metrics.errors.labels(_route(scope), body["error"].get("code") or str(status)).inc()


# ----------------------------------------------------------------------------- gateway
class GatewayMiddleware:
    """API key and upload size checks before any route runs; request metrics after."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: ServerState = scope["app"].state.duetto
        started = time.perf_counter()
        status_seen: list[int] = []

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_seen.append(message["status"])
                state.metrics.request_seconds.labels(_route(scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            receive = await self._guard(scope, receive, state)
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if status_seen:
                raise  # the response has started: too late to send an error instead
            if not isinstance(exc, DuettoError):
                log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            status, body = error_payload(exc)
            _count_error(scope, status, body)
            response = JSONResponse(body, status_code=status, headers=error_headers(exc))
            await response(scope, receive, send_wrapper)
        finally:
            status = status_seen[0] if status_seen else 500
            state.metrics.requests.labels(scope["method"], _route(scope), str(status)).inc()

    async def _guard(self, scope, receive, state: ServerState):
        if not scope["path"].startswith("/v1/"):
            return receive
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        key_ok = state.config.key_ok(key)
        # Before the key check, so guesses at a key spend their address's budget.
        state.limiter.take(client_id(key, key_ok, state.config.keys, scope.get("client")))
        if not key_ok:
            raise AuthenticationError(
                "missing or wrong API key",
                "send 'Authorization: Bearer KEY' (the client's api_key)",
            )
        limit = state.config.max_upload_bytes
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            if int(length) > limit:
                raise UploadTooLargeError(_too_large(int(length), limit))
            return receive
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return receive
        return await _bounded_body(receive, limit)


async def _bounded_body(receive, limit: int):
    """Read a body of unknown length (chunked) up to ``limit`` bytes, then replay it."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise UploadTooLargeError(_too_large(size, limit, at_least=True))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"request body of {more}{size / 1e6:.1f} MB is larger than the limit of {limit / 1e6:.1f} MB "
        "(split the audio, or start the server with a larger --max-upload-mb)"
    )
