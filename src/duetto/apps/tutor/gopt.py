"""GOPT-style scorer: a small transformer over the phones of one utterance, run with numpy.

Each expected phone is a token: a projection of its feature row (the same rows the ridge phone
scorer reads: PocketSphinx GOP, pooled Whisper states, Whisper GOP in context) plus an embedding
of the phone's identity and of its position in the utterance. A few learnt utterance tokens
(GOPT's CLS tokens) are put in front. After a few pre-norm self-attention layers each phone token
predicts its phone score and its word's scores (averaged over the word's phones), and the
utterance tokens the five utterance scores. The outputs are blended with the ridge scorers' with
one weight per output chosen on train cross-validation (``blend``).

Trained in torch by ``bench/tutor_gopt.py``; running it needs only numpy (weights in
``weights/gopt.npz``, a few hundred KiB).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from duetto.apps.tutor.features import _PHONE_INDEX
from duetto.errors import ModelNotFoundError

WEIGHTS = Path(__file__).parent / "weights" / "gopt.npz"
# Word and utterance scores (0-10) are learnt on the phones' 0-2 scale: divided by this.
SCALE = 5.0
_LOW = {"phone": 0.0, "word": 0.0, "utterance": 0.0}
_HIGH = {"phone": 2.0, "word": 10.0, "utterance": 10.0}


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


@dataclass(frozen=True)
class GOPT:
    """Trained weights (see the module docstring): ``members`` are parameter sets whose outputs
    are averaged (models trained from different seeds)."""

    members: tuple[dict, ...]
    heads: int
    layers: int
    blend: dict  # level -> weight of the transformer per output (1 - weight: the ridge's)
    threshold: float | None  # phone mispronunciation cut for the blended scores (train CV)

    def forward(self, x: np.ndarray, phone_ids: np.ndarray, utt_x: np.ndarray | None = None):
        """Raw outputs, averaged over members: phone (n,), word head per phone (n, 3), utterance
        (5,), all on the 0-2 scale."""
        outs = [self._forward(p, x, phone_ids, utt_x) for p in self.members]
        return tuple(np.mean([o[k] for o in outs], axis=0) for k in range(3))

    def _forward(self, p: dict, x: np.ndarray, phone_ids: np.ndarray, utt_x):
        n = len(x)
        pos = np.minimum(np.arange(n), len(p["pos_emb"]) - 1)
        h = ((x - p["mean"]) / p["scale"]) @ p["in.w"] + p["in.b"]
        cls = p["cls"]
        if "utt_in.w" in p:  # the utterance features, projected onto the utterance tokens
            cls = cls + ((utt_x - p["utt_mean"]) / p["utt_scale"]) @ p["utt_in.w"] + p["utt_in.b"]
        h = np.concatenate([cls, h + p["phone_emb"][phone_ids] + p["pos_emb"][pos]], 0)
        n_cls, d = p["cls"].shape
        dh = d // self.heads
        for k in range(self.layers):
            q = f"l{k}."
            a = _layer_norm(h, p[q + "ln1.g"], p[q + "ln1.b"])
            qkv = a @ p[q + "qkv.w"] + p[q + "qkv.b"]
            heads = []
            for j in range(self.heads):
                qq, kk, vv = (qkv[:, o * d + j * dh : o * d + (j + 1) * dh] for o in range(3))
                heads.append(_softmax(qq @ kk.T / np.sqrt(dh)) @ vv)
            h = h + np.concatenate(heads, 1) @ p[q + "proj.w"] + p[q + "proj.b"]
            a = _layer_norm(h, p[q + "ln2.g"], p[q + "ln2.b"])
            h = h + _gelu(a @ p[q + "ff1.w"] + p[q + "ff1.b"]) @ p[q + "ff2.w"] + p[q + "ff2.b"]
        h = _layer_norm(h, p["ln.g"], p["ln.b"])
        tokens = h[n_cls:]
        phone = (tokens @ p["phone.w"] + p["phone.b"])[:, 0]
        word = tokens @ p["word.w"] + p["word.b"]
        utt = (h[:n_cls] * p["utt.w"].T).sum(1) + p["utt.b"]
        return phone, word, utt

    def predict(self, x, pe, ridge_phone, ridge_word, ridge_utt, utt_x=None):
        """Blended (phone (n,), word (words, 3), utterance (5,)) on the human scales, from the
        phone feature rows ``x`` of the phone evidence ``pe``, the ridge's predictions and the
        ridge utterance scorer's features ``utt_x``."""
        phone_ids = np.array([_PHONE_INDEX.get(q.expected, -1) + 1 for q in pe], np.int64)
        word_ids = np.array([q.word for q in pe], np.int64)
        return self.predict_ids(x, phone_ids, word_ids, ridge_phone, ridge_word, ridge_utt, utt_x)

    def predict_ids(self, x, phone_ids, word_ids, ridge_phone, ridge_word, ridge_utt, utt_x=None):
        """As :meth:`predict`, with phones as indices (1 + PHONES order, 0 unknown)."""
        if len(x) == 0:
            return ridge_phone, ridge_word, ridge_utt
        u = None if utt_x is None else np.asarray(utt_x, np.float64)
        phone, word_tok, utt = self.forward(np.asarray(x, np.float64), phone_ids, u)
        b = self.blend
        word = np.array(ridge_word, np.float64, copy=True)
        for w in range(len(word)):
            mask = word_ids == w
            if mask.any():
                word[w] = b["word"] * word_tok[mask].mean(0) * SCALE + (1 - b["word"]) * word[w]
        phone = b["phone"] * phone + (1 - b["phone"]) * np.asarray(ridge_phone)
        utt = b["utterance"] * utt * SCALE + (1 - b["utterance"]) * np.asarray(ridge_utt)
        return (
            np.clip(phone, _LOW["phone"], _HIGH["phone"]),
            np.clip(word, _LOW["word"], _HIGH["word"]),
            np.clip(utt, _LOW["utterance"], _HIGH["utterance"]),
        )


def save(path: Path, members: list[dict], heads: int, layers: int, blend: dict,
         threshold: float) -> None:  # fmt: skip
    """Write weights for :func:`load_gopt` (float32)."""
    arrays = {f"m{m}.{k}": np.asarray(v, np.float32) for m, p in enumerate(members)
              for k, v in p.items()}  # fmt: skip
    arrays["meta.heads"] = np.array(heads)
    arrays["meta.layers"] = np.array(layers)
    arrays["meta.threshold"] = np.array(threshold)
    for level, w in blend.items():
        arrays[f"blend.{level}"] = np.asarray(w, np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


@cache
def load_gopt(path: str | None = None) -> GOPT:
    """The transformer scorer shipped with duetto (or from ``path``)."""
    file = Path(path) if path else WEIGHTS
    if not file.is_file():
        raise ModelNotFoundError(
            f"GOPT scorer weights not found: {file}", "run bench/tutor_gopt.py to train them"
        )
    with np.load(file) as data:
        members = []
        while f"m{len(members)}.mean" in data:
            prefix = f"m{len(members)}."
            members.append({k[len(prefix):]: data[k].astype(np.float64) for k in data.files
                            if k.startswith(prefix)})  # fmt: skip
        blend = {k[6:]: data[k].astype(np.float64) for k in data.files if k.startswith("blend.")}
        return GOPT(
            tuple(members),
            int(data["meta.heads"]),
            int(data["meta.layers"]),
            blend,
            float(data["meta.threshold"]) if "meta.threshold" in data else None,
        )
