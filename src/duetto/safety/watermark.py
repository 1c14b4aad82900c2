"""A robust, near-transparent watermark for the speech duetto synthesizes, and its detector.

Design: *time-frequency patchwork* (a spread-spectrum watermark on the short-time magnitude
spectrum). The speech band 400-3,600 Hz is cut into tiles of 32 ms x 1/:data:`N_BANDS` of the
band; each tile's amplitude is raised or lowered by :data:`STRENGTH` (about ±4 dB) following a
keyed pseudo-random +-1 pattern that repeats every :data:`PERIOD_TILES` tiles (0.77 s). Half of
the tiles ("sync") always follow the pattern; the other half carry the 16 payload bits, each bit
flipping the sign of its own tiles. The detector measures tile log-energies, removes what speech
itself contributes with a local (time x frequency) high-pass, and correlates with the pattern.

This is the patchwork idea of Bender et al. (1996, "Techniques for data hiding", IBM Systems
Journal 35(3-4)) applied in the spectrogram, as in Kirovski & Malvar (2003, "Spread-spectrum
watermarking of audio signals", IEEE Trans. Signal Processing 51(4)): a multiplicative change of
band energies survives lossy codecs, resampling, noise and volume changes because those keep the
relative energy of neighbouring tiles. Cropping and unknown start are handled by searching every
tile phase; speed changes (which scale time and frequency together) by searching a grid of
scale factors (:data:`SCALES`, ±6 % in 0.5 % steps), the sync search of Kirovski & Malvar.

Usage (streaming, one call per synthesized chunk; state carries the pattern phase)::

    mark = Watermarker(22_050, Payload(model_id=1, time_bucket=Payload.bucket_now()))
    for chunk in tts.stream(text):
        out.write(mark.process(chunk))          # same length as chunk, float32

    result = detect(samples, sample_rate)       # Detection(found, confidence, payload, ...)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from math import gcd

import numpy as np
from scipy.signal import resample_poly, stft

from duetto.audio import load_audio
from duetto.errors import AudioFormatError, ConfigError, EmptyAudioError

# The band survives 8 kHz telephone resampling (anti-alias filters start near 3.6-3.8 kHz) and
# 64 kbit/s codecs, which keep this band almost untouched; below 400 Hz speech energy is dominated
# by the voice's fundamental, whose tiles vary too much to carry a weak mark.
BAND_LOW_HZ = 400.0
BAND_HIGH_HZ = 3_600.0
# 32 bands of 100 Hz: wide enough that a 0.25 % residual scale error (half a grid step) moves a
# band edge by under 10 Hz, narrow enough to give many tiles per second.
N_BANDS = 32
# 32 ms tiles: one analysis window; several per syllable so speech rarely fills a tile alone.
TILE_S = 0.032
# The pattern repeats every 24 tiles (0.768 s), so any 1-second window holds a full period
# (every payload bit) and the phase search has only 96 positions (24 tiles x 4 frames).
PERIOD_TILES = 24
# Amplitude change per tile (natural-log units): exp(0.5) = +4.3 dB / -4.3 dB. Large for a
# watermark, yet PESQ stays near 4.3 because only the fine time-frequency texture changes, not
# the spectral envelope or loudness; 0.45-0.5 is where detection after 20 dB white noise keeps a
# margin over the threshold (measured in bench/watermark.py).
STRENGTH = 0.5
PAYLOAD_BITS = 16
# The embedder's STFT window: one tile. Measured: a 16 ms window (less smearing in time, but
# 60 Hz resolution against 100 Hz bands) and 64 ms tiles both gave lower detection scores.
EMBED_WINDOW_S = 0.032
# The public key of duetto's watermark; a deployment can choose its own (both sides must agree).
DEFAULT_KEY = 0x6475_6574  # "duet"

# Detector: everything is measured at 16 kHz with 512-sample windows every 128 samples, so one
# tile is exactly 4 frames.
DETECT_RATE = 16_000
FRAME = 512
HOP = 128
FRAMES_PER_TILE = round(TILE_S * DETECT_RATE / HOP)
WINDOW_S = 1.0
# Evidence is also pooled over 2-second windows at one phase: z grows with the square root of the
# marked tiles, so a 2-second crop scores about 1.3 times what its best 1-second half does
# (measured on 300 crops: lowest z 6.5 -> 8.6), while the residual speed error (at most 0.25 %)
# drifts the phase by only 5 ms, under one frame. Longer windows would drift further.
LONG_WINDOW_S = 2.0
# A clip at least this share of a long window long is scored as one long window.
LONG_WINDOW_MIN_FILL = 0.75
# Speed changes of up to ±6 %; 0.5 % steps leave at most 0.25 % of scale error.
SCALES = tuple(np.round(np.arange(0.94, 1.0601, 0.005), 4))
# Tiles quieter than this below the loudest tile of their band are silence: the mark cannot be
# in them (it is multiplicative) and their log-energy is only noise.
SILENCE_DB = 40.0
# A tile must be this many times (6 dB) above its band's 10th-percentile energy to count.
NOISE_FLOOR_FACTOR = 4.0
# Decision threshold on the normalised correlation (a z-score under "no watermark"). Chosen on
# unmarked speech: the best of the 2,400 hypotheses (25 speeds x 96 phases) of every window stays
# under it on all 2,400 speechocean762 utterances (the tail is heavier than Gaussian: neighbouring
# tiles are correlated); the measured maxima are in docs/trust.md (bench/watermark.py).
THRESHOLD = 6.5
# Windows whose own sync score reaches this also vote for the payload (windows overlap by half,
# so each tile is counted twice, which does not change the sign of the vote).
PAYLOAD_WINDOW_Z = 4.0
# Tile log-energy features are clipped at this many robust standard deviations so that onsets
# and clicks cannot dominate the correlation.
CLIP_SIGMA = 2.5


@dataclass(frozen=True)
class Payload:
    """The 16 bits carried by the mark: which model spoke (4 bits) and when (12 bits of days)."""

    model_id: int = 0
    time_bucket: int = 0

    MODEL_BITS = 4
    BUCKET_BITS = 12
    # Day 0 of the time bucket; buckets wrap every 4,096 days (about 11 years).
    EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z

    def __post_init__(self):
        if not 0 <= self.model_id < 2**self.MODEL_BITS:
            raise ConfigError(
                f"watermark model_id must be 0-{2**self.MODEL_BITS - 1}, got {self.model_id}"
            )
        if not 0 <= self.time_bucket < 2**self.BUCKET_BITS:
            raise ConfigError(
                f"watermark time_bucket must be 0-{2**self.BUCKET_BITS - 1}, got {self.time_bucket}"
            )

    @classmethod
    def bucket_now(cls, now: float | None = None) -> int:
        """Today's time bucket (days since 2025-01-01, modulo 4,096)."""
        now = time.time() if now is None else now
        return int((now - cls.EPOCH) // 86_400) % 2**cls.BUCKET_BITS

    def to_bits(self) -> np.ndarray:
        value = (self.model_id << self.BUCKET_BITS) | self.time_bucket
        return np.array(
            [(value >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)], np.int8
        )

    @classmethod
    def from_bits(cls, bits) -> Payload:
        value = 0
        for b in bits:
            value = (value << 1) | int(b)
        return cls(value >> cls.BUCKET_BITS, value & (2**cls.BUCKET_BITS - 1))


@dataclass(frozen=True)
class Detection:
    """What :func:`detect` found. ``confidence`` is 1 - (chance that unmarked audio scores this)."""

    found: bool
    confidence: float
    score: float  # normalised correlation (z-score) of the best window
    payload: Payload | None
    payload_margin: float  # weakest bit's |z|: under 2, the payload may be wrong
    speed: float  # the speed change the detector corrected (1.0 = none)
    start: float  # start (s) of the best 1-second window


@dataclass(frozen=True)
class _Layout:
    sign: np.ndarray  # (PERIOD_TILES, N_BANDS) +-1 keyed pattern
    role: np.ndarray  # (PERIOD_TILES, N_BANDS) -1 for sync tiles, else the payload bit index


def _layout(key: int) -> _Layout:
    rng = np.random.default_rng(key)
    sign = rng.choice(np.array([-1.0, 1.0]), size=(PERIOD_TILES, N_BANDS))
    # Half the tiles are sync, the rest are dealt evenly to the bits, interleaved in time and
    # frequency so that a loud or silent part of the window does not wipe out one bit.
    cells = rng.permutation(PERIOD_TILES * N_BANDS)
    role = np.full(PERIOD_TILES * N_BANDS, -1, np.int64)
    data_cells = cells[: len(cells) // 2]
    role[data_cells] = np.arange(len(data_cells)) % PAYLOAD_BITS
    return _Layout(sign, role.reshape(PERIOD_TILES, N_BANDS))


def _tile_signs(layout: _Layout, bits: np.ndarray) -> np.ndarray:
    """+-1 per tile of one period, with payload bits applied (bit 1 keeps, bit 0 flips)."""
    data_sign = np.where(bits[np.maximum(layout.role, 0)] == 1, 1.0, -1.0)
    return layout.sign * np.where(layout.role < 0, 1.0, data_sign)


class Watermarker:
    """Streaming embedder: ``process(chunk)`` returns the marked chunk (same length, float32).

    Keeps the pattern's phase across calls, so a voice's chunks may have any lengths. Each chunk
    is transformed on its own (no look-ahead, no added latency); the boundary frames are
    zero-padded, which is inaudible at the sentence gaps where TTS chunks end.
    """

    def __init__(self, sample_rate: int, payload: Payload | None = None, *, key: int = DEFAULT_KEY,
                 strength: float = STRENGTH):  # fmt: skip
        if sample_rate < 2 * BAND_HIGH_HZ:
            raise ConfigError(
                f"watermarking needs a sample rate of at least {int(2 * BAND_HIGH_HZ)} Hz, got {sample_rate}",
                "synthesize at 16 kHz or more",
            )
        self.sample_rate = int(sample_rate)
        self.payload = payload or Payload()
        self.strength = float(strength)
        self._signs = _tile_signs(_layout(key), self.payload.to_bits())
        self._nfft = int(round(EMBED_WINDOW_S * self.sample_rate))
        self._hop = self._nfft // 4
        freqs = np.fft.rfftfreq(self._nfft, 1.0 / self.sample_rate)
        inside = (freqs >= BAND_LOW_HZ) & (freqs < BAND_HIGH_HZ)
        band = np.floor((freqs - BAND_LOW_HZ) / (BAND_HIGH_HZ - BAND_LOW_HZ) * N_BANDS).astype(
            np.int64
        )
        self._band = np.where(inside, band, -1)
        self._position = 0  # samples already processed

    def reset(self) -> None:
        """Start the pattern again from time 0 (e.g. for a new, separate clip)."""
        self._position = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Mark one chunk of float32 mono audio at ``sample_rate``; returns the same length."""
        x = np.asarray(chunk, dtype=np.float32).reshape(-1)
        n = len(x)
        if n == 0:
            return x.copy()
        y = x + self._residual(x, self._position)
        self._position += n
        return y.astype(np.float32)

    def _residual(self, x: np.ndarray, offset: int) -> np.ndarray:
        from scipy.signal import istft

        n = len(x)
        if n < self._hop:
            return np.zeros(n, np.float32)
        _, _, spec = stft(x, nperseg=self._nfft, noverlap=self._nfft - self._hop, window="hann",
                          boundary="zeros", padded=True)  # fmt: skip
        # Frame i of scipy's padded STFT is centred on sample i * hop of the chunk.
        centres = (offset + np.arange(spec.shape[1]) * self._hop) / self.sample_rate
        tiles = np.floor(centres / TILE_S).astype(np.int64) % PERIOD_TILES
        signs = self._signs[tiles]  # (frames, bands)
        gain = np.zeros((spec.shape[0], spec.shape[1]), np.float64)
        inside = self._band >= 0
        gain[inside] = np.expm1(self.strength * signs[:, self._band[inside]].T)
        _, residual = istft(spec * gain, nperseg=self._nfft, noverlap=self._nfft - self._hop,
                            window="hann", boundary=True)  # fmt: skip
        out = np.zeros(n, np.float32)
        m = min(n, len(residual))
        out[:m] = residual[:m]
        return out


def embed(samples: np.ndarray, sample_rate: int, payload: Payload | None = None, *,
          key: int = DEFAULT_KEY, strength: float = STRENGTH) -> np.ndarray:  # fmt: skip
    """Mark a whole clip (one :class:`Watermarker` call)."""
    return Watermarker(sample_rate, payload, key=key, strength=strength).process(samples)


# --- detection ------------------------------------------------------------------------------------


def _spectrogram(x: np.ndarray) -> np.ndarray:
    """(frames, bins) power of 512-sample Hann frames every 128 samples at 16 kHz."""
    if len(x) < FRAME:
        return np.zeros((0, FRAME // 2 + 1))
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    return np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=1)) ** 2


@lru_cache(maxsize=64)
def _band_edges(scale: float) -> np.ndarray:
    """First FFT bin of each band (and one past the last) for audio sped up by ``scale``.

    Audio played ``scale`` times faster has every frequency multiplied by ``scale``; the band
    that was at [f1, f2) is found at [scale * f1, scale * f2).
    """
    edges_hz = np.linspace(BAND_LOW_HZ, BAND_HIGH_HZ, N_BANDS + 1) * scale
    return np.ceil(edges_hz / (DETECT_RATE / FRAME)).astype(np.int64)


def _band_energies(spec: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """(frames, N_BANDS) band energies on the original time line of audio sped up by ``scale``.

    Undoing a speed change in the spectrogram (band edges scaled, frames re-sampled in time)
    costs a matrix product instead of re-sampling and re-analysing the audio for each guess.
    """
    # Contiguous bin ranges summed through a cumulative sum (no BLAS: its threads thrash on a
    # busy laptop CPU and make a 25-guess search 20 times slower).
    csum = np.concatenate([np.zeros((len(spec), 1)), np.cumsum(spec, axis=1)], axis=1)
    edges = _band_edges(float(scale))
    energy = csum[:, edges[1:]] - csum[:, edges[:-1]]
    if scale == 1.0 or len(energy) < 2:
        return energy
    n_out = int(len(energy) * scale)
    pos = np.minimum(np.arange(n_out) / scale, len(energy) - 1.000001)
    i0 = pos.astype(np.int64)
    frac = (pos - i0)[:, None]
    return energy[i0] * (1 - frac) + energy[i0 + 1] * frac


def _features(energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High-passed tile log-energies at every frame offset, and each tile's weight (0 = silence).

    Row f is the tile made of frames f..f+3; its feature is its log-energy minus the mean of its
    four neighbours (the tiles one tile before and after, the bands above and below), which
    removes what the speech itself contributes: its spectral envelope and its loudness contour.
    """
    k = FRAMES_PER_TILE
    csum = np.concatenate([np.zeros((1, N_BANDS)), np.cumsum(energy, axis=0)])
    tile = csum[k:] - csum[:-k]  # (frames - k + 1, bands)
    if tile.size == 0 or tile.max() <= 0:
        return np.zeros((0, N_BANDS)), np.zeros((0, N_BANDS))
    # Silence is judged per band: high bands of speech sit 20-30 dB under the low ones.
    floor = tile.max(axis=0, keepdims=True) * 10 ** (-SILENCE_DB / 10) + 1e-12
    # ... and so is a tile near the band's noise floor (under noise, pauses are noise only).
    floor = np.maximum(floor, NOISE_FLOOR_FACTOR * np.percentile(tile, 10, axis=0, keepdims=True))
    log = np.log(tile + floor)
    active = tile > floor
    n = len(log)
    feat = np.zeros_like(log)
    weight = np.zeros_like(log)
    if n <= 2 * k:
        return feat, weight
    mid = slice(k, n - k)
    neigh = 0.5 * (log[: n - 2 * k] + log[2 * k :])
    neigh_f = np.empty_like(log)
    neigh_f[:, 1:-1] = 0.5 * (log[:, :-2] + log[:, 2:])
    neigh_f[:, 0] = log[:, 1]
    neigh_f[:, -1] = log[:, -2]
    feat[mid] = log[mid] - 0.5 * neigh - 0.5 * neigh_f[mid]
    weight[mid] = active[mid]
    spread = np.median(np.abs(feat[weight > 0])) * 1.4826 if weight.any() else 1.0
    if spread > 0:
        feat = np.clip(feat / spread, -CLIP_SIGMA, CLIP_SIGMA)
    return feat * weight, weight


def _fold(feat: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Sum features of frames start..stop-1 by (frame residue mod 4, tile index mod period)."""
    k, period = FRAMES_PER_TILE, PERIOD_TILES * FRAMES_PER_TILE
    first = (start // period) * period
    n_periods = -(-(stop - first) // period)
    padded = np.zeros((n_periods * period, N_BANDS))
    padded[start - first : stop - first] = feat[start:stop]
    # frame = first + p * period + m * k + r  ->  (r, m) of the pattern
    return padded.reshape(n_periods, PERIOD_TILES, k, N_BANDS).sum(axis=0).transpose(1, 0, 2)


@lru_cache(maxsize=8)
def _sync_patterns(key: int) -> tuple[np.ndarray, np.ndarray]:
    """Every rotation of the sync pattern: (PERIOD_TILES, PERIOD_TILES, N_BANDS), and |.|."""
    layout = _layout(key)
    sync = np.where(layout.role < 0, layout.sign, 0.0)
    pats = np.stack([np.roll(sync, q, axis=0) for q in range(PERIOD_TILES)])
    return pats, np.abs(pats)


def _scores(folded: np.ndarray, folded_sq: np.ndarray, key: int) -> np.ndarray:
    """z-score of the sync tiles for every phase: (frame residue r, tile rotation q)."""
    pats, mask = _sync_patterns(key)
    num = np.einsum("rpb,qpb->rq", folded, pats)
    den = np.sqrt(np.einsum("rpb,qpb->rq", folded_sq, mask))
    return np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)


def _bit_sums(folded: np.ndarray, folded_sq: np.ndarray, layout: _Layout, r: int, q: int):
    """Per payload bit: correlation sum and variance at phase (r, q)."""
    sign = np.roll(layout.sign, q, axis=0)
    role = np.roll(layout.role, q, axis=0)
    num, var = np.zeros(PAYLOAD_BITS), np.zeros(PAYLOAD_BITS)
    for i in range(PAYLOAD_BITS):
        cells = role == i
        num[i] = (folded[r][cells] * sign[cells]).sum()
        var[i] = folded_sq[r][cells].sum()
    return num, var


def _to_detect_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    x = (
        np.asarray(samples, dtype=np.float64).reshape(-1)
        if np.ndim(samples) == 1
        else np.asarray(samples, np.float64).mean(axis=1)
    )
    if sample_rate != DETECT_RATE:
        g = gcd(int(sample_rate), DETECT_RATE)
        x = resample_poly(x, DETECT_RATE // g, int(sample_rate) // g)
    return x


def _windows(n: int) -> list[tuple[int, int]]:
    """(start, stop) frames of every window scored: 1 s and 2 s long, every 0.5 s.

    The last window of each length ends at the clip's end, so no part of a crop is only seen
    through a window that covers half of it.
    """
    step = int(WINDOW_S * DETECT_RATE / HOP) // 2
    out = []
    for seconds in (WINDOW_S, LONG_WINDOW_S):
        win = int(seconds * DETECT_RATE / HOP)
        if seconds > WINDOW_S and n < LONG_WINDOW_MIN_FILL * win:
            continue
        starts = list(range(0, max(1, n - win + 1), step))
        if n > win and starts[-1] != n - win:
            starts.append(n - win)
        out += [(s0, min(n, s0 + win)) for s0 in starts]
    return out


def detect(samples: np.ndarray, sample_rate: int, *, key: int = DEFAULT_KEY,
           threshold: float = THRESHOLD, scales=SCALES) -> Detection:  # fmt: skip
    """Look for the watermark in any 1-second (or 2-second) window of ``samples``.

    ``samples`` is mono float audio at any rate. Tries every speed correction in ``scales`` and
    every tile phase; ``found`` when the best window's sync score reaches ``threshold``. The
    payload is decoded from every 1-second window of the clip that carries the mark at the best
    speed, so longer clips give a surer payload.
    """
    x = _to_detect_rate(samples, sample_rate)
    if x.size == 0:
        raise EmptyAudioError("the audio holds no samples", "give a clip of at least 1 second")
    if not np.all(np.isfinite(x)):
        raise AudioFormatError("the audio holds NaN or infinite samples", "decode it again")
    layout = _layout(key)
    best = (-np.inf, 1.0, (0, 0))  # z, scale, window (start, stop frame)
    cache = {}
    spec = _spectrogram(x)
    for scale in scales:
        feat, _ = _features(_band_energies(spec, float(scale)))
        if len(feat) == 0:
            continue
        feat_sq = feat**2
        cache[scale] = feat, feat_sq
        for s0, s1 in _windows(len(feat)):
            z = _scores(_fold(feat, s0, s1), _fold(feat_sq, s0, s1), key).max()
            if z > best[0]:
                best = (float(z), float(scale), (s0, s1))
    z_best, scale, best_window = best
    if not np.isfinite(z_best):
        return Detection(False, 0.0, 0.0, None, 0.0, 1.0, 0.0)
    # The payload: every 1-second window that carries the mark at this speed (and the best
    # window), each at its own phase, so a small residual speed error cannot drift the phase.
    feat, feat_sq = cache[scale]
    win = int(WINDOW_S * DETECT_RATE / HOP)
    num, var = np.zeros(PAYLOAD_BITS), np.zeros(PAYLOAD_BITS)
    for w0, w1 in _windows(len(feat)):
        if w1 - w0 > win and (w0, w1) != best_window:
            continue
        folded, folded_sq = _fold(feat, w0, w1), _fold(feat_sq, w0, w1)
        z = _scores(folded, folded_sq, key)
        wr, wq = np.unravel_index(np.argmax(z), z.shape)
        if z[wr, wq] >= PAYLOAD_WINDOW_Z or (w0, w1) == best_window:
            n_i, v_i = _bit_sums(folded, folded_sq, layout, int(wr), int(wq))
            num += n_i
            var += v_i
    zbits = num / np.sqrt(np.maximum(var, 1e-12))
    bits = (zbits > 0).astype(np.int8)
    found = z_best >= threshold
    return Detection(
        found=bool(found),
        confidence=_confidence(z_best, len(scales)),
        score=round(z_best, 3),
        payload=Payload.from_bits(bits) if found else None,
        payload_margin=round(float(np.abs(zbits).min()), 3),
        speed=round(scale, 4),
        start=round(best_window[0] * HOP / DETECT_RATE / scale, 3),
    )


def _confidence(z: float, n_scales: int) -> float:
    """1 - Bonferroni-corrected one-sided Gaussian tail of the best of all hypotheses."""
    from math import erfc, sqrt

    # Two window lengths: each phase is tested twice (on overlapping, correlated evidence).
    hypotheses = 2 * n_scales * FRAMES_PER_TILE * PERIOD_TILES
    tail = 0.5 * erfc(z / sqrt(2.0)) * hypotheses
    return float(max(0.0, 1.0 - min(1.0, tail)))


def detect_file(path, *, key: int = DEFAULT_KEY) -> Detection:
    """Decode any audio file and :func:`detect` the watermark in it."""
    return detect(load_audio(path, DETECT_RATE), DETECT_RATE, key=key)
