"""One small hierarchy of errors. Each message says what is wrong and what to do.

The CLI turns any :class:`DuettoError` into one line on stderr and exit status 2; the server
turns it into an HTTP error with :attr:`DuettoError.http_status`.
"""

from __future__ import annotations


class DuettoError(Exception):
    """Base class for every error duetto raises on purpose."""

    http_status = 400
    code = "invalid_request"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class AudioFormatError(DuettoError):
    """The bytes are not audio we can decode: wrong format, truncated or corrupt."""

    code = "invalid_audio"


class EmptyAudioError(AudioFormatError):
    """The audio decodes but holds no samples."""

    code = "empty_audio"


class AudioTooLongError(DuettoError):
    """The audio lasts longer than the caller accepts (e.g. the server's --max-audio-s)."""

    http_status = 413
    code = "audio_too_long"


class NoSpeechError(DuettoError):
    """The audio holds no speech the VAD could find."""

    code = "no_speech"


class ModelNotFoundError(DuettoError):
    """A model, voice or file named by the user does not exist."""

    http_status = 404
    code = "model_not_found"


class MissingExtraError(DuettoError):
    """A backend needs an optional extra that is not installed."""

    http_status = 501
    code = "missing_extra"

    def __init__(self, what: str, extra: str):
        super().__init__(
            f"{what} needs the optional extra 'duetto[{extra}]'",
            f"install it with: pip install 'duetto[{extra}]'",
        )


class LLMConnectionError(DuettoError):
    """The LLM server cannot be reached or answered with an error."""

    http_status = 502
    code = "llm_unavailable"


class ConfigError(DuettoError):
    """A setting has a wrong name, type or value."""

    code = "invalid_config"


class DeviceError(DuettoError):
    """No audio input or output device is available."""

    code = "no_audio_device"
