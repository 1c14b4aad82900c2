"""Acoustic and prosodic frame features of the last seconds of a turn, in numpy only.

Per 10 ms frame: 40 log-mel bands and the log energy (both relative to the loudest frame of the
window, so the microphone's gain does not matter), a voicing strength and the pitch in
semitones relative to the window's median pitch (the speaker's own register), plus a mask that
is 0 on the left padding of a short window. The end-of-turn model reads the energy fall, the
pitch contour and the length of the last syllables from these frames.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms: the usual speech frame rate, fine enough for syllable lengths
WIN = 400  # 25 ms analysis window
N_FFT = 512
N_MELS = 40
# The last 4 s hold the final phrase and its pitch and energy contour; Smart Turn reads 8 s, but
# the turns here are short and a shorter window halves the cost of a decision.
WINDOW_S = 4.0
N_FRAMES = int(WINDOW_S * SAMPLE_RATE / HOP)
# Pitch search range: 60 Hz (low adult voices) to 500 Hz (children).
F0_MIN, F0_MAX = 60.0, 500.0
# Pitch is searched at 8 kHz (F0_MAX is far below 4 kHz): a quarter of the work.
PITCH_RATE = 8_000
PITCH_HOP = HOP // 2
PITCH_WIN = 320  # 40 ms at 8 kHz: two periods of the lowest pitch
PITCH_FFT = 512
# The first autocorrelation peak within this share of the best one is the period; taking the
# best alone picks multiples of the period (octave errors).
PEAK_SHARE = 0.9
PEAK_REACH = 6  # samples searched past that first lag for its local peak
# Below this normalized autocorrelation a frame counts as unvoiced.
VOICING_THRESHOLD = 0.45
# Frames this far (dB) under the loudest frame are treated as silence for pitch.
SILENCE_DB = 35.0
# Levels more than ~70 dB (ln units: 16) under the loudest frame are all "silence": without a
# floor the features of quiet bands would depend on the microphone's gain.
FLOOR = 16.0
N_FEATURES = N_MELS + 4  # mels, energy, voicing, pitch, mask


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """[N_MELS, N_FFT // 2 + 1] triangular filters on the HTK mel scale, 60 Hz to 7.6 kHz."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(60.0), hz_to_mel(7600.0), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    fb = np.zeros((N_MELS, len(bins)), np.float32)
    for i in range(N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


@lru_cache(maxsize=1)
def _mel_sparse():
    """The filterbank as a sparse [bins, N_MELS] matrix. Each bin feeds at most two filters, and
    a dense product goes through OpenBLAS, whose threads spin: 8 ms of CPU per decision on a
    busy machine instead of 0.1 ms."""
    import scipy.sparse

    return scipy.sparse.csr_matrix(mel_filterbank().T)


def _frames(audio: np.ndarray, width: int, hop: int = HOP) -> np.ndarray:
    """[n, width] frames centred every ``hop`` samples (edges padded with zeros)."""
    n = len(audio) // hop
    pad = width // 2
    padded = np.pad(audio, (pad, pad + width))
    idx = np.arange(n)[:, None] * hop + np.arange(width)[None, :]
    return padded[idx]


@lru_cache(maxsize=4)
def _hann(width: int) -> np.ndarray:
    return np.hanning(width).astype(np.float32)


def log_mel(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log-mel [n, N_MELS], log energy [n])`` in natural-log units."""
    frames = _frames(audio, WIN) * _hann(WIN)
    power = np.abs(scipy.fft.rfft(frames, N_FFT, workers=1)) ** 2
    mel = np.log(power @ _mel_sparse() + 1e-14)
    energy = np.log(np.mean(frames**2, axis=1) + 1e-14)
    return mel.astype(np.float32), energy.astype(np.float32)


@lru_cache(maxsize=1)
def _window_ac() -> np.ndarray:
    """The Hann window's own autocorrelation, normalized: dividing by it stops long lags
    from being penalized just because fewer samples overlap."""
    w = _hann(PITCH_WIN).astype(np.float64)
    ac = np.correlate(w, w, "full")[PITCH_WIN - 1 :]
    return np.maximum(ac / ac[0], 1e-3).astype(np.float32)


def pitch(audio: np.ndarray, energy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(f0 in Hz [n] (0 when unvoiced), voicing strength [n])`` by normalized autocorrelation."""
    half = audio[: len(audio) // 2 * 2].reshape(-1, 2).mean(axis=1)  # crude 8 kHz
    frames = _frames(half, PITCH_WIN, PITCH_HOP)
    frames = (frames - frames.mean(axis=1, keepdims=True)) * _hann(PITCH_WIN)
    spec = scipy.fft.rfft(frames, PITCH_FFT, workers=1)
    ac = scipy.fft.irfft(np.abs(spec) ** 2, PITCH_FFT, workers=1)[:, :PITCH_WIN]
    ac = ac / (ac[:, :1] + 1e-10) / _window_ac()
    lo, hi = int(PITCH_RATE / F0_MAX), int(PITCH_RATE / F0_MIN)
    band = ac[:, lo:hi]
    best = band.max(axis=1, keepdims=True)
    first = np.argmax(band >= PEAK_SHARE * best, axis=1)
    # The first lag over the bar may sit on the rising flank: climb to its local peak.
    near = first[:, None] + np.arange(PEAK_REACH)[None, :]
    near = np.minimum(near, band.shape[1] - 1)
    lag = lo + near[np.arange(len(band)), np.argmax(np.take_along_axis(band, near, 1), axis=1)]
    strength = np.clip(ac[np.arange(len(ac)), lag], 0.0, 1.0)
    if energy is None:
        energy = log_mel(audio)[1]
    loud = energy > energy.max() - SILENCE_DB / 10 * np.log(10)
    voiced = (strength >= VOICING_THRESHOLD) & loud[: len(strength)]
    # Parabolic interpolation around the peak: integer lags at 8 kHz are ~1 semitone apart.
    rows = np.arange(len(ac))
    left, mid, right = (
        ac[rows, lag - 1],
        ac[rows, lag],
        ac[rows, np.minimum(lag + 1, PITCH_WIN - 1)],
    )
    denom = left - 2 * mid + right
    shift = np.where(
        np.abs(denom) > 1e-6, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0
    )
    f0 = np.where(voiced, PITCH_RATE / (lag + np.clip(shift, -0.5, 0.5)), 0.0)
    return f0.astype(np.float32), np.where(loud[: len(strength)], strength, 0.0).astype(np.float32)


def frame_features(audio: np.ndarray) -> np.ndarray:
    """[N_FRAMES, N_FEATURES] features of the last :data:`WINDOW_S` of ``audio``.

    Shorter audio is left-padded (mask 0); the features are scaled to roughly unit range.
    """
    audio = np.asarray(audio, np.float32).reshape(-1)
    audio = audio[-int(WINDOW_S * SAMPLE_RATE) :]
    out = np.zeros((N_FRAMES, N_FEATURES), np.float32)
    if len(audio) < HOP:
        return out
    mel, energy = log_mel(audio)
    f0, strength = pitch(audio, energy)
    n = min(len(mel), N_FRAMES)
    top = float(energy.max())
    voiced = f0 > 0
    semitones = np.zeros_like(f0)
    if voiced.any():
        semitones[voiced] = 12.0 * np.log2(f0[voiced] / np.median(f0[voiced]))
    block = np.concatenate(
        [
            np.maximum(mel - top, -FLOOR) / 10.0,
            (np.maximum(energy - top, -FLOOR) / 10.0)[:, None],
            strength[:, None],
            (semitones / 12.0)[:, None],
            np.ones((len(mel), 1), np.float32),
        ],
        axis=1,
    )
    out[N_FRAMES - n :] = block[-n:]
    return out
