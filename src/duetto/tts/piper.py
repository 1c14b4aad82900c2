"""Piper (VITS, ONNX) backend. GPL-3.0: only this module imports ``piper``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from duetto.errors import MissingExtraError, ModelNotFoundError
from duetto.models import onnx_session, piper_voice


class PiperTTS:
    def __init__(self, voice: str = "bundled", variation: float = 1.0, threads: int = 0):
        try:
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError:
            raise MissingExtraError("Piper TTS", "piper") from None
        path = piper_voice(voice)
        started = time.perf_counter()
        try:
            # What PiperVoice.load does, with our session options (its loader takes none).
            config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text("utf-8")))
            self.voice = PiperVoice(config=config, session=_session(path, threads))
        except Exception as exc:  # noqa: BLE001 - any load failure means "not a usable voice"
            raise ModelNotFoundError(f"could not load Piper voice {path}: {exc}") from None
        self.load_seconds = time.perf_counter() - started
        self.sample_rate = self.voice.config.sample_rate
        self.name = path.stem
        config = self.voice.config
        self.noise_scale = config.noise_scale * max(variation, 0.0)
        self.noise_w_scale = config.noise_w_scale * max(variation, 0.0)
        # onnxruntime sessions are thread-safe, but phonemization through espeak is not.
        self._lock = threading.Lock()

    def stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        from piper import SynthesisConfig

        if not text.strip():
            return
        config = SynthesisConfig(
            length_scale=1.0 / max(speed, 0.1),
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w_scale,
            volume=0.8,
        )
        with self._lock:
            chunks = self.voice.synthesize(text, config)
            for chunk in chunks:
                yield chunk.audio_float_array


def _session(path, threads: int):
    """The voice's ONNX model on ``threads`` intra-op threads (0: onnxruntime's defaults)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return onnx_session(path, options)
