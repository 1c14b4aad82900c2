"""Shared fixtures: real data from ../shared/data and real speech made by our own TTS."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DUETTO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def require_shared(*parts: str) -> Path:
    """A path under ../shared/data. Missing data fails under CI (CI=true) and skips elsewhere."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"shared data missing: {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def tts():
    """The bundled Piper voice, loaded once, without run-to-run variation: the speech a test
    feeds the engine is the same on every run, so what tiny.en hears of it is too."""
    from duetto.config import TTSSettings
    from duetto.tts import load_tts

    return load_tts(TTSSettings(variation=0.0))


@pytest.fixture(scope="session")
def speak(tts):
    """speak(text, speed=1.0) -> 16 kHz float32 speech made by the bundled voice (cached)."""
    from duetto.audio import SAMPLE_RATE, resample
    from duetto.tts import synthesize

    cache: dict[tuple[str, float], np.ndarray] = {}

    def _speak(text: str, speed: float = 1.0) -> np.ndarray:
        key = (text, speed)
        if key not in cache:
            cache[key] = resample(synthesize(tts, text, speed=speed), tts.sample_rate, SAMPLE_RATE)
        return cache[key]

    return _speak


def silence(seconds: float, sample_rate: int = 16_000) -> np.ndarray:
    return np.zeros(int(seconds * sample_rate), np.float32)
