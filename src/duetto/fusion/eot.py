"""End-of-turn model: at a pause, how likely is it that the user's turn is over?

It reads the last seconds of audio (log-mel, energy, pitch: see :mod:`duetto.fusion.features`)
and the transcript so far (MiniLM on onnxruntime: :mod:`duetto.fusion.text`). The default
variant fuses the two branch nets late: a weighting of their logits learned on speakers neither
branch was trained on. Weights are trained by ``bench/train_eot.py`` and ship in ``duetto/fusion/data``.

The engine asks once per pause, when the VAD has heard :data:`DECISION_DELAY_S` of silence::

    model = EndOfTurnModel()
    p = model.probability(audio_last_seconds, transcript_so_far)
    wait = model.wait_seconds(p)   # end the turn if the silence lasts this long (from its start)

``wait_seconds`` minimizes the expected cost ``lam * P(mid-turn) * P(pause > w) + P(end) * w``
with the distribution of mid-turn pause lengths seen in training: a confident "finished" answers
at once, an unfinished sentence gets up to :data:`MAX_WAIT_S`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from duetto.errors import AudioFormatError, ConfigError, ModelNotFoundError
from duetto.fusion.features import SAMPLE_RATE, frame_features
from duetto.models import onnx_session

DATA_DIR = Path(__file__).parent / "data"
META_FILE = "eot.json"
VARIANTS = ("late", "gated", "xattn", "audio", "text")
DEFAULT_VARIANT = "late"
INPUTS = ("frames", "tokens", "token_mask", "sentence")
# The model is trained on audio that ends this far into a pause (the VAD's pause threshold).
DECISION_DELAY_S = 0.1
# The longest an agent should ever wait in silence before answering.
MAX_WAIT_S = 3.0
# Waits are chosen on a 20 ms grid: finer than anyone notices, coarse enough to be cheap.
WAIT_STEP_S = 0.02


def model_file(variant: str) -> str:
    return f"eot-{variant}.onnx"


@dataclass(frozen=True)
class TurnDecision:
    """What the model says at one pause."""

    probability: float  # that the turn is over
    wait_s: float  # silence (from the pause's start) after which to take the turn
    seconds: float  # time spent deciding


def survival_table(pauses: np.ndarray) -> dict:
    """Share of mid-turn pauses (seconds) longer than each wait of the grid."""
    grid = np.round(np.arange(DECISION_DELAY_S, MAX_WAIT_S + 1e-9, WAIT_STEP_S), 3)
    pauses = np.asarray(pauses, np.float64)
    share = [(pauses > w).mean() if len(pauses) else 0.0 for w in grid]
    return {"grid": grid.tolist(), "share": [round(float(s), 5) for s in share]}


def wait_for(probability: float, survival: dict, lam: float) -> float:
    """The wait minimizing ``lam * (1 - p) * P(pause > w) + p * w`` over the grid."""
    grid = np.asarray(survival["grid"])
    share = np.asarray(survival["share"])
    p = float(np.clip(probability, 1e-6, 1 - 1e-6))
    cost = lam * (1 - p) * share + p * grid
    return float(grid[int(np.argmin(cost))])


class EndOfTurnModel:
    """A trained end-of-turn model on onnxruntime (no torch).

    ``variant``: ``late`` (default: the audio and text nets' logits, weighted and calibrated on
    held-out speakers), ``gated`` (a learned gate between the two streams' hidden states),
    ``xattn`` (cross-attention between the two), ``audio`` or ``text`` alone (for comparison).
    """

    def __init__(
        self,
        variant: str = DEFAULT_VARIANT,
        path: str | Path | None = None,
        meta: dict | None = None,
        pause_s: float = DECISION_DELAY_S,
    ):
        import onnxruntime

        if variant not in VARIANTS:
            raise ConfigError(
                f"unknown end-of-turn model '{variant}'", f"use one of: {', '.join(VARIANTS)}"
            )
        path = Path(path or DATA_DIR / model_file(variant))
        if not path.is_file():
            raise ModelNotFoundError(
                f"end-of-turn model missing: {path}",
                "reinstall duetto, or train it with: python bench/train_eot.py train",
            )
        self.variant = variant
        self.pause_s = pause_s  # silence at the end of the audio given to silence_needed_ms
        self.meta = meta if meta is not None else _load_meta()
        self.survival = self.meta.get("survival") or survival_table(np.zeros(0))
        self.lam = float(self.meta.get("models", {}).get(variant, {}).get("lambda", 1.0))
        opts = onnxruntime.SessionOptions()
        # One thread: decisions are small, and the ASR and LLM need the other cores.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = onnx_session(path, opts)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self._text = None

    @property
    def uses_text(self) -> bool:
        return bool(self.inputs & {"tokens", "sentence"})

    @property
    def uses_audio(self) -> bool:
        return "frames" in self.inputs

    def text_encoder(self):
        if self._text is None:
            self._text = _shared_text_encoder()
        return self._text

    def probability(
        self, audio: np.ndarray, transcript: str = "", pause_s: float = DECISION_DELAY_S
    ) -> float:
        """P(turn over) from 16 kHz float32 audio ending ``pause_s`` into the pause, and the
        words heard so far. Audio beyond the model's 4 s window is ignored; longer silence at
        the end is trimmed to what the model was trained on."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        if not np.isfinite(audio).all():
            raise AudioFormatError(
                "the audio holds NaN or infinite samples", "pass float32 PCM in [-1, 1]"
            )
        extra = int(round(max(0.0, pause_s - DECISION_DELAY_S) * SAMPLE_RATE))
        if extra:
            audio = audio[: max(0, len(audio) - extra)]
        frames = frame_features(audio) if self.uses_audio else None
        tokens = sentence = None
        if self.uses_text:
            tokens, sentence = self.text_encoder().encode(transcript or "")
        return self.run_features(frames, tokens, sentence)

    def run_features(self, frames, tokens, sentence) -> float:
        """P(turn over) from precomputed features (as :meth:`probability` computes them)."""
        feeds = {}
        if "frames" in self.inputs:
            feeds["frames"] = np.asarray(frames, np.float32)[None]
        if "tokens" in self.inputs:
            feeds["tokens"] = np.asarray(tokens, np.float32)[None]
        if "token_mask" in self.inputs:
            feeds["token_mask"] = np.ones((1, len(tokens)), np.float32)
        if "sentence" in self.inputs:
            feeds["sentence"] = np.asarray(sentence, np.float32)[None]
        logit = float(self.session.run(None, feeds)[0].reshape(-1)[0])
        return float(1.0 / (1.0 + np.exp(-logit)))

    def wait_seconds(self, probability: float, lam: float | None = None) -> float:
        """Silence (from the pause's start) to wait before taking the turn.

        ``lam`` trades false cut-offs against waiting; the default was chosen on held-out
        train speakers to cut off at most 5% of turns.
        """
        return wait_for(probability, self.survival, self.lam if lam is None else lam)

    def silence_needed_ms(self, audio: np.ndarray, transcript: str) -> float:
        """The engine's ``EndOfTurn`` protocol: silence (ms, from the pause's start) that ends the
        turn, for audio that ends ``pause_s`` (set at construction) into the pause."""
        return 1000.0 * self.wait_seconds(self.probability(audio, transcript, self.pause_s))

    def decide(
        self, audio: np.ndarray, transcript: str = "", pause_s: float = DECISION_DELAY_S
    ) -> TurnDecision:
        t0 = time.perf_counter()
        p = self.probability(audio, transcript, pause_s)
        return TurnDecision(p, self.wait_seconds(p), time.perf_counter() - t0)


def _load_meta() -> dict:
    path = DATA_DIR / META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


@lru_cache(maxsize=1)
def _shared_text_encoder():
    from duetto.fusion.text import TextEncoder

    return TextEncoder()
