"""The trained scorers: small MLPs evaluated with numpy (weights in ``weights/scorer.npz``).

Training (``bench/tutor_train.py``) uses scikit-learn; running them needs only numpy, so the
tutor does not pull in a training library.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from duetto.errors import ModelNotFoundError

WEIGHTS = Path(__file__).parent / "weights" / "scorer.npz"
LEVELS = ("phone", "word", "utterance")
# What each level predicts, in output order, with the range of the human scale.
OUTPUTS = {
    "phone": (("score", 0.0, 2.0),),
    "word": (("accuracy", 0.0, 10.0), ("stress", 0.0, 10.0), ("total", 0.0, 10.0)),
    "utterance": (
        ("accuracy", 0.0, 10.0), ("completeness", 0.0, 10.0), ("fluency", 0.0, 10.0),
        ("prosodic", 0.0, 10.0), ("total", 0.0, 10.0),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class MLP:
    """Standardise, ReLU hidden layers, linear output; an ensemble averages its members."""

    mean: np.ndarray
    scale: np.ndarray
    members: tuple[tuple[tuple[np.ndarray, np.ndarray], ...], ...]
    low: np.ndarray
    high: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = (np.asarray(x, np.float64) - self.mean) / self.scale
        outs = []
        for layers in self.members:
            h = x
            for k, (w, b) in enumerate(layers):
                h = h @ w + b
                if k < len(layers) - 1:
                    h = np.maximum(h, 0.0)
            outs.append(h)
        return np.clip(np.mean(outs, axis=0), self.low, self.high)


def pack(level: str, mlp: MLP) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez`` under ``level.*`` keys."""
    out = {f"{level}.mean": mlp.mean, f"{level}.scale": mlp.scale, f"{level}.low": mlp.low,
           f"{level}.high": mlp.high}  # fmt: skip
    for m, layers in enumerate(mlp.members):
        for k, (w, b) in enumerate(layers):
            out[f"{level}.m{m}.w{k}"] = w.astype(np.float32)
            out[f"{level}.m{m}.b{k}"] = b.astype(np.float32)
    return out


def unpack(data, level: str) -> MLP:
    members = []
    m = 0
    while f"{level}.m{m}.w0" in data:
        layers = []
        k = 0
        while f"{level}.m{m}.w{k}" in data:
            layers.append(
                (
                    data[f"{level}.m{m}.w{k}"].astype(np.float64),
                    data[f"{level}.m{m}.b{k}"].astype(np.float64),
                )
            )
            k += 1
        members.append(tuple(layers))
        m += 1
    return MLP(
        data[f"{level}.mean"],
        data[f"{level}.scale"],
        tuple(members),
        data[f"{level}.low"],
        data[f"{level}.high"],
    )


@cache
def load_scorers(path: str | None = None) -> dict:
    """The phone, word and utterance scorers shipped with duetto (or from ``path``).

    The ``"asr"`` entry says whether they were trained with ASR evidence, ``"threshold"`` is the
    predicted phone score under which a phone counts as mispronounced (chosen on train),
    ``"prototypes"`` the phones' Whisper-state prototypes, ``"gop"`` the Whisper phone classifier,
    ``"base_gop"`` the one over Whisper base states (None unless trained with it).
    """
    file = Path(path) if path else WEIGHTS
    if not file.is_file():
        raise ModelNotFoundError(
            f"pronunciation scorer weights not found: {file}",
            "run bench/tutor_train.py to train them",
        )
    with np.load(file) as data:
        out: dict = {level: unpack(data, level) for level in LEVELS}
        out["asr"] = bool(data["meta.asr"]) if "meta.asr" in data else False
        out["threshold"] = (
            float(data["meta.phone_threshold"]) if "meta.phone_threshold" in data else 1.5
        )
        # Whisper-state prototype of each well-said phone (see features.prototype_features).
        out["prototypes"] = data["phone.prototypes"] if "phone.prototypes" in data else None
        # Whisper-GOP phone classifiers (see features.gop_features): over tiny.en's states and,
        # for weights trained with --base, over Whisper base's; absent in older weights. Linear
        # (coef, intercept) or with a hidden layer (features.classifier_log_posteriors).
        out["gop"] = _classifier(data, "phone.gop_")
        out["base_gop"] = _classifier(data, "phone.base_gop_")
        # Which Whisper base encoder layer those states come from (0: the last).
        out["base_layer"] = int(data["meta.base_layer"]) if "meta.base_layer" in data else 0
        return out


def _classifier(data, prefix: str) -> dict | None:
    """The arrays named ``prefix<key>`` as {key: float64 array}, or None when there are none."""
    keys = [k for k in data.files if k.startswith(prefix)]
    return {k[len(prefix) :]: data[k].astype(np.float64) for k in keys} if keys else None
