"""Silero VAD v6 on onnxruntime, streaming, with the ONNX file faster-whisper ships.

Not the ``silero-vad`` package: it pulls in torch and torchaudio for what onnxruntime does alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from duetto.models import onnx_session

# Silero v6 at 16 kHz takes 512 new samples (32 ms) plus the 64 samples before them.
WINDOW = 512
CONTEXT = 64


def model_path() -> Path:
    import faster_whisper

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


class SileroVAD:
    window = WINDOW

    def __init__(self, path: str | Path | None = None):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        # One thread: a decision costs ~0.1 ms and must not compete with ASR and the LLM.
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self.session = onnx_session(path or model_path(), opts)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)

    def probability(self, window: np.ndarray) -> float:
        if len(window) != WINDOW:
            raise ValueError(f"Silero VAD takes windows of {WINDOW} samples, got {len(window)}")
        x = np.concatenate([self._context, window.astype(np.float32, copy=False)])[None, :]
        out, self._h, self._c = self.session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = x[0, -CONTEXT:]
        return float(np.asarray(out).reshape(-1)[0])
