"""Every error the server returns, in OpenAI's ``{"error": {...}}`` shape, decided in one place.

HTTP handlers and the realtime WebSocket both call :func:`error_payload`, so a bad upload and a
bad realtime event are described the same way.
"""

from __future__ import annotations

import re

from duetto.errors import DuettoError

# Absolute file paths (POSIX with two parts or more, Windows drive paths) in a message: server
# files are nobody's business, so they become "<path>" (routes like /v1/models stay).
_PATH = re.compile(r"(?<![\w:/.-])(?:/(?!v1/)[\w.@+-]+(?:/[\w.@+-]*)+|[A-Za-z]:\\[^\s'\"]+)")


class UploadTooLargeError(DuettoError):
    """The request body is larger than the server accepts."""

    http_status = 413
    code = "file_too_large"


class AuthenticationError(DuettoError):
    """The API key is missing or wrong."""

    http_status = 401
    code = "invalid_api_key"


class RateLimitError(DuettoError):
    """Too many requests from one API key (or address); ``retry_after`` says when to come back."""

    http_status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, hint: str | None = None, *, retry_after: int = 1):
        super().__init__(message, hint)
        self.headers = {"Retry-After": str(retry_after)}


class StageTimeoutError(DuettoError):
    """ASR, LLM or TTS had nothing to show within its timeout."""

    http_status = 504
    code = "stage_timeout"


class RealtimeEventError(DuettoError):
    """A realtime client event that cannot be used (bad JSON, unknown type, bad field)."""

    code = "invalid_event"


def error_type(status: int) -> str:
    """OpenAI's ``error.type`` for an HTTP status."""
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "requests"  # OpenAI's type for a requests-per-minute limit
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def scrub(message: str) -> str:
    """``message`` without file paths."""
    return _PATH.sub("<path>", message)


def error_body(message: str, status: int, code: str | None, param: str | None = None) -> dict:
    error = {"message": scrub(message), "type": error_type(status), "param": param, "code": code}
    return {"error": error}


def error_payload(exc: BaseException) -> tuple[int, dict]:
    """HTTP status and OpenAI-shaped body for any exception (unexpected ones become a 500 that
    names only the exception's type: no message, path or stack trace leaves the server)."""
    if isinstance(exc, DuettoError):
        return exc.http_status, error_body(str(exc), exc.http_status, exc.code)
    return 500, error_body(f"internal error: {type(exc).__name__}", 500, "internal_error")


def error_headers(exc: BaseException) -> dict[str, str] | None:
    """Extra response headers an error asks for (``Retry-After`` on a 429)."""
    return getattr(exc, "headers", None) if isinstance(exc, DuettoError) else None
