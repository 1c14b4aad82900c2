"""DTW alignment of two utterances of the same text (a learner and a reference voice) on MFCCs.

The DTW itself is librosa's (``librosa.sequence.dtw``, ISC licence, compiled with numba), not a
Python loop. The MFCCs are mean- and variance-normalized per utterance so that level and channel
differences between the two recordings do not dominate the distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duetto.audio import SAMPLE_RATE
from duetto.errors import DuettoError

N_MFCC = 13  # the classic speech MFCC size; higher coefficients mostly carry pitch detail
HOP = 160  # 10 ms frames
N_FFT = 512
WIN = 400  # 25 ms windows
# Silence at the edges would be "aligned" too and dilute the distance: trim below this level
# relative to the loudest frame.
TRIM_DB = 35


@dataclass(frozen=True)
class DTWResult:
    """``path`` holds (frame in A, frame in B) pairs from start to end; frames are 10 ms."""

    path: np.ndarray
    distance: float  # accumulated cosine distance along the path / path length
    frames_a: int
    frames_b: int
    offset_a: float  # seconds trimmed from the start of A (path frame 0 is this time)
    offset_b: float

    @property
    def seconds_path(self) -> np.ndarray:
        """The path in seconds of the original recordings."""
        return self.path * (HOP / SAMPLE_RATE) + np.array([self.offset_a, self.offset_b])

    def to_dict(self) -> dict:
        return {
            "distance": round(self.distance, 4),
            "frames_a": self.frames_a,
            "frames_b": self.frames_b,
            "frame_seconds": HOP / SAMPLE_RATE,
            "offset_a": round(self.offset_a, 3),
            "offset_b": round(self.offset_b, 3),
            "path": self.path.tolist(),
        }


def mfcc(audio: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Per-utterance normalized MFCCs, shape (N_MFCC, frames)."""
    import librosa

    m = librosa.feature.mfcc(
        y=audio.astype(np.float32),
        sr=rate,
        n_mfcc=N_MFCC,
        n_fft=N_FFT,
        win_length=WIN,
        hop_length=HOP,
    )
    return (m - m.mean(axis=1, keepdims=True)) / (m.std(axis=1, keepdims=True) + 1e-8)


def trim(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Audio without leading/trailing silence, and the seconds cut from its start."""
    import librosa

    if len(audio) == 0 or not np.any(audio):
        raise DuettoError("the audio is silent", "record the utterance again")
    _, (a, b) = librosa.effects.trim(audio, top_db=TRIM_DB, frame_length=WIN, hop_length=HOP)
    return audio[a:b], a / SAMPLE_RATE


def dtw_align(a: np.ndarray, b: np.ndarray, trim_silence: bool = True) -> DTWResult:
    """Align 16 kHz utterances ``a`` and ``b``; the distance is 0 for identical audio and grows
    with how differently they are spoken (about 0.1–0.3 for the same text, higher otherwise)."""
    import librosa

    off_a = off_b = 0.0
    if trim_silence:
        a, off_a = trim(a)
        b, off_b = trim(b)
    fa, fb = mfcc(a), mfcc(b)
    if fa.shape[1] < 2 or fb.shape[1] < 2:
        raise DuettoError("an utterance is too short to align (under 20 ms of sound)")
    cost, path = librosa.sequence.dtw(X=fa, Y=fb, metric="cosine")
    path = path[::-1].copy()
    return DTWResult(
        path=path,
        distance=float(cost[-1, -1] / len(path)),
        frames_a=fa.shape[1],
        frames_b=fb.shape[1],
        offset_a=off_a,
        offset_b=off_b,
    )


def plot_dtw(
    a: np.ndarray, b: np.ndarray, result: DTWResult, out: str | Path, labels=("A", "B")
) -> Path:
    """A PNG: the two log spectrograms along the axes of the cost plane, the path on top."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def spec(x):
        s = np.abs(librosa.stft(x.astype(np.float32), n_fft=N_FFT, hop_length=HOP, win_length=WIN))
        return librosa.amplitude_to_db(s, ref=np.max)

    sa, sb = spec(a), spec(b)
    ta, tb = len(a) / SAMPLE_RATE, len(b) / SAMPLE_RATE
    khz = SAMPLE_RATE / 2000
    fig = plt.figure(figsize=(9, 8))
    grid = fig.add_gridspec(
        2, 2, width_ratios=(1, 4), height_ratios=(4, 1), wspace=0.05, hspace=0.05
    )
    ax_path = fig.add_subplot(grid[0, 1])
    ax_b = fig.add_subplot(grid[0, 0], sharey=ax_path)
    ax_a = fig.add_subplot(grid[1, 1], sharex=ax_path)
    ax_a.imshow(sa, origin="lower", aspect="auto", extent=(0, ta, 0, khz), cmap="magma")
    ax_a.set_xlabel(f"{labels[0]} (s)")
    ax_a.set_ylabel("kHz")
    ax_a.set_yticks([0, khz / 2])
    ax_b.imshow(sb.T, origin="lower", aspect="auto", extent=(0, khz, 0, tb), cmap="magma")
    ax_b.set_xlim(khz, 0)  # low frequencies next to the path
    ax_b.set_xticks([khz / 2, 0])
    ax_b.set_ylabel(f"{labels[1]} (s)")
    ax_b.set_xlabel("kHz")
    p = result.seconds_path
    ax_path.plot(p[:, 0], p[:, 1], color="tab:cyan", lw=2, label="DTW path")
    ax_path.plot(
        p[[0, -1], 0], p[[0, -1], 1], color="grey", ls=":", lw=1, label="constant tempo ratio"
    )
    ax_path.set_xlim(0, ta)
    ax_path.set_ylim(0, tb)
    ax_path.grid(alpha=0.3)
    ax_path.legend(loc="upper left")
    ax_path.set_title(f"DTW on MFCCs: normalized distance {result.distance:.3f}")
    plt.setp(ax_path.get_xticklabels(), visible=False)
    plt.setp(ax_path.get_yticklabels(), visible=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
