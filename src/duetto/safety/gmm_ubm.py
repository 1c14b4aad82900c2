"""A second voiceprint system: MFCC GMM-UBM with MAP-adapted means (Reynolds et al., 2000).

Resemblyzer was trained on adult, mostly native English read speech; this classic system is
fitted only on speechocean762 *train* (children and adults, L2 English), needs no speaker labels
to fit (the UBM is plain EM on all train frames), and makes different mistakes, so the two
scores fused do better than either (measured in bench/voiceprint.py, docs/trust.md).

- features: 19 MFCCs (c0 dropped: it is loudness) with deltas and delta-deltas, 10 ms frames,
  mean- and variance-normalised per utterance, of the speech Resemblyzer's webrtcvad kept;
- the universal background model (UBM): a diagonal-covariance GMM of all train frames
  (``ubm.npz``, rebuilt by ``bench/voiceprint.py --write-ubm``);
- enrolment: zeroth- and first-order statistics of the enrolment frames against the UBM (pooled
  over clips; this is what the store keeps), the speaker model is the UBM with MAP-adapted means;
- score: mean per-frame log-likelihood ratio of the test clip, speaker model against UBM, over
  each frame's top-scoring UBM components.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from duetto.audio import SAMPLE_RATE

UBM_FILE = Path(__file__).with_name("ubm.npz")
N_MFCC = 20  # c0..c19; c0 is dropped (level), 19 kept
N_FFT = 512
WIN = 400  # 25 ms windows
HOP = 160  # 10 ms frames
N_MELS = 40
DELTA_WIDTH = 2  # frames either side in the delta regression
# Components scored per frame: the frame's best UBM components carry nearly all its likelihood.
TOP_COMPONENTS = 10


def mfcc(speech: np.ndarray) -> np.ndarray:
    """Raw MFCCs (frames, N_MFCC) of 16 kHz speech (what the bench caches)."""
    import librosa

    m = librosa.feature.mfcc(
        y=np.asarray(speech, np.float32), sr=SAMPLE_RATE, n_mfcc=N_MFCC, n_fft=N_FFT,
        win_length=WIN, hop_length=HOP, n_mels=N_MELS, fmin=20, fmax=7600,
    )  # fmt: skip
    return m.T.astype(np.float32)


def _deltas(x: np.ndarray) -> np.ndarray:
    w = DELTA_WIDTH
    pad = np.pad(x, ((w, w), (0, 0)), mode="edge")
    n = len(x)
    num = sum(k * (pad[w + k : w + k + n] - pad[w - k : w - k + n]) for k in range(1, w + 1))
    return num / (2 * sum(k * k for k in range(1, w + 1)))


def features(raw_mfcc: np.ndarray) -> np.ndarray:
    """(frames, 57): normalised c1..c19, deltas, delta-deltas."""
    x = raw_mfcc[:, 1:]
    # Per-utterance normalisation: level and channel must not identify the speaker.
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    d = _deltas(x)
    return np.hstack([x, d, _deltas(d)]).astype(np.float32)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(1, keepdims=True))).ravel()


@dataclass
class GMM:
    """Diagonal-covariance Gaussian mixture: weights (C,), means and variances (C, D)."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def __post_init__(self):
        self.weights = np.asarray(self.weights, np.float64)
        self.means = np.asarray(self.means, np.float64)
        self.variances = np.asarray(self.variances, np.float64)
        self._precision = 1.0 / self.variances
        self._log_norm = np.log(self.weights) - 0.5 * np.log(2 * np.pi * self.variances).sum(1)

    @property
    def fingerprint(self) -> str:
        """Short hash of the parameters: statistics from another UBM must not be mixed in."""
        return hashlib.sha1(self.means.astype(np.float32).tobytes()).hexdigest()[:12]

    def component_loglik(self, x: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
        """log(w_c N(x | mu_c, var_c)) for every frame and component, (frames, C)."""
        mu = self.means if means is None else means
        x = np.asarray(x, np.float64)
        const = self._log_norm - 0.5 * (mu**2 * self._precision).sum(1)
        return const - 0.5 * (x**2) @ self._precision.T + x @ (mu * self._precision).T

    def posteriors(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Component posteriors (frames, C) and per-frame log-likelihoods (frames,)."""
        lc = self.component_loglik(x)
        total = _logsumexp(lc)
        return np.exp(lc - total[:, None]), total

    def stats(self, x: np.ndarray) -> np.ndarray:
        """Zeroth- and first-order statistics, (C, 1 + D): column 0 is the soft frame count."""
        g, _ = self.posteriors(x)
        return np.hstack([g.sum(0)[:, None], g.T @ np.asarray(x, np.float64)])

    def map_means(self, stats: np.ndarray, relevance: float) -> np.ndarray:
        """Means adapted to ``stats`` (Reynolds' relevance MAP: components seen little stay put)."""
        n, f = stats[:, 0], stats[:, 1:]
        alpha = (n / (n + relevance))[:, None]
        return alpha * f / np.maximum(n, 1e-9)[:, None] + (1 - alpha) * self.means

    def llr(self, means: np.ndarray, x: np.ndarray, top: int = TOP_COMPONENTS) -> float:
        """Mean per-frame log-likelihood ratio of ``x``, adapted means against the UBM."""
        return float(self.llr_many(np.asarray(means)[None], x, top)[0])

    def llr_many(self, models: np.ndarray, x: np.ndarray, top: int = TOP_COMPONENTS) -> np.ndarray:
        """:meth:`llr` of ``x`` against each of several adapted models (M, C, D), (M,).

        Each frame is scored on the ``top`` components the UBM ranks highest for it (the
        usual fast GMM-UBM scoring); the UBM's part is computed once for all models."""
        x = np.asarray(x, np.float64)
        ubm = self.component_loglik(x)
        top = min(top, ubm.shape[1] - 1)
        idx = np.argpartition(-ubm, top, axis=1)[:, :top]  # (frames, top)
        ubm_top = _logsumexp(np.take_along_axis(ubm, idx, 1))
        precision, log_norm = self._precision[idx], self._log_norm[idx]
        out = np.empty(len(models))
        for m, means in enumerate(models):
            diff = x[:, None, :] - np.asarray(means, np.float64)[idx]
            spk = log_norm - 0.5 * (diff**2 * precision).sum(-1)
            out[m] = np.mean(_logsumexp(spk) - ubm_top)
        return out


def train_ubm(frames: np.ndarray, components: int, iterations: int = 12, seed: int = 0) -> GMM:
    """EM for a diagonal GMM, initialised on random frames (enough for a UBM)."""
    x = np.asarray(frames, np.float64)
    rng = np.random.default_rng(seed)
    floor = 1e-3 * x.var(0)
    gmm = GMM(
        np.full(components, 1.0 / components),
        x[rng.choice(len(x), components, replace=False)],
        np.tile(x.var(0), (components, 1)),
    )
    for _ in range(iterations):
        n = np.zeros(components)
        f = np.zeros_like(gmm.means)
        s = np.zeros_like(gmm.means)
        for start in range(0, len(x), 50_000):
            batch = x[start : start + 50_000]
            g, _ = gmm.posteriors(batch)
            n += g.sum(0)
            f += g.T @ batch
            s += g.T @ batch**2
        n = np.maximum(n, 1e-3)
        means = f / n[:, None]
        gmm = GMM(n / n.sum(), means, np.maximum(s / n[:, None] - means**2, floor))
    return gmm


@dataclass(frozen=True)
class Backend:
    """The shipped UBM and the score fusion fitted with it (all from speechocean762 train)."""

    ubm: GMM
    relevance: float
    # Fusion: each system's score is standardised by its mean and std over the train
    # cross-validation trials, then fused = (1 - weight) * resemblyzer + weight * gmm.
    res_mean: float
    res_std: float
    gmm_mean: float
    gmm_std: float
    weight: float
    threshold: float  # on the fused score: the equal-error point of the train cross-validation

    def fuse(self, centred_cosine: float, llr: float) -> float:
        a = (centred_cosine - self.res_mean) / self.res_std
        b = (llr - self.gmm_mean) / self.gmm_std
        return float((1 - self.weight) * a + self.weight * b)


def save_backend(path: Path, backend: Backend) -> None:
    u = backend.ubm
    np.savez_compressed(
        path, weights=u.weights.astype(np.float32), means=u.means.astype(np.float32),
        variances=u.variances.astype(np.float32), relevance=backend.relevance,
        fusion=np.array([backend.res_mean, backend.res_std, backend.gmm_mean, backend.gmm_std,
                         backend.weight, backend.threshold]),
    )  # fmt: skip


@lru_cache(maxsize=2)
def load_backend(path: str | None = None) -> Backend | None:
    """The shipped back-end (``ubm.npz``), or None when the file is missing."""
    file = Path(path) if path else UBM_FILE
    if not file.exists():
        return None
    z = np.load(file)
    fusion = [float(v) for v in z["fusion"]]
    return Backend(GMM(z["weights"], z["means"], z["variances"]), float(z["relevance"]), *fusion)
