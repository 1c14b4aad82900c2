"""Every error the server returns, in OpenAI's ``{"error": {...}}`` shape, decided in one place.

HTTP handlers and the realtime WebSocket both call :func:`error_payload`, so a bad upload and a
bad realtime event are described the same way.
"""

from __future__ import annotations

from duetto.errors import DuettoError


class UploadTooLargeError(DuettoError):
    """The request body is larger than the server accepts."""

    http_status = 413
    code = "file_too_large"


class AuthenticationError(DuettoError):
    """The API key is missing or wrong."""

    http_status = 401
    code = "invalid_api_key"


class RealtimeEventError(DuettoError):
    """A realtime client event that cannot be used (bad JSON, unknown type, bad field)."""

    code = "invalid_event"


def error_type(status: int) -> str:
    """OpenAI's ``error.type`` for an HTTP status."""
    if status == 401:
        return "authentication_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def error_body(message: str, status: int, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}


def error_payload(exc: BaseException) -> tuple[int, dict]:
    """HTTP status and OpenAI-shaped body for any exception (unexpected ones become a 500)."""
    if isinstance(exc, DuettoError):
        return exc.http_status, error_body(str(exc), exc.http_status, exc.code)
    return 500, error_body(f"internal error: {type(exc).__name__}", 500, "internal_error")
