"""What clients may name: model ids (duetto's own and OpenAI's, as aliases) and voices.

OpenAI clients send OpenAI model and voice names; duetto serves each with its configured local
model, so existing code works unchanged. Anything else gets a 404 listing what is valid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from duetto.config import Settings, TTSSettings
from duetto.errors import ModelNotFoundError
from duetto.models import voice_dirs

TRANSCRIPTION = "transcription"
SPEECH = "speech"
CHAT = "chat"
REALTIME = "realtime"

# duetto's own id for each kind, then the OpenAI names it also answers to.
MODEL_IDS = {
    TRANSCRIPTION: ("duetto-asr", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"),
    SPEECH: ("duetto-tts", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"),
    CHAT: ("duetto-chat", "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-3.5-turbo"),
    REALTIME: (
        "duetto-realtime",
        "gpt-4o-realtime-preview",
        "gpt-4o-mini-realtime-preview",
        "gpt-realtime",
    ),
}

# OpenAI's voice names: all spoken by the configured voice (duetto bundles one English voice).
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer",
    "verse", "marin", "cedar",
)  # fmt: skip
BUNDLED_VOICE_NAMES = ("bundled", "joe", "en_US-joe-medium")

_CREATED = int(time.time())


@dataclass(frozen=True)
class ModelInfo:
    id: str
    kind: str
    backend: str

    def to_openai(self) -> dict:
        return {
            "id": self.id,
            "object": "model",
            "created": _CREATED,
            "owned_by": "duetto",
            "duetto": {"kind": self.kind, "backend": self.backend},
        }


def models(settings: Settings) -> list[ModelInfo]:
    backends = {
        TRANSCRIPTION: f"faster-whisper:{settings.asr.model}",
        SPEECH: f"{settings.tts.backend}:{settings.tts.voice}",
        CHAT: f"openai-compatible:{settings.llm.url}"
        if settings.llm.url
        else f"llama.cpp:{settings.llm.model}",
        REALTIME: "duetto voice pipeline (VAD -> ASR -> LLM -> TTS)",
    }
    return [ModelInfo(i, kind, backends[kind]) for kind, ids in MODEL_IDS.items() for i in ids]


def find_model(settings: Settings, model_id: str) -> ModelInfo:
    for info in models(settings):
        if info.id == model_id:
            return info
    raise ModelNotFoundError(
        f"model '{model_id}' does not exist",
        f"valid models: {', '.join(m.id for m in models(settings))}",
    )


def check_model(settings: Settings, model_id: str, kind: str) -> None:
    """Raise a 404 unless ``model_id`` names a model of ``kind``."""
    if model_id not in MODEL_IDS[kind]:
        raise ModelNotFoundError(
            f"model '{model_id}' does not exist for {kind}",
            f"valid models: {', '.join(MODEL_IDS[kind])}",
        )


def voices(settings: Settings) -> list[str]:
    """Voice names a client may ask for (never file paths: clients must not pick server files)."""
    names = list(OPENAI_VOICES)
    if settings.tts.backend == "piper":
        names += BUNDLED_VOICE_NAMES
        for folder in voice_dirs():
            if folder.is_dir():
                names += sorted(p.stem for p in folder.glob("*.onnx"))
    else:
        names.append(settings.tts.voice)
    return list(dict.fromkeys(names))


def tts_settings_for(settings: Settings, voice: str) -> TTSSettings:
    """The TTS settings that speak ``voice``; a 404 listing the valid voices otherwise."""
    valid = voices(settings)
    if voice not in valid:
        raise ModelNotFoundError(
            f"voice '{voice}' does not exist", f"valid voices: {', '.join(valid)}"
        )
    if voice in OPENAI_VOICES or voice == settings.tts.voice:
        return settings.tts
    if voice in BUNDLED_VOICE_NAMES:
        voice = "bundled"  # one name, so the voice is loaded once
    return TTSSettings(backend=settings.tts.backend, voice=voice, speed=settings.tts.speed)
