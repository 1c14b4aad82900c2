"""Synthesis straight to a file, chunk by chunk as the voice produces it (``duetto say``)."""

from __future__ import annotations

import time
from pathlib import Path

from duetto.config import TTSSettings
from duetto.errors import DuettoError
from duetto.tts import load_tts


def speak_to_file(
    text: str, path: str | Path, settings: TTSSettings | None = None, language: str | None = None
) -> dict:
    """Synthesize ``text`` into a 16-bit WAV at the voice's own rate; returns timing facts."""
    import soundfile as sf

    if not text.strip():
        raise DuettoError(
            "nothing to say: the text is empty", 'give some words, e.g. duetto say "Hello"'
        )
    settings = settings or TTSSettings()
    if not 0.25 <= settings.speed <= 4.0:
        raise DuettoError(f"speed {settings.speed} is out of range", "use 0.25 to 4.0")
    path = Path(path)
    if path.suffix.lower() != ".wav":
        raise DuettoError(f"output must be a .wav file, got '{path.name}'")
    tts = load_tts(settings, language=language)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    first_audio = None
    samples = 0
    with sf.SoundFile(
        str(path), "w", samplerate=tts.sample_rate, channels=1, subtype="PCM_16"
    ) as out:
        for chunk in tts.stream(text, speed=settings.speed):
            first_audio = first_audio or time.perf_counter()
            out.write(chunk)
            out.flush()
            samples += len(chunk)
    elapsed = time.perf_counter() - started
    seconds = samples / tts.sample_rate
    return {
        "path": str(path),
        "voice": tts.name,
        "sample_rate": tts.sample_rate,
        "seconds": round(seconds, 3),
        "first_audio_ms": round(((first_audio or time.perf_counter()) - started) * 1000, 1),
        "rtf": round(elapsed / seconds, 3) if seconds else None,
    }
